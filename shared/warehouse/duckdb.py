"""The embedded warehouse: a DuckDB file in the state folder, fed the same GoogleSQL through sqlglot."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.messages import column_height, to_rows
from shared.schema import RAW_TABLES, TableSpec, all_tables, datasets, table
from shared.settings import size_in_bytes
from shared.warehouse.base import BadRows, LoadBatch, Warehouse, WarehouseUnavailable, bad_rows, load_sql
from shared.warehouse.sqlglot_dialect import WORK_CATALOG, to_duckdb

_ARROW_TYPES: dict[str, pa.DataType] = {
    "STRING": pa.string(),
    "INT64": pa.int64(),
    "FLOAT64": pa.float64(),
    "BOOL": pa.bool_(),
    "TIMESTAMP": pa.string(),  # ISO-8601 text in the message; cast below
}
_TIMESTAMP = pa.timestamp("us", tz="UTC")
# The Arrow types of a message's column that a column of the spec's type takes: what the same values take in JSON
# (bad_rows' rules: a number is not text; a FLOAT64 takes whole numbers). Casting would turn 1.5 into "1.5".
_ARROW_TAKES: dict[str, tuple[pa.DataType, ...]] = {
    "STRING": (pa.string(), pa.null()),
    "INT64": (pa.int64(), pa.null()),
    "FLOAT64": (pa.float64(), pa.int64(), pa.null()),
    "BOOL": (pa.bool_(), pa.null()),
    "TIMESTAMP": (pa.string(), pa.null()),
}
DEFAULT_CHECKPOINT_THRESHOLD = "16MiB"  # DuckDB's own
NO_AUTOMATIC_CHECKPOINT = "1000GB"  # DuckDB's threshold while the loader checkpoints itself
_LINGER_SECONDS = 0.02  # a push subscription's next delivery arrives a few ms after an answer
_CONCURRENCY_MEMORY_SECONDS = 1.0  # messages came in concurrently this recently: worth lingering for the next


# Another process holds the file (IOException "Could not set lock"), or this process holds it with
# another configuration (ConnectionException): both pass once the holder lets go.
_HELD = (duckdb.IOException, duckdb.ConnectionException)
log = logging.getLogger("cdp.warehouse")


class WarehouseSchemaError(RuntimeError):
    """The DuckDB file's tables differ from the schema in a way that cannot be applied by adding columns."""


def _is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.ConnectionException) or (
        isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()
    )


def _arrow_schema(spec: TableSpec) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in spec.columns])


_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError)


def _known_columns(spec: TableSpec, names: set[str]) -> None:
    if names - set(spec.column_names):
        raise ValueError("unknown column")


def _typed(spec: TableSpec, arrays: list[Any]) -> pa.Table:
    """The spec's columns (in its order, as Arrow arrays of its types) checked for required values, timestamps cast."""
    for column, array in zip(spec.columns, arrays, strict=True):
        if column.required and array.null_count:
            raise ValueError("missing required value")
    return pa.Table.from_arrays(
        [a.cast(_TIMESTAMP) if c.type == "TIMESTAMP" else a for c, a in zip(spec.columns, arrays, strict=True)],
        names=spec.column_names,
    )


def _bad(spec: TableSpec, rows: list[dict[str, Any]], exc: Exception) -> BadRows:
    """Which rows do not fit, by the same rules as bad_rows; the conversion's own error when none is named."""
    return bad_rows(spec, rows) or BadRows(spec.qualified_name, {0: f"rows do not convert: {exc}"})


class _Ticket:
    """One caller's batch in a group commit, and what became of it."""

    def __init__(self, batch: LoadBatch, tables: dict[str, pa.Table]) -> None:
        self.batch = batch
        self.tables = tables  # the batch's rows as Arrow tables, converted before the writer lock
        self.done = False
        self.written = False
        self.error: Exception | None = None

    def finish(self, *, written: bool = False, error: Exception | None = None) -> None:
        self.written, self.error, self.done = written, error, True


class DuckDBWarehouse(Warehouse):
    """One DuckDB file. DuckDB allows one writing process, so the file is held only while in use:
    a reader (the CLI) or the loader waits briefly for the other instead of failing."""

    owns_schema = True

    def __init__(
        self,
        path: Path | str,
        *,
        read_only: bool = False,
        lock_wait_seconds: float = 20.0,
        release_after_idle: float | None = None,
        checkpoint_threshold: str | None = None,
        threads: int | None = None,
        gather_seconds: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._wait = lock_wait_seconds
        self._idle = release_after_idle
        self._checkpoint_threshold = checkpoint_threshold
        self._threads = threads
        # DuckDB checkpoints inside the commit that fills the WAL, on the connection's threads: the loader's one
        # (below). So the loader checkpoints itself, on every core: 1.5 s against 1.85 s for 300,000 rows, and
        # sustained loading 8% faster (README, Benchmarks, session 9).
        self._checkpoint_bytes = (
            size_in_bytes(checkpoint_threshold) if threads and checkpoint_threshold and not read_only else None
        )
        self._last_use = 0.0
        self._holds = 0  # bulk_writes under way: the connection (and its in-memory work tables) is kept
        self._releaser: threading.Thread | None = None
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        # Group commit: messages announced (incoming) and not yet queued; the writer waits up to gather_seconds
        # for them, so that concurrent messages share one insert per table and one commit.
        self._gather = gather_seconds
        self._announced = 0
        self._in_flight = 0
        self._fed_concurrently_until = 0.0
        self._arrivals = threading.Condition(self._queue_lock)
        self._local = threading.local()

    # -- connection -------------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            elif not self.path.exists():
                raise FileNotFoundError(f"no warehouse at {self.path}: run the stack (or `cdp demo`) first")

            @retry(
                retry=retry_if_exception_type(_HELD),
                stop=stop_after_delay(self._wait),
                wait=wait_exponential(multiplier=0.02, max=0.5),
                reraise=True,
            )
            def open_file() -> duckdb.DuckDBPyConnection:
                return duckdb.connect(str(self.path), read_only=self.read_only)

            try:
                self._connection = open_file()
            except _HELD as exc:
                if _is_lock_conflict(exc):
                    raise WarehouseUnavailable(f"{self.path} is held by another process: {exc}") from exc
                raise
            self._connection.execute("SET TimeZone = 'UTC'")
            if not self.read_only:  # only writers make work tables
                self._connection.execute(f"ATTACH ':memory:' AS {WORK_CATALOG}")
            if self._checkpoint_threshold and not self.read_only:
                # The loader's many small commits: fewer, larger checkpoints (one also runs when the file is let go).
                self._connection.execute(f"SET checkpoint_threshold = '{self._automatic_threshold()}'")
            if self._threads:
                # The loader's inserts are small (one message, or a few committed together): DuckDB's default (one
                # thread a core) spends more CPU scheduling them than the work takes, on cores the loader's other
                # requests need.
                self._connection.execute(f"SET threads = {int(self._threads)}")
        self._used()
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _used(self) -> None:
        """With release_after_idle, the file is let go once nothing used it for that long, so that
        another process (the CLI, the stack's drain) can open it between bursts of loading."""
        self._last_use = time.monotonic()
        if self._idle is None or (self._releaser is not None and self._releaser.is_alive()):
            return

        def release_when_idle() -> None:
            assert self._idle is not None
            while True:
                time.sleep(self._idle)
                with self._lock:
                    if self._connection is None:
                        return
                    if not self._holds and time.monotonic() - self._last_use >= self._idle:
                        self.close()
                        return

        self._releaser = threading.Thread(target=release_when_idle, name="duckdb-release", daemon=True)
        self._releaser.start()

    def _automatic_threshold(self) -> str:
        if self._checkpoint_bytes is not None:
            return NO_AUTOMATIC_CHECKPOINT
        return self._checkpoint_threshold or DEFAULT_CHECKPOINT_THRESHOLD

    def _wal_past_threshold(self) -> bool:
        assert self._checkpoint_bytes is not None
        try:
            return self.path.with_name(self.path.name + ".wal").stat().st_size >= self._checkpoint_bytes
        except FileNotFoundError:
            return False

    def _checkpoint_when_due(self) -> None:
        """The loader's own checkpoint, once the WAL has passed the threshold, on every core for its length."""
        if self._checkpoint_bytes is None:
            return
        if not self._wal_past_threshold():  # nearly every write: no lock taken
            return
        with self._lock:
            if not self._wal_past_threshold():
                return  # another caller has just checkpointed
            con = self._connect()
            con.execute(f"SET threads = {os.cpu_count() or 1}")
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error as exc:  # the rows are committed (in the WAL) whatever happens: tried again next time
                log.warning("duckdb: checkpoint failed, left for the next write: %s", exc)
            finally:
                con.execute(f"SET threads = {int(self._threads or 1)}")

    # -- schema -----------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        with self._lock:
            con = self._connect()
            for dataset in datasets():
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {dataset}")
            for spec in all_tables().values():
                con.execute(spec.duckdb_ddl())
            columns: dict[tuple[str, str], set[str]] = {}
            for schema, name, column in con.execute(
                "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                "WHERE database_name = current_database()"
            ).fetchall():
                columns.setdefault((schema, name), set()).add(column)
            for spec in all_tables().values():
                self._evolve(con, spec, columns.get((spec.dataset, spec.name), set()))
            for name in RAW_TABLES:
                for statement in to_duckdb(load_sql("views/raw_unique", table=name)):
                    con.execute(statement)

    def _evolve(self, con: duckdb.DuckDBPyConnection, spec: TableSpec, existing: set[str]) -> None:
        """A file made by an older version: columns the schema added are added (nullable); a column the schema
        no longer has (dropped, renamed) is named in an error rather than failing some later insert."""
        unknown = sorted(existing - set(spec.column_names))
        if unknown:
            raise WarehouseSchemaError(
                f"{spec.qualified_name} in {self.path} has column(s) {unknown} that the schema no longer has "
                f"(shared/schema): the file predates this version; rebuild it (delete the file; `make demo` makes "
                f"its own) or migrate it by hand"
            )
        for column in spec.columns:
            if column.name not in existing:
                # nullable whatever the schema says: the file's older rows have no value
                nullable = column.model_copy(update={"mode": "NULLABLE"})
                con.execute(f'ALTER TABLE {spec.dataset}."{spec.name}" ADD COLUMN {nullable.duckdb_definition()}')

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """One connection throughout, never let go while idle: the run's work tables live in its in-memory
        database (WORK_CATALOG). And DuckDB checkpoints the whole file whenever its WAL passes the threshold: every
        big step of a run would rewrite the database. Checkpoints wait for the end of the run instead, then the
        configured threshold is back (the setting is the connection's, not the file's)."""
        with self._lock:
            self._holds += 1
            self._connect().execute("SET checkpoint_threshold = '8GB'")
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                con = self._connect()
                con.execute("CHECKPOINT")
                con.execute(f"SET checkpoint_threshold = '{self._automatic_threshold()}'")

    # -- writes -----------------------------------------------------------------------------
    def _arrow_table(self, spec: TableSpec, rows: list[dict[str, Any]]) -> pa.Table:
        """Rows as an Arrow table of the spec's types; BadRows names every row that does not fit."""
        try:
            _known_columns(spec, set().union(*rows))
            return _typed(spec, pa.Table.from_pylist(rows, schema=_arrow_schema(spec)).columns)
        except _CONVERSION_ERRORS as exc:
            raise _bad(spec, rows, exc) from None

    def _arrow_columns(self, spec: TableSpec, columns: dict[str, list[Any]]) -> pa.Table:
        """Columns (as collect publishes them) as an Arrow table of the spec's types: one conversion per column.
        The same checks as for rows; BadRows names every row that does not fit."""
        height = column_height(columns)
        try:
            _known_columns(spec, set(columns))
            arrays = [
                pa.nulls(height, _ARROW_TYPES[c.type])
                if (values := columns.get(c.name)) is None
                else pa.array(values, type=_ARROW_TYPES[c.type])
                for c in spec.columns
            ]
            return _typed(spec, arrays)
        except _CONVERSION_ERRORS as exc:
            raise _bad(spec, to_rows(columns), exc) from None

    def _arrow_typed(self, spec: TableSpec, arrow: pa.Table) -> pa.Table:
        """An Arrow table as collect read its columns' types, in the spec's columns and types. The same checks as
        for rows; BadRows names every row that does not fit."""
        try:
            _known_columns(spec, set(arrow.column_names))
            for c in spec.columns:
                if c.name in arrow.column_names and arrow.schema.field(c.name).type not in _ARROW_TAKES[c.type]:
                    raise TypeError(f"{c.name} is {arrow.schema.field(c.name).type}, not {c.type}")
            arrays = [
                arrow.column(c.name).cast(_ARROW_TYPES[c.type])
                if c.name in arrow.column_names
                else pa.nulls(arrow.num_rows, _ARROW_TYPES[c.type])
                for c in spec.columns
            ]
            return _typed(spec, arrays)
        except (*_CONVERSION_ERRORS, pa.ArrowNotImplementedError) as exc:
            raise _bad(spec, arrow.to_pylist(), exc) from None

    def _insert(self, con: duckdb.DuckDBPyConnection, spec: TableSpec, rows: list[dict[str, Any]]) -> None:
        self._insert_arrow(con, spec, [self._arrow_table(spec, rows)])

    @staticmethod
    def _insert_arrow(con: duckdb.DuckDBPyConnection, spec: TableSpec, parts: list[pa.Table]) -> None:
        arrow_rows = pa.concat_tables(parts) if len(parts) > 1 else parts[0]  # noqa: F841 - read by DuckDB
        con.execute(f'INSERT INTO {spec.dataset}."{spec.name}" BY NAME SELECT * FROM arrow_rows')

    def insert_rows(self, table_name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        spec = table(table_name)
        with self._lock:
            con = self._connect()
            self._insert(con, spec, rows)

    def insert_columns(self, table_name: str, columns: dict[str, list[Any]]) -> None:
        if not column_height(columns):
            return
        spec = table(table_name)
        arrow = self._arrow_columns(spec, columns)  # one conversion per column, not per row
        with self._lock:
            self._insert_arrow(self._connect(), spec, [arrow])

    @contextmanager
    def incoming(self) -> Iterator[None]:
        with self._arrivals:
            self._announced += 1
            self._in_flight += 1
            if self._in_flight > 1:
                self._fed_concurrently_until = time.monotonic() + _CONCURRENCY_MEMORY_SECONDS
            self._arrivals.notify_all()  # a lingering writer takes this one along
        self._local.announced = True
        try:
            yield
        finally:
            self._arrived()  # if it never queued a batch (it raised first), nobody waits for it any longer
            with self._arrivals:
                self._in_flight -= 1

    def _arrived(self) -> None:
        """This thread's announced message is queued (or gone): a waiting writer need not wait for it."""
        if getattr(self._local, "announced", False):
            self._local.announced = False
            with self._arrivals:
                self._announced -= 1
                self._arrivals.notify_all()

    def _gather_announced(self) -> None:
        """The writer, holding the writer lock, waits for announced messages still being parsed and converted (at
        most gather_seconds), so that they join this group rather than each paying an insert per table and a
        commit of its own (about 2 ms of a 7 ms write for a 1,000-row message). When messages came in concurrently
        within the last second and none is announced now, it first lingers (at most _LINGER_SECONDS) for the next:
        a push subscription with two deliveries in flight otherwise settles into writing them one by one, each
        arriving while the other is written."""
        if self._gather <= 0:
            return
        start = time.monotonic()
        deadline = start + self._gather
        with self._arrivals:
            linger_until = start + min(_LINGER_SECONDS, self._gather) if start < self._fed_concurrently_until else 0
            while True:
                now = time.monotonic()
                if self._announced > 0:
                    linger_until = 0  # one is coming: wait for it (and any others), not for more
                    if now >= deadline:
                        return
                    self._arrivals.wait(deadline - now)
                elif now < linger_until:
                    self._arrivals.wait(linger_until - now)
                else:
                    return

    def write_batch(self, batch: LoadBatch) -> bool:
        """Group commit: concurrent callers (the loader's threads) queue their batch; whoever holds the writer
        lock writes everything queued in one transaction, so a burst of small messages costs one commit."""
        # Converting rows is the CPU-heavy part: done by each caller before queueing, so that one message is
        # converted while another is written. Rows that do not fit raise BadRows here, before any lock.
        tables = {name: self._arrow_table(table(name), rows) for name, rows in batch.rows.items() if rows}
        for name, columns in batch.columns.items():
            if column_height(columns):
                tables[name] = self._arrow_columns(table(name), columns)
        for name, arrow in batch.arrow.items():
            if arrow.num_rows:
                tables[name] = self._arrow_typed(table(name), arrow)
        ticket = _Ticket(batch, tables)
        with self._queue_lock:
            self._queue.append(ticket)
        self._arrived()
        with self._lock:
            if not ticket.done:
                self._gather_announced()
                with self._queue_lock:
                    group, self._queue = self._queue, []
                try:
                    self._write_group(group)
                except Exception as exc:  # the file could not be opened, ...: every caller must hear of it
                    for waiting in group:
                        if not waiting.done:
                            waiting.finish(error=exc)
        if ticket.error is not None:
            raise ticket.error
        if not ticket.done:  # never acknowledge what was not written
            raise WarehouseUnavailable(f"batch {batch.message_id} was not written")
        self._checkpoint_when_due()
        return ticket.written

    def _write_group(self, group: list[_Ticket]) -> None:
        con = self._connect()
        ids = [t.batch.message_id for t in group]
        seen = {
            r[0]
            for r in con.execute(
                "SELECT message_id FROM ops.load_batches WHERE list_contains($1, message_id)", [ids]
            ).fetchall()
        }
        fresh: list[_Ticket] = []
        for ticket in group:
            if ticket.batch.message_id in seen:
                ticket.finish(written=False)
            else:
                seen.add(ticket.batch.message_id)  # the same message twice in one group: write it once
                fresh.append(ticket)
        if not fresh:
            return
        try:
            self._commit(con, fresh)
        except BadRows as bad:
            if len(fresh) == 1:
                fresh[0].finish(error=bad)
                return
            for ticket in fresh:  # find whose rows do not fit: each on its own, each told its own outcome
                try:
                    self._commit(con, [ticket])
                    ticket.finish(written=True)
                except BadRows as own:
                    ticket.finish(error=own)
            return
        except Exception as exc:
            for ticket in fresh:
                ticket.finish(error=exc)
            return
        for ticket in fresh:
            ticket.finish(written=True)

    def _commit(self, con: duckdb.DuckDBPyConnection, tickets: list[_Ticket]) -> None:
        tables: dict[str, list[pa.Table]] = {}
        for ticket in tickets:
            for name, arrow in ticket.tables.items():
                tables.setdefault(name, []).append(arrow)
        ledger = self._arrow_table(table("ops.load_batches"), [t.batch.ledger_row() for t in tickets])
        con.execute("BEGIN TRANSACTION")
        try:
            for name, parts in [*tables.items(), ("ops.load_batches", [ledger])]:
                self._insert_arrow(con, table(name), parts)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    # -- reads ------------------------------------------------------------------------------
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        statements = to_duckdb(sql)
        with self._lock:
            con = self._connect()
            cursor = con
            for statement in statements:
                used = {k: v for k, v in (params or {}).items() if f"${k}" in statement}
                cursor = con.execute(statement, used) if used else con.execute(statement)
            if cursor.description is None:
                return []
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
