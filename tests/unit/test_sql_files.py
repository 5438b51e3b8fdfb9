"""Every GoogleSQL file transpiles to DuckDB with unsupported constructs raising, and the DDL too."""

from __future__ import annotations

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


def test_table_ddl_transpiles() -> None:
    for spec in all_tables().values():
        (statement,) = to_duckdb(spec.bigquery_ddl())
        assert statement.startswith("CREATE TABLE IF NOT EXISTS")
