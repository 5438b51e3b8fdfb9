"""GoogleSQL -> DuckDB, once per statement text. Untranslatable constructs raise instead of misbehaving."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

# Table options that only mean something on BigQuery: a work table's expiry (a local file's work tables are
# dropped by the run that made them, and by the next one). Any other table option still raises.
_BIGQUERY_ONLY_OPTIONS = frozenset({"expiration_timestamp"})

# A run's work tables (refined.work_*: the identity graph's labels, the assignment, ...) live in an in-memory
# database the DuckDB adapter attaches under this name: written and read again within one run, they are not
# worth compressing into the file (the identity steps at 3M events: 6.4 s against 11.9 s). BigQuery keeps them
# in the dataset, where they expire.
WORK_CATALOG = "cdp_work"


def _duckdb_equivalents(tree: exp.Expression) -> exp.Expression:
    """GoogleSQL that sqlglot would translate wrongly, translated here:
    - BIGNUMERIC holds whole-number ordering keys here (time and a hash packed into one value below 10^29,
      profiles_insert.sql); sqlglot makes it DECIMAL(38, 5): HUGEINT holds them exactly, at about half the cost.
    - FARM_FINGERPRINT does not exist in DuckDB: its own 64-bit hash, halved into an INT64 (BIGINT arithmetic,
      such as MOD, stays fast; the values differ from BigQuery's anyway)."""
    for datatype in list(tree.find_all(exp.DataType)):
        if datatype.this == exp.DataType.Type.BIGDECIMAL:
            datatype.replace(exp.DataType.build("HUGEINT"))
    for fingerprint in list(tree.find_all(exp.FarmFingerprint)):
        fingerprint.replace(
            exp.Cast(
                this=exp.BitwiseRightShift(
                    this=exp.Anonymous(this="hash", expressions=list(fingerprint.expressions)),
                    expression=exp.Literal.number(1),
                ),
                to=exp.DataType.build("BIGINT"),
            )
        )
    return tree


def _work_tables_in_memory(tree: exp.Expression) -> exp.Expression:
    for name in list(tree.find_all(exp.Table)):
        if name.db == "refined" and name.name.startswith("work_") and not name.catalog:
            name.set("db", exp.to_identifier(WORK_CATALOG))
    return tree


def _drop_bigquery_only_options(tree: exp.Expression) -> exp.Expression:
    for prop in list(tree.find_all(exp.Property)):
        if prop.name.lower() in _BIGQUERY_ONLY_OPTIONS:
            holder = prop.parent
            prop.pop()
            if isinstance(holder, exp.Properties) and not holder.expressions:
                holder.pop()
    return tree


@lru_cache(maxsize=512)
def to_duckdb(googlesql: str) -> list[str]:
    """Every statement of a GoogleSQL text, in DuckDB's dialect."""
    statements = sqlglot.parse(googlesql, read="bigquery")
    out = []
    for tree in statements:
        if tree is None:
            continue
        tree = _work_tables_in_memory(_duckdb_equivalents(_drop_bigquery_only_options(tree)))
        text = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
        if text.strip():
            out.append(text)
    return out
