"""The cloud warehouse: BigQuery through google-cloud-bigquery, fed the GoogleSQL of shared/sql as it is.

Streaming inserts (`insertAll`) carry a row id per row (the table's id column), so that a redelivered
message is deduplicated by BigQuery where it can (best effort, about a minute); the raw_unique views and
`QUALIFY` in later stages remove what gets through. Transient failures (transport, 5xx, 429, rate limits,
time-outs) become WarehouseUnavailable so that Pub/Sub redelivers; rows that do not fit become BadRows.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import requests.exceptions
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY

from shared.schema import RAW_TABLES, TableSpec, all_tables, datasets, table
from shared.timeutil import to_iso
from shared.warehouse.base import BadRows, LoadBatch, Warehouse, WarehouseUnavailable, bad_rows

# insertAll: BigQuery recommends at most 500 rows a request and refuses requests over 10 MB.
MAX_ROWS_PER_INSERT = 500
MAX_BYTES_PER_INSERT = 9 * 1024 * 1024
_ROW_OVERHEAD_BYTES = 64  # {"insertId": ..., "json": ...} around each row

# Error reasons (BigQuery's `errors[].reason`) that a later attempt may not meet.
TRANSIENT_REASONS = frozenset(
    {"backendError", "internalError", "badGateway", "rateLimitExceeded", "quotaExceeded", "timeout"}
)
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    api_exceptions.RetryError,  # our retry gave up on retryable errors
    api_exceptions.ServerError,  # 5xx, including DeadlineExceeded / GatewayTimeout
    api_exceptions.TooManyRequests,  # 429
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exceptions.TransportError,
    ConnectionError,
    TimeoutError,  # also concurrent.futures.TimeoutError from job.result(timeout=)
)

# An ISO-8601 date and time with a zone (Z or ±hh[:mm]): the form the pipeline writes timestamps in.
_ZONED_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)")


# -- query parameters ----------------------------------------------------------------------------
def _scalar_type(value: Any) -> str:
    """The GoogleSQL type of a Python value, as the DuckDB path would compare it."""
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        return "NUMERIC"
    if isinstance(value, datetime):  # before date: a datetime is a date
        return "TIMESTAMP"  # naive means UTC, as in the DuckDB session (TimeZone UTC)
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, bytes):
        return "BYTES"
    if isinstance(value, str):
        return "TIMESTAMP" if _zoned_timestamp(value) is not None else "STRING"
    if value is None:
        return "STRING"  # a typed NULL; compared with anything it is NULL, as in DuckDB
    raise TypeError(f"no BigQuery parameter type for {type(value).__name__} value {value!r}")


def _zoned_timestamp(text: str) -> datetime | None:
    if not _ZONED_TIMESTAMP.fullmatch(text.strip()):
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _scalar_value(type_name: str, value: Any) -> Any:
    if type_name == "TIMESTAMP" and isinstance(value, str):
        return _zoned_timestamp(value)  # the client writes it as UTC "YYYY-MM-DD HH:MM:SS.ffffff+00:00"
    return value


def query_parameter(
    name: str, value: Any
) -> bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter | bigquery.StructQueryParameter:
    """One named parameter, its type inferred from the Python value:
    str→STRING (ISO-8601 date-time with a zone → TIMESTAMP), bool→BOOL, int→INT64, float→FLOAT64,
    Decimal→NUMERIC, datetime→TIMESTAMP, date→DATE, bytes→BYTES, None→NULL STRING, list/tuple→ARRAY.
    A string parameter without a zone stays STRING; GoogleSQL coerces STRING parameters where a
    TIMESTAMP or DATE is compared, as DuckDB does. A ready query parameter object is passed through
    (renamed), for the rare case where the inferred type is not the wanted one."""
    if isinstance(value, bigquery.ScalarQueryParameter | bigquery.ArrayQueryParameter | bigquery.StructQueryParameter):
        copied = copy.copy(value)
        copied.name = name
        return copied
    if isinstance(value, list | tuple):
        types = {_scalar_type(v) for v in value if v is not None}
        if any(isinstance(v, list | tuple | dict) for v in value):
            raise TypeError(f"parameter @{name}: arrays of arrays or structs are not supported")
        if len(types) > 1:
            # Zoned timestamps mixed with other strings: all strings (coerced where compared).
            types = {"STRING"} if types <= {"STRING", "TIMESTAMP"} else types
        if len(types) > 1:
            raise TypeError(f"parameter @{name}: array elements of several types {sorted(types)}")
        element = types.pop() if types else "STRING"
        return bigquery.ArrayQueryParameter(name, element, [_scalar_value(element, v) for v in value])
    type_name = _scalar_type(value)
    return bigquery.ScalarQueryParameter(name, type_name, _scalar_value(type_name, value))


def query_parameters(sql: str, params: Mapping[str, Any] | None) -> list[Any]:
    """The parameters the statement names (@name), as the DuckDB path passes only those it uses."""
    return [
        query_parameter(name, value)
        for name, value in (params or {}).items()
        if re.search(rf"@{re.escape(name)}(?![A-Za-z0-9_])", sql)
    ]


# -- rows ------------------------------------------------------------------------------------------
def row_id_column(spec: TableSpec) -> str:
    """The column whose value is the insertAll row id: the first REQUIRED *_id column
    (event_id on raw tables, rejected_id on ops.rejected, message_id on ops.load_batches)."""
    for column in spec.columns:
        if column.required and column.name.endswith("_id"):
            return column.name
    raise ValueError(f"{spec.qualified_name} has no REQUIRED id column for insertAll row ids")


def json_rows(spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows as insertAll sends them: timestamps rewritten to one canonical form (UTC, microseconds, Z),
    so that every value `bad_rows` accepts (any ISO-8601 with a zone) is one BigQuery accepts too."""
    stamps = [c.name for c in spec.columns if c.type == "TIMESTAMP"]
    out = []
    for row in rows:
        copy = dict(row)
        for name in stamps:
            value = copy.get(name)
            if isinstance(value, str):
                copy[name] = to_iso(datetime.fromisoformat(value))
        out.append(copy)
    return out


def chunk_bounds(
    rows: Sequence[Mapping[str, Any]],
    row_ids: Sequence[str],
    *,
    max_rows: int = MAX_ROWS_PER_INSERT,
    max_bytes: int = MAX_BYTES_PER_INSERT,
) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive requests of at most max_rows rows and about max_bytes of JSON each.
    A row larger than max_bytes goes alone (BigQuery then judges it)."""
    start, size = 0, 0
    for index, (row, row_id) in enumerate(zip(rows, row_ids, strict=True)):
        row_size = len(orjson.dumps(row)) + len(row_id) + _ROW_OVERHEAD_BYTES
        if index > start and (index - start >= max_rows or size + row_size > max_bytes):
            yield start, index
            start, size = index, 0
        size += row_size
    if start < len(rows):
        yield start, len(rows)


def insert_errors_to_exception(
    spec: TableSpec, errors: Sequence[Mapping[str, Any]], offset: int = 0
) -> BadRows | WarehouseUnavailable:
    """insertAll's per-row errors: rows BigQuery refused (reason `invalid`, ...) → BadRows with their
    indices in the caller's list; only transient reasons (or only `stopped`) → WarehouseUnavailable.
    Without skipInvalidRows BigQuery writes nothing of a request that has an invalid row; the others
    come back as `stopped`."""
    bad: dict[int, str] = {}
    transient: list[str] = []
    for item in errors:
        index = offset + int(item.get("index", 0))
        problems = list(item.get("errors") or [])
        definite = [p for p in problems if p.get("reason") not in TRANSIENT_REASONS | {"stopped"}]
        if definite:
            bad[index] = "; ".join(
                f"{spec.qualified_name}{'.' + p['location'] if p.get('location') else ''}: "
                f"BigQuery refused the row: {p.get('message') or p.get('reason')}"
                for p in definite
            )
        else:
            transient.extend(str(p.get("reason")) for p in problems)
    if bad:
        return BadRows(spec.qualified_name, dict(sorted(bad.items())))
    reasons = sorted(set(transient)) or ["no reason given"]
    return WarehouseUnavailable(f"insertAll into {spec.qualified_name} failed for {len(errors)} row(s): {reasons}")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # configuration, not weather
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        reasons = {e.get("reason") for e in (exc.errors or []) if isinstance(e, dict)}
        return bool(reasons & TRANSIENT_REASONS)
    return False


def table_resource(spec: TableSpec, project: str) -> bigquery.Table:
    """The table as shared/schema describes it: columns with modes and descriptions, day partitions on
    the partition field, clustering, and a required partition filter on the raw tables."""
    resource = bigquery.Table(
        f"{project}.{spec.dataset}.{spec.name}",
        schema=[
            bigquery.SchemaField(c.name, c.type, mode=c.mode, description=c.description or None) for c in spec.columns
        ],
    )
    resource.time_partitioning = bigquery.TimePartitioning(
        type_=bigquery.TimePartitioningType.DAY, field=spec.partition_field
    )
    resource.clustering_fields = list(spec.clustering) or None
    resource.require_partition_filter = spec.dataset == "raw" and spec.name in RAW_TABLES
    resource.description = spec.description or None
    return resource


class BigQueryWarehouse(Warehouse):
    """Tables are `dataset.table` in the client's project; queries run with no default dataset and a
    `maximum_bytes_billed` cap. The client is made on first use (application default credentials)
    unless one is given (tests point one at bqemulator)."""

    def __init__(
        self,
        project: str,
        location: str,
        maximum_bytes_billed: int,
        client: bigquery.Client | None = None,
        *,
        retry_seconds: float = 30.0,
        request_timeout: float = 30.0,
        query_timeout: float = 300.0,
    ) -> None:
        self.project = project
        self.location = location
        self.maximum_bytes_billed = maximum_bytes_billed
        self._client = client
        self._own_client = client is None
        self._client_lock = threading.Lock()
        # The library's defaults retry for 10 min (failed jobs for 40 min): longer than a function may run.
        # retry_seconds bounds both the retrying of calls and the re-running of jobs that failed transiently;
        # past it the caller gets WarehouseUnavailable and Pub/Sub (or the user) tries again later.
        self._retry = DEFAULT_RETRY.with_timeout(retry_seconds)
        self._job_retry = DEFAULT_JOB_RETRY.with_timeout(retry_seconds)
        self._request_timeout = request_timeout
        self._query_timeout = query_timeout

    @property
    def client(self) -> bigquery.Client:
        with self._client_lock:
            if self._client is None:
                self._client = bigquery.Client(project=self.project, location=self.location)
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None and self._own_client:
                self._client.close()
                self._client = None

    def _table_id(self, spec: TableSpec) -> str:
        return f"{self.project}.{spec.dataset}.{spec.name}"

    # -- schema -----------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Datasets, tables and raw_unique views of shared/schema, created where missing (idempotent).
        Columns added to the schema since a table was made are added to it (as NULLABLE: BigQuery adds
        no REQUIRED column to an existing table). In the cloud Pulumi owns these; this serves tests,
        dev projects and the CLI."""
        try:
            for name in datasets():
                dataset = bigquery.Dataset(f"{self.project}.{name}")
                dataset.location = self.location
                self.client.create_dataset(dataset, exists_ok=True, retry=self._retry, timeout=self._request_timeout)
            for spec in all_tables().values():
                wanted = table_resource(spec, self.project)
                made = self.client.create_table(
                    wanted, exists_ok=True, retry=self._retry, timeout=self._request_timeout
                )
                have = {f.name for f in made.schema}
                missing = [f for f in wanted.schema if f.name not in have]
                if missing:
                    made.schema = [
                        *made.schema,
                        *(
                            bigquery.SchemaField(f.name, f.field_type, "NULLABLE", description=f.description)
                            for f in missing
                        ),
                    ]
                    self.client.update_table(made, ["schema"], retry=self._retry, timeout=self._request_timeout)
        except Exception as exc:
            if is_transient(exc):
                raise WarehouseUnavailable(f"BigQuery schema set-up failed: {type(exc).__name__}: {exc}") from exc
            raise
        for name in RAW_TABLES:
            self.query_file("views/raw_unique", names={"table": name})

    # -- writes -----------------------------------------------------------------------------
    def _insert(self, spec: TableSpec, rows: list[dict[str, Any]]) -> None:
        """insertAll in chunks; rows are already validated. A chunk BigQuery refuses raises after the
        chunks before it were written (their row ids let a retry be deduplicated)."""
        id_column = row_id_column(spec)
        payload = json_rows(spec, rows)
        row_ids = [str(r[id_column]) for r in rows]
        for start, end in chunk_bounds(payload, row_ids):
            try:
                errors = self.client.insert_rows_json(
                    self._table_id(spec),
                    payload[start:end],
                    row_ids=row_ids[start:end],
                    retry=self._retry,
                    timeout=self._request_timeout,
                )
            except api_exceptions.NotFound as exc:
                # The message is fine; the warehouse is not set up (or the table is brand new).
                raise WarehouseUnavailable(
                    f"{spec.qualified_name} is missing in {self.project} (run ensure_schema / pulumi up): {exc}"
                ) from exc
            except Exception as exc:
                if is_transient(exc):
                    raise WarehouseUnavailable(
                        f"insertAll into {spec.qualified_name} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                raise
            if errors:
                raise insert_errors_to_exception(spec, errors, offset=start)

    def insert_rows(self, table_name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        spec = table(table_name)
        problem = bad_rows(spec, rows)
        if problem:
            raise problem
        self._insert(spec, rows)

    def write_batch(self, batch: LoadBatch) -> bool:
        """Write a message's rows, table by table, and its ledger row in ops.load_batches last (keyed by
        batch.message_id: collect's batch id, else the Pub/Sub message id).

        Every table's rows are validated before anything is sent, so BadRows from validation means nothing
        was written. (BigQuery refusing a row that passed validation, or failing half-way, leaves the
        tables before it written; the retry writes them again under the same row ids.)

        BigQuery has no cheap transaction across streaming inserts, and looking the batch up in the ledger
        first would cost a query per message, so this always answers True: a redelivered message (or one
        retried after WarehouseUnavailable half-way) is written again. Its rows carry the same insertAll
        row ids (event_id, rejected_id, message_id), which BigQuery deduplicates best effort for about a
        minute; what gets through is removed by the raw_unique views and `QUALIFY ROW_NUMBER() OVER
        (PARTITION BY event_id ...) = 1` in later stages. A ledger row means every row of its batch was
        written before it; a batch may have more than one ledger row."""
        batch = batch.as_rows()  # insertAll takes row objects
        specs = {name: table(name) for name in batch.rows}
        for name, rows in batch.rows.items():
            problem = bad_rows(specs[name], rows) if rows else None
            if problem:
                raise problem
        for name, rows in batch.rows.items():
            if rows:
                self._insert(specs[name], rows)
        self._insert(table("ops.load_batches"), [batch.ledger_row()])
        return True

    # -- reads ------------------------------------------------------------------------------
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """GoogleSQL as written (tables named dataset.table, resolved in the client's project), with
        typed @named parameters and the maximum_bytes_billed cap."""
        config = bigquery.QueryJobConfig(
            query_parameters=query_parameters(sql, params),
            maximum_bytes_billed=self.maximum_bytes_billed,
            use_legacy_sql=False,
        )
        try:
            # jobs.insert + getQueryResults rather than query_and_wait (jobs.query): a failed statement then
            # always raises; bqemulator answers jobs.query with 200, no rows and the error in a field the
            # client does not read.
            job = self.client.query(
                sql,
                job_config=config,
                location=self.location,
                retry=self._retry,
                timeout=self._request_timeout,
                # None: no extra 10-minute retry around jobs.insert (`retry` covers the call); failed
                # jobs are re-run by job_retry below, within retry_seconds.
                job_retry=None,
            )
            rows = job.result(retry=self._retry, timeout=self._query_timeout, job_retry=self._job_retry)
            return [dict(row.items()) for row in rows]
        except Exception as exc:
            if is_transient(exc):
                raise WarehouseUnavailable(f"BigQuery query failed: {type(exc).__name__}: {exc}") from exc
            raise
