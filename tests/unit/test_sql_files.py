"""Every GoogleSQL file transpiles to DuckDB with unsupported constructs raising, and the DDL too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.schema import RAW_TABLES, all_tables
from shared.warehouse.base import SQL_DIR, fill_sql, sql_placeholders
from shared.warehouse.sqlglot_dialect import to_duckdb

SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))


def test_there_are_sql_files() -> None:
    assert len(SQL_FILES) >= 4


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_DIR)))
def test_sql_file_transpiles(path: Path) -> None:
    text = path.read_text()
    placeholders = sql_placeholders(text)
    for table in RAW_TABLES if "table" in placeholders else ["page"]:
        names = {key: "refined.work_labels" for key in placeholders} | (
            {"table": table} if "table" in placeholders else {}
        )
        statements = to_duckdb(fill_sql(text, **names))
        assert statements, path


def test_a_template_names_what_it_misses_and_takes_only_names() -> None:
    with pytest.raises(KeyError, match="needs \\['table'\\]"):
        fill_sql("SELECT * FROM raw.{table}")
    with pytest.raises(ValueError, match="is not a table name"):
        fill_sql("SELECT * FROM raw.{table}", table="page; DROP TABLE x")


def test_every_table_is_created_on_duckdb_with_its_columns_and_types() -> None:
    import duckdb

    # the types sqlglot's translation gave files made before the DuckDB DDL was written out
    described_as = {
        "STRING": "VARCHAR",
        "INT64": "BIGINT",
        "FLOAT64": "DOUBLE",
        "BOOL": "BOOLEAN",
        "TIMESTAMP": "TIMESTAMP WITH TIME ZONE",
    }
    con = duckdb.connect()
    for spec in all_tables().values():
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {spec.dataset}")
        con.execute(spec.duckdb_ddl())
        described = con.execute(f'DESCRIBE {spec.dataset}."{spec.name}"').fetchall()
        expected = [(c.name, described_as[c.type], "NO" if c.required else "YES") for c in spec.columns]
        assert [(name, kind, null) for name, kind, null, *_ in described] == expected


def test_session_windows_share_one_total_order() -> None:
    """sessions_insert's windows must order rows the same total way: with ties (a page view and its landing row
    at the same microsecond) ordered differently by LAG and the running MAX, a device's first row got no
    session start and the run failed on sessions.session_id (seen once at 3M events, depending on the sort)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one((SQL_DIR / "refine" / "sessions_insert.sql").read_text(), read="bigquery")
    orders = {
        tuple(o.this.name for o in window.args["order"].expressions)
        for window in tree.find_all(exp.Window)
        if window.args.get("order")
    }
    assert orders == {("t_us", "event_id", "source_table")}


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_DIR)))
def test_qualify_comes_with_a_where_group_by_or_having(path: Path) -> None:
    """BigQuery refuses QUALIFY in a SELECT without WHERE, GROUP BY or HAVING; DuckDB (and so bqemulator)
    accepts it, so only this check stands between such a file and a failing run on BigQuery."""
    import sqlglot
    from sqlglot import exp

    text = path.read_text()
    names = {key: "refined.work_labels" for key in sql_placeholders(text)} | (
        {"table": "page"} if "table" in sql_placeholders(text) else {}
    )
    for tree in sqlglot.parse(fill_sql(text, **names) if names else text, read="bigquery"):
        for select in tree.find_all(exp.Select):
            if select.args.get("qualify"):
                assert any(select.args.get(k) for k in ("where", "group", "having")), select.sql("bigquery")[:200]


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_DIR)))
def test_no_comment_names_a_parameter(path: Path) -> None:
    """bqemulator counts an @name in a comment as a parameter of its own, and the query then fails with
    "Parameter argument/count mismatch" (found when a comment named one): comments say "the X parameter"."""
    comments = [line.split("--", 1)[1] for line in path.read_text().splitlines() if "--" in line]
    assert not [c for c in comments if re.search(r"@[A-Za-z_]", c)]


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_DIR)))
def test_a_work_table_expires_on_bigquery(path: Path) -> None:
    """Work tables hold identifiers in clear (an erasure's: the person's); a run that crashed must not leave them
    for good. The next run drops them (work_cleanup.sql); on BigQuery they also expire after a day."""
    import sqlglot
    from sqlglot import exp

    text = path.read_text()
    names = {key: "refined.work_labels" for key in sql_placeholders(text)} | (
        {"table": "page"} if "table" in sql_placeholders(text) else {}
    )
    for tree in sqlglot.parse(fill_sql(text, **names) if names else text, read="bigquery"):
        if isinstance(tree, exp.Create) and tree.this.name.startswith("work_"):
            options = {p.name.lower(): p for p in tree.find_all(exp.Property)}
            assert "expiration_timestamp" in options, f"{path.name}: {tree.this.sql('bigquery')} has no expiry"
            assert "INTERVAL '1' DAY" in options["expiration_timestamp"].sql("bigquery"), path.name


def test_work_cleanup_drops_every_work_table() -> None:
    made = set()
    for path in SQL_FILES:
        text = path.read_text()
        if "{target}" in text:
            continue  # the label tables, named below
        made |= {m.group(1) for m in re.finditer(r"CREATE OR REPLACE TABLE refined\.(work_\w+)", text)}
    made |= {"work_labels", "work_labels_next"}
    cleanup = (SQL_DIR / "refine" / "work_cleanup.sql").read_text()
    assert made == set(re.findall(r"DROP TABLE IF EXISTS refined\.(work_\w+)", cleanup))


def test_a_work_tables_expiry_is_bigquery_only_and_other_table_options_still_raise() -> None:
    from sqlglot.errors import UnsupportedError

    expiring = (
        "CREATE OR REPLACE TABLE refined.work_x OPTIONS (expiration_timestamp = CURRENT_TIMESTAMP()) AS SELECT 1 AS a"
    )
    assert to_duckdb(expiring) == ["CREATE OR REPLACE TABLE cdp_work.work_x AS SELECT 1 AS a"]
    with pytest.raises(UnsupportedError):
        to_duckdb("CREATE OR REPLACE TABLE refined.work_x OPTIONS (description = 'x') AS SELECT 1 AS a")


def test_ordering_keys_translate_to_duckdb_exactly() -> None:
    """profiles_insert.sql packs time and a hash of the event id into one BIGNUMERIC key: on DuckDB a HUGEINT (not
    sqlglot's DECIMAL(38, 5)), and FARM_FINGERPRINT a signed 64-bit hash as on BigQuery."""
    import duckdb

    (sql,) = to_duckdb(
        "SELECT CAST(t AS BIGNUMERIC) * 10000000000000 + MOD(FARM_FINGERPRINT(e), 1000000000000) AS k, "
        "FARM_FINGERPRINT(e) AS f FROM (SELECT 1767225600000000 AS t, 'ev-1' AS e)"
    )
    assert "DECIMAL" not in sql and "FARM_FINGERPRINT" not in sql.upper()
    ((k, f),) = duckdb.sql(sql).fetchall()
    assert 0 <= f < 2**63 and duckdb.connect().sql(sql).fetchall() == [(k, f)]  # the same in a new session
    assert 1767225600000000 * 10**13 - 10**12 < k < 1767225600000000 * 10**13 + 10**12
