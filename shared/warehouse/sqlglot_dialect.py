"""GoogleSQL -> DuckDB, once per statement text. Untranslatable constructs raise instead of misbehaving."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

# Table options that only mean something on BigQuery: a work table's expiry (a local file's work tables are
# dropped by the run that made them, and by the next one). Any other table option still raises.
_BIGQUERY_ONLY_OPTIONS = frozenset({"expiration_timestamp"})


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
        tree = _duckdb_equivalents(_drop_bigquery_only_options(tree))
        text = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
        if text.strip():
            out.append(text)
    return out
