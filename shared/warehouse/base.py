"""What every warehouse adapter offers. SQL is GoogleSQL, kept in shared/sql/*.sql."""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from shared.messages import column_height, to_rows
from shared.schema import TableSpec
from shared.timeutil import iso_now, to_iso

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class WarehouseUnavailable(Exception):
    """Transient: the warehouse could not be reached or is busy; the caller should retry."""


class BadRows(Exception):
    """Permanent: some rows do not fit their table. `bad` maps row index to the reason."""

    def __init__(self, table: str, bad: dict[int, str]) -> None:
        self.table = table
        self.bad = bad
        super().__init__(f"{len(bad)} row(s) do not fit {table}: {next(iter(bad.values()), '')}")


class LoadBatch(BaseModel):
    """One Pub/Sub message's worth of rows, written together with its ledger entry. A table's rows come in one of
    three forms: row objects (`rows`), column by column (`columns`, as collect publishes small messages), or an
    Arrow table (`arrow`, as it publishes large ones)."""

    message_id: str = Field(description="ledger key: collect's batch id (or the Pub/Sub message id)")
    published_at: datetime | None = None
    site_id: str | None = None
    rows: dict[str, list[dict[str, Any]]] = Field(default_factory=dict, description="qualified table -> rows")
    columns: dict[str, dict[str, list[Any]]] = Field(
        default_factory=dict, description="qualified table -> column -> values (all of a table's of equal length)"
    )
    arrow: dict[str, Any] = Field(
        default_factory=dict, description="qualified table -> pyarrow.Table, its columns' types as collect read them"
    )

    def _count(self, name: str) -> int:
        if name in self.arrow:
            return int(self.arrow[name].num_rows)
        return len(self.rows[name]) if name in self.rows else column_height(self.columns.get(name, {}))

    @property
    def tables(self) -> list[str]:
        return [*self.rows, *self.columns, *self.arrow]

    @property
    def row_count(self) -> int:
        return sum(self._count(t) for t in self.tables if t != "ops.rejected")

    @property
    def rejected_count(self) -> int:
        return self._count("ops.rejected")

    def as_rows(self) -> LoadBatch:
        """The same batch with every table as row objects: for adapters and paths that go row by row."""
        if not self.columns and not self.arrow:
            return self
        rows = {
            **self.rows,
            **{name: to_rows(columns) for name, columns in self.columns.items()},
            **{name: arrow.to_pylist() for name, arrow in self.arrow.items()},
        }
        return self.model_copy(update={"rows": rows, "columns": {}, "arrow": {}})

    def ledger_row(self) -> dict[str, Any]:
        """Its ops.load_batches row."""
        return {
            "message_id": self.message_id,
            "loaded_at": iso_now(),
            "published_at": to_iso(self.published_at) if self.published_at else None,
            "site_id": self.site_id,
            "row_count": self.row_count,
            "rejected_count": self.rejected_count,
        }


def _fits(type_name: str, value: Any) -> bool:
    if type_name == "STRING":
        return isinstance(value, str)
    if type_name == "INT64":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "FLOAT64":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_name == "BOOL":
        return isinstance(value, bool)
    if type_name == "TIMESTAMP":
        try:
            return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
        except ValueError:
            return False
    return False


def row_problem(spec: TableSpec, row: Any) -> str | None:
    """Why a row does not fit its table (missing required value, unknown column, wrong type), or None."""
    if not isinstance(row, dict):
        return f"a {spec.qualified_name} row must be an object, got {type(row).__name__}"
    unknown = set(row) - set(spec.column_names)
    if unknown:
        return f"{spec.qualified_name} has no column(s) {sorted(unknown)}"
    for column in spec.columns:
        value = row.get(column.name)
        if value is None:
            if column.required:
                return f"{spec.qualified_name}.{column.name} is required"
        elif not _fits(column.type, value):
            return f"{spec.qualified_name}.{column.name}: {value!r} is not a {column.type}"
    return None


def bad_rows(spec: TableSpec, rows: list[Any]) -> BadRows | None:
    bad = {i: p for i, row in enumerate(rows) if (p := row_problem(spec, row))}
    return BadRows(spec.qualified_name, bad) if bad else None


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@cache
def _sql_text(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text()


def sql_placeholders(text: str) -> set[str]:
    """The `{name}` placeholders of a SQL template (table names a caller fills in)."""
    return set(_PLACEHOLDER.findall(text))


def fill_sql(text: str, **names: str) -> str:
    """A SQL template with its `{name}` placeholders replaced by table names. Only identifiers go in (these
    are names, never values: values are @parameters), and every placeholder must be given."""
    missing = sql_placeholders(text) - set(names)
    if missing:
        raise KeyError(f"SQL template needs {sorted(missing)}")
    for key, value in names.items():
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a table name")
        text = text.replace(f"{{{key}}}", value)
    return text


def load_sql(name: str, **names: str) -> str:
    """The GoogleSQL text of shared/sql/<name>.sql, its placeholders filled with `names`."""
    return fill_sql(_sql_text(name), **names)


class Warehouse(abc.ABC):
    """Tables are named dataset.table (raw.page, ops.rejected); SQL is GoogleSQL with @named parameters."""

    # Whether the code may create its own tables. In the cloud the Pulumi program owns them (and the
    # functions' identities may not create datasets); the embedded DuckDB file is created by the code.
    owns_schema: bool = False

    def ensure_schema_if_owned(self) -> None:
        if self.owns_schema:
            self.ensure_schema()

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Around a run of large writes (refine, erase): what the warehouse does to make them cheap, and undoes
        after; the run's work tables (refined.work_*) last until it ends. BigQuery needs nothing."""
        yield

    @contextmanager
    def incoming(self) -> Iterator[None]:
        """Around one message's whole handling (parse, convert, write_batch): tells an adapter that commits
        concurrent batches together that this one is on its way, so that a group waits for it. BigQuery needs
        nothing."""
        yield

    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Create the datasets, tables and views of shared/schema if they are missing."""

    @abc.abstractmethod
    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Append rows (timestamps as ISO-8601 text). Raises BadRows or WarehouseUnavailable."""

    def insert_columns(self, table: str, columns: dict[str, list[Any]]) -> None:
        """Append rows given column by column (of equal length), as insert_rows. Adapters that take columns
        natively override this. Raises ValueError when the columns' lengths differ."""
        column_height(columns)
        self.insert_rows(table, to_rows(columns))

    @abc.abstractmethod
    def write_batch(self, batch: LoadBatch) -> bool:
        """Write a message's rows and its ledger entry. False when the adapter knows the message was already
        written (DuckDB checks its ledger); BigQuery always answers True and leaves duplicates to the views.
        Raises BadRows (nothing written) when rows do not fit, WarehouseUnavailable when it should be retried."""

    @abc.abstractmethod
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one GoogleSQL statement and return its rows as dicts."""

    def query_file(
        self, name: str, params: dict[str, Any] | None = None, *, names: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Run shared/sql/<name>.sql; `names` fill its `{placeholder}` table names."""
        return self.query(load_sql(name, **(names or {})), params)

    def close(self) -> None:  # noqa: B027 - adapters without resources need nothing here
        """Release connections."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
