"""The table schemas, read from raw.json and refined.json: one source for the loader, the refine stage, both
warehouses and the Pulumi program."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

SCHEMA_FILE = Path(__file__).with_name("raw.json")
REFINED_FILE = Path(__file__).with_name("refined.json")
RAW_TABLES = ("user", "page", "land", "conv", "event")

BigQueryType = Literal["STRING", "INT64", "FLOAT64", "BOOL", "TIMESTAMP"]
DUCKDB_TYPES: dict[str, str] = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
}


class Column(BaseModel):
    name: str
    type: BigQueryType
    mode: Literal["REQUIRED", "NULLABLE"] = "NULLABLE"
    description: str = ""
    # DuckDB only: the compression the column is stored with, instead of DuckDB's choice. DuckDB tries every
    # method on every segment it writes; ids nearly all distinct (event ids, nodes) end up FSST anyway, and
    # naming it writes them 40% faster at the same size; a column of a few values (event table, os) ends up a
    # dictionary, about 10% faster named (README, Benchmarks, session 10).
    duckdb_compression: Literal["fsst", "dictionary"] | None = None

    @property
    def required(self) -> bool:
        return self.mode == "REQUIRED"

    def duckdb_definition(self) -> str:
        """The column in DuckDB's DDL (CREATE TABLE, ALTER TABLE ... ADD COLUMN)."""
        return f'"{self.name}" {DUCKDB_TYPES[self.type]}{" NOT NULL" if self.required else ""}' + (
            f" USING COMPRESSION {self.duckdb_compression}" if self.duckdb_compression else ""
        )


class TableSpec(BaseModel):
    name: str
    dataset: str
    description: str = ""
    partition_field: str
    clustering: list[str]
    columns: list[Column]

    @property
    def qualified_name(self) -> str:
        return f"{self.dataset}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def duckdb_ddl(self) -> str:
        """DuckDB DDL of the table (BigQuery's tables are made through its API, from the same spec)."""
        cols = ",\n  ".join(c.duckdb_definition() for c in self.columns)
        return f'CREATE TABLE IF NOT EXISTS {self.dataset}."{self.name}" (\n  {cols}\n)'


@lru_cache(maxsize=1)
def all_tables() -> dict[str, TableSpec]:
    """Every table by its qualified name (raw.page, ops.rejected, ...)."""
    doc = json.loads(SCHEMA_FILE.read_text())
    common = [Column(**c) for c in doc["common_columns"]]
    specs: dict[str, TableSpec] = {}
    for name, body in doc["tables"].items():
        own = [Column(**c) for c in body.pop("columns")]
        spec = TableSpec(name=name, columns=common + own, **body)
        specs[spec.qualified_name] = spec
    refined = json.loads(REFINED_FILE.read_text())["tables"]
    for name, body in [*doc["ops_tables"].items(), *refined.items()]:
        cols = [Column(**c) for c in body.pop("columns")]
        spec = TableSpec(name=name, columns=cols, **body)
        specs[spec.qualified_name] = spec
    return specs


def table(qualified_name: str) -> TableSpec:
    try:
        return all_tables()[qualified_name]
    except KeyError:
        raise KeyError(f"no table {qualified_name!r} in {SCHEMA_FILE.name}") from None


def datasets() -> list[str]:
    return sorted({spec.dataset for spec in all_tables().values()})
