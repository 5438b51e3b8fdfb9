"""GoogleSQL -> DuckDB, once per statement text. Untranslatable constructs raise instead of misbehaving."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot.errors import ErrorLevel


@lru_cache(maxsize=512)
def to_duckdb(googlesql: str) -> list[str]:
    """Every statement of a GoogleSQL text, in DuckDB's dialect."""
    return [
        s
        for s in sqlglot.transpile(googlesql, read="bigquery", write="duckdb", unsupported_level=ErrorLevel.RAISE)
        if s.strip()
    ]
