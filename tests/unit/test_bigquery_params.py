"""The BigQuery adapter without a network: parameter typing, chunking, row ids, error mapping, and the calls
it makes on a recording stand-in for google.cloud.bigquery.Client."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests.exceptions
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from shared.messages import to_columns
from shared.schema import RAW_TABLES, all_tables, table
from shared.warehouse import BadRows, LoadBatch, WarehouseUnavailable
from shared.warehouse.bigquery import (
    MAX_ROWS_PER_INSERT,
    BigQueryWarehouse,
    chunk_bounds,
    insert_errors_to_exception,
    is_transient,
    json_rows,
    query_parameter,
    query_parameters,
    row_id_column,
    table_resource,
)

# -- parameter typing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ("shop", "STRING"),
        ("", "STRING"),
        (True, "BOOL"),
        (False, "BOOL"),
        (0, "INT64"),
        (2**40, "INT64"),
        (1.5, "FLOAT64"),
        (Decimal("1.25"), "NUMERIC"),
        (datetime(2026, 11, 23, 1, tzinfo=UTC), "TIMESTAMP"),
        (datetime(2026, 11, 23, 1), "TIMESTAMP"),
        (date(2026, 11, 23), "DATE"),
        (b"\x00\x01", "BYTES"),
        (None, "STRING"),
        # ISO-8601 date-times with a zone, as the pipeline writes them: TIMESTAMP.
        ("2026-11-23T01:00:00Z", "TIMESTAMP"),
        ("2026-11-23T01:00:00.123456Z", "TIMESTAMP"),
        ("2026-11-23 10:00:00+09:00", "TIMESTAMP"),
        ("2026-11-23T10:00+0900", "TIMESTAMP"),
        ("2026-11-23T01:00:00-05", "TIMESTAMP"),
        # Without a zone, or not a date-time: STRING (GoogleSQL coerces it where compared to a TIMESTAMP).
        ("2026-11-23T01:00:00", "STRING"),
        ("2026-11-23", "STRING"),
        ("20261123T010000Z", "STRING"),
        ("2026-13-45T01:00:00Z", "STRING"),
        ("order 2026-11-23T01:00:00Z", "STRING"),
        ("Z", "STRING"),
    ],
)
def test_scalar_types_are_inferred_from_python_values(value: Any, type_name: str) -> None:
    parameter = query_parameter("p", value)

    assert isinstance(parameter, bigquery.ScalarQueryParameter)
    assert parameter.name == "p"
    assert parameter.type_ == type_name


def test_bool_is_not_taken_for_an_int() -> None:
    assert query_parameter("flag", True).to_api_repr()["parameterType"]["type"] == "BOOL"


def test_zoned_timestamp_strings_are_sent_as_utc_instants() -> None:
    parameter = query_parameter("since", "2026-11-23T10:00:00+09:00")

    assert parameter.value == datetime(2026, 11, 23, 1, tzinfo=UTC)  # the same instant
    assert parameter.to_api_repr() == {
        "name": "since",
        "parameterType": {"type": "TIMESTAMP"},
        "parameterValue": {"value": "2026-11-23 01:00:00+00:00"},
    }


def test_datetime_and_z_string_send_the_same_instant() -> None:
    moment = datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=UTC)

    by_datetime = query_parameter("since", moment).to_api_repr()
    by_text = query_parameter("since", "2026-11-23T01:02:03.456789Z").to_api_repr()

    assert by_datetime == by_text
    assert by_text["parameterValue"]["value"] == "2026-11-23 01:02:03.456789+00:00"


def test_null_parameter_is_a_typed_null() -> None:
    assert query_parameter("n", None).to_api_repr() == {
        "name": "n",
        "parameterType": {"type": "STRING"},
        "parameterValue": {"value": None},
    }


@pytest.mark.parametrize(
    ("values", "element"),
    [
        ([1, 2, 3], "INT64"),
        (("a", "b"), "STRING"),
        ([1.5], "FLOAT64"),
        ([True, False], "BOOL"),
        ([], "STRING"),
        (["2026-11-23T01:00:00Z", "2026-11-24T01:00:00Z"], "TIMESTAMP"),
        (["2026-11-23T01:00:00Z", "checkout"], "STRING"),
        ([date(2026, 1, 1)], "DATE"),
    ],
)
def test_lists_become_arrays_of_their_element_type(values: Any, element: str) -> None:
    parameter = query_parameter("ids", values)

    assert isinstance(parameter, bigquery.ArrayQueryParameter)
    assert parameter.array_type == element
    assert len(parameter.values) == len(values)


def test_mixed_string_array_keeps_the_strings_as_given() -> None:
    parameter = query_parameter("v", ["2026-11-23T01:00:00Z", "checkout"])

    assert parameter.values == ["2026-11-23T01:00:00Z", "checkout"]


@pytest.mark.parametrize("values", [[1, "a"], [[1], [2]], [{"a": 1}]])
def test_arrays_of_mixed_or_nested_values_are_refused(values: Any) -> None:
    with pytest.raises(TypeError):
        query_parameter("bad", values)


def test_unsupported_values_are_refused_with_the_parameter_named() -> None:
    with pytest.raises(TypeError, match="dict"):
        query_parameter("x", {"a": 1})


def test_a_ready_parameter_passes_through_under_its_key() -> None:
    given = bigquery.ScalarQueryParameter("other", "STRING", "2026-11-23T01:00:00Z")

    parameter = query_parameter("since", given)

    assert parameter.to_api_repr() == {
        "name": "since",
        "parameterType": {"type": "STRING"},
        "parameterValue": {"value": "2026-11-23T01:00:00Z"},
    }
    assert given.name == "other"


def test_only_parameters_the_statement_names_are_sent() -> None:
    sql = "SELECT * FROM ops.rejected WHERE received_at >= @since AND (@reason_code = '' OR reason_code = @reason_code)"

    sent = query_parameters(sql, {"since": "2026-11-23T00:00:00Z", "reason_code": "", "unused": 1, "since_x": 2})

    assert sorted(p.name for p in sent) == ["reason_code", "since"]
    assert query_parameters("SELECT @since_day AS d", {"since": 1}) == []
    assert query_parameters("SELECT 1", None) == []


# -- chunking ---------------------------------------------------------------------------------------


def test_chunks_hold_at_most_500_rows() -> None:
    rows = [{"event_id": str(i)} for i in range(1201)]
    ids = [r["event_id"] for r in rows]

    assert list(chunk_bounds(rows, ids)) == [(0, 500), (500, 1000), (1000, 1201)]
    assert MAX_ROWS_PER_INSERT == 500


def test_chunks_stay_under_the_byte_budget() -> None:
    rows = [{"event_id": str(i), "raw": "x" * 1_000_000} for i in range(20)]
    ids = [r["event_id"] for r in rows]

    bounds = list(chunk_bounds(rows, ids, max_bytes=9 * 1024 * 1024))

    assert [end - start for start, end in bounds] == [9, 9, 2]
    assert bounds[0][0] == 0 and bounds[-1][1] == 20
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


def test_a_row_over_the_byte_budget_goes_alone() -> None:
    rows = [{"raw": "small"}, {"raw": "x" * 200}, {"raw": "small"}]

    assert list(chunk_bounds(rows, ["a", "b", "c"], max_bytes=150)) == [(0, 1), (1, 2), (2, 3)]


def test_no_rows_no_chunks() -> None:
    assert list(chunk_bounds([], [])) == []


# -- rows -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "column"),
    [
        *((f"raw.{t}", "event_id") for t in RAW_TABLES),
        ("ops.rejected", "rejected_id"),
        ("ops.load_batches", "message_id"),
    ],
)
def test_row_ids_come_from_each_tables_id_column(name: str, column: str) -> None:
    assert row_id_column(table(name)) == column


def test_timestamps_are_sent_in_one_canonical_form_without_touching_the_input() -> None:
    rows = [{"message_id": "m", "loaded_at": "2026-11-23T10:00:00+09:00", "published_at": None, "row_count": 1}]

    sent = json_rows(table("ops.load_batches"), rows)

    assert sent == [
        {"message_id": "m", "loaded_at": "2026-11-23T01:00:00.000000Z", "published_at": None, "row_count": 1}
    ]
    assert rows[0]["loaded_at"] == "2026-11-23T10:00:00+09:00"


# -- error mapping ----------------------------------------------------------------------------------


def test_rows_bigquery_refuses_become_bad_rows_at_their_index_in_the_callers_list() -> None:
    errors = [
        {"index": 0, "errors": [{"reason": "stopped", "message": ""}]},
        {"index": 1, "errors": [{"reason": "invalid", "location": "event_time", "message": "bad timestamp"}]},
        {"index": 2, "errors": [{"reason": "stopped", "message": ""}]},
    ]

    found = insert_errors_to_exception(table("raw.page"), errors, offset=500)

    assert isinstance(found, BadRows)
    assert found.table == "raw.page"
    assert list(found.bad) == [501]
    assert "raw.page.event_time" in found.bad[501] and "bad timestamp" in found.bad[501]


@pytest.mark.parametrize("reason", ["backendError", "internalError", "rateLimitExceeded", "timeout", "stopped"])
def test_row_errors_without_an_invalid_row_are_transient(reason: str) -> None:
    found = insert_errors_to_exception(table("raw.page"), [{"index": 0, "errors": [{"reason": reason}]}])

    assert isinstance(found, WarehouseUnavailable)


@pytest.mark.parametrize(
    "exc",
    [
        api_exceptions.ServiceUnavailable("down"),
        api_exceptions.InternalServerError("oops"),
        api_exceptions.BadGateway("gw"),
        api_exceptions.GatewayTimeout("slow"),
        api_exceptions.DeadlineExceeded("slow"),
        api_exceptions.TooManyRequests("429"),
        api_exceptions.RetryError("gave up", cause=None),
        api_exceptions.Forbidden("quota", errors=[{"reason": "rateLimitExceeded"}]),
        api_exceptions.BadRequest("job", errors=[{"reason": "backendError"}]),
        requests.exceptions.ConnectionError("refused"),
        requests.exceptions.ReadTimeout("read"),
        ConnectionResetError("reset"),
        TimeoutError("job did not finish"),
    ],
)
def test_transient_failures_are_recognised(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        api_exceptions.BadRequest("syntax", errors=[{"reason": "invalidQuery"}]),
        api_exceptions.BadRequest("bytes", errors=[{"reason": "bytesBilledLimitExceeded"}]),
        api_exceptions.Forbidden("denied", errors=[{"reason": "accessDenied"}]),
        api_exceptions.NotFound("no table"),
        requests.exceptions.SSLError("certificate"),
        ValueError("bug"),
    ],
)
def test_permanent_failures_are_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


# -- the table resources ----------------------------------------------------------------------------


def test_tables_are_made_as_the_schema_says() -> None:
    for name, spec in all_tables().items():
        resource = table_resource(spec, "proj")

        assert resource.full_table_id is None  # not created yet, only described
        assert f"{resource.project}.{resource.dataset_id}.{resource.table_id}" == f"proj.{name}"
        assert resource.time_partitioning.type_ == "DAY"
        assert resource.time_partitioning.field == spec.partition_field
        assert resource.clustering_fields == spec.clustering
        assert resource.require_partition_filter is (spec.dataset == "raw")
        assert resource.description == (spec.description or None)
        assert [(f.name, f.field_type, f.mode, f.description) for f in resource.schema] == [
            (c.name, c.type, c.mode, c.description or None) for c in spec.columns
        ]


# -- the adapter against a recording client ---------------------------------------------------------


class RecordingClient:
    """Records insert_rows_json / query (and the job's result) calls; answers from queues given by the test."""

    def __init__(self) -> None:
        self.inserts: list[dict[str, Any]] = []
        self.queries: list[dict[str, Any]] = []
        self.insert_answers: list[Any] = []  # per call: list of row errors, or an exception to raise
        self.query_answer: Any = []

    def insert_rows_json(self, table_id: str, rows: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        self.inserts.append({"table": table_id, "rows": rows, **kwargs})
        answer = self.insert_answers.pop(0) if self.insert_answers else []
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def query(self, sql: str, **kwargs: Any) -> RecordingClient:
        self.queries.append({"sql": sql, **kwargs})
        return self

    def result(self, **kwargs: Any) -> list[Any]:  # the query job
        self.queries[-1]["result"] = kwargs
        if isinstance(self.query_answer, BaseException):
            raise self.query_answer
        return self.query_answer

    def close(self) -> None:
        pass


def _warehouse(client: RecordingClient) -> BigQueryWarehouse:
    return BigQueryWarehouse(project="proj", location="asia-northeast3", maximum_bytes_billed=123, client=client)  # type: ignore[arg-type]


def _page_row(event_id: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "event_id": event_id,
        "site_id": "shop",
        "call": "page",
        "event_time": "2026-11-23T01:00:00.000000Z",
        "received_at": "2026-11-23T01:00:00.000000Z",
        "anonymous_id": "a1",
        "raw": "{}",
    }
    return {**row, **overrides}


def _rejected_row(rejected_id: str) -> dict[str, Any]:
    return {
        "rejected_id": rejected_id,
        "received_at": "2026-11-23T01:00:00.000000Z",
        "stage": "collect",
        "reason_code": "invalid_event",
        "reason": "no id",
        "payload": "{}",
        "payload_truncated": False,
    }


def test_insert_sends_event_ids_as_row_ids_in_chunks() -> None:
    client = RecordingClient()
    rows = [_page_row(f"e{i}") for i in range(1100)]

    _warehouse(client).insert_rows("raw.page", rows)

    assert [c["table"] for c in client.inserts] == ["proj.raw.page"] * 3
    assert [len(c["rows"]) for c in client.inserts] == [500, 500, 100]
    assert [i for c in client.inserts for i in c["row_ids"]] == [f"e{i}" for i in range(1100)]
    assert client.inserts[0]["timeout"] is not None and client.inserts[0]["retry"] is not None


def test_rows_that_do_not_fit_raise_before_anything_is_sent() -> None:
    client = RecordingClient()
    rows = [_page_row("e0"), _page_row("e1", event_time="yesterday"), _page_row("e2")]

    with pytest.raises(BadRows) as raised:
        _warehouse(client).insert_rows("raw.page", rows)

    assert list(raised.value.bad) == [1]
    assert client.inserts == []


def test_a_row_bigquery_refuses_in_a_later_chunk_is_named_by_its_index() -> None:
    client = RecordingClient()
    client.insert_answers = [[], [{"index": 3, "errors": [{"reason": "invalid", "message": "no"}]}]]

    with pytest.raises(BadRows) as raised:
        _warehouse(client).insert_rows("raw.page", [_page_row(f"e{i}") for i in range(600)])

    assert list(raised.value.bad) == [503]


@pytest.mark.parametrize(
    "failure",
    [
        api_exceptions.ServiceUnavailable("503"),
        api_exceptions.RetryError("deadline", cause=api_exceptions.InternalServerError("500")),
        requests.exceptions.ConnectionError("refused"),
        api_exceptions.NotFound("table raw.page"),
    ],
)
def test_transport_and_server_failures_are_unavailable(failure: BaseException) -> None:
    client = RecordingClient()
    client.insert_answers = [failure]

    with pytest.raises(WarehouseUnavailable):
        _warehouse(client).insert_rows("raw.page", [_page_row("e0")])


def test_a_permanent_request_error_is_not_hidden() -> None:
    client = RecordingClient()
    client.insert_answers = [api_exceptions.BadRequest("no such field", errors=[{"reason": "invalid"}])]

    with pytest.raises(api_exceptions.BadRequest):
        _warehouse(client).insert_rows("raw.page", [_page_row("e0")])


def test_write_batch_validates_every_table_first_then_writes_the_ledger_last() -> None:
    client = RecordingClient()
    published = datetime(2026, 11, 23, 1, tzinfo=UTC)
    batch = LoadBatch(
        message_id="msg-1",
        published_at=published,
        site_id="shop",
        rows={"raw.page": [_page_row("e0"), _page_row("e1")], "ops.rejected": [_rejected_row("r0")], "raw.land": []},
    )

    assert _warehouse(client).write_batch(batch) is True

    assert [c["table"] for c in client.inserts] == ["proj.raw.page", "proj.ops.rejected", "proj.ops.load_batches"]
    assert client.inserts[1]["row_ids"] == ["r0"]
    ledger = client.inserts[2]
    assert ledger["row_ids"] == ["msg-1"]
    (row,) = ledger["rows"]
    assert {k: row[k] for k in ("message_id", "published_at", "site_id", "row_count", "rejected_count")} == {
        "message_id": "msg-1",
        "published_at": "2026-11-23T01:00:00.000000Z",
        "site_id": "shop",
        "row_count": 2,
        "rejected_count": 1,
    }
    assert datetime.fromisoformat(row["loaded_at"]).tzinfo is not None


def test_write_batch_sends_a_column_major_batch_as_the_rows_it_holds() -> None:
    rows = [_page_row("e0"), {**_page_row("e1"), "user_id": "u1"}]  # a key only the second row has
    by_rows, by_columns = RecordingClient(), RecordingClient()
    _warehouse(by_rows).write_batch(LoadBatch(message_id="m", rows={"raw.page": rows}))
    _warehouse(by_columns).write_batch(LoadBatch(message_id="m", columns={"raw.page": to_columns(rows)}))

    page_rows, column_rows = by_rows.inserts[0], by_columns.inserts[0]
    assert (column_rows["table"], column_rows["row_ids"]) == ("proj.raw.page", ["e0", "e1"])
    assert column_rows["rows"] == [{**row, "user_id": row.get("user_id")} for row in page_rows["rows"]]
    assert by_columns.inserts[1]["rows"][0]["row_count"] == 2


def test_write_batch_finds_a_bad_row_in_a_column_major_batch_and_writes_nothing() -> None:
    client = RecordingClient()
    columns = to_columns([_page_row("e0"), {**_page_row("e1"), "event_time": "last tuesday"}])

    with pytest.raises(BadRows) as raised:
        _warehouse(client).write_batch(LoadBatch(message_id="m", columns={"raw.page": columns}))

    assert (raised.value.table, list(raised.value.bad)) == ("raw.page", [1])
    assert client.inserts == []


def test_write_batch_with_a_bad_row_anywhere_writes_nothing() -> None:
    client = RecordingClient()
    batch = LoadBatch(
        message_id="msg-2",
        rows={"raw.page": [_page_row("e0")], "raw.event": [_page_row("e1")]},  # a page row does not fit raw.event
    )

    with pytest.raises(BadRows) as raised:
        _warehouse(client).write_batch(batch)

    assert raised.value.table == "raw.event"
    assert list(raised.value.bad) == [0]
    assert client.inserts == []


def test_query_sends_typed_parameters_the_byte_cap_and_no_default_dataset() -> None:
    client = RecordingClient()
    client.query_answer = [bigquery.Row((3, "page"), {"n": 0, "t": 1})]

    rows = _warehouse(client).query(
        "SELECT @n AS n FROM raw.page WHERE event_time >= @since", {"since": "2026-11-23T00:00:00Z", "n": 3}
    )

    assert rows == [{"n": 3, "t": "page"}]
    (call,) = client.queries
    config: bigquery.QueryJobConfig = call["job_config"]
    assert config.maximum_bytes_billed == 123
    assert config.default_dataset is None
    assert config.use_legacy_sql is False
    assert {p.name: p.type_ for p in config.query_parameters} == {"since": "TIMESTAMP", "n": "INT64"}
    assert call["location"] == "asia-northeast3"
    assert call["timeout"] is not None and call["result"]["timeout"] is not None
    assert call["sql"] == "SELECT @n AS n FROM raw.page WHERE event_time >= @since"


def test_query_failures_map_transient_to_unavailable_and_keep_the_rest() -> None:
    client = RecordingClient()
    warehouse = _warehouse(client)

    client.query_answer = api_exceptions.ServiceUnavailable("503")
    with pytest.raises(WarehouseUnavailable):
        warehouse.query("SELECT 1")

    client.query_answer = api_exceptions.BadRequest("Syntax error", errors=[{"reason": "invalidQuery"}])
    with pytest.raises(api_exceptions.BadRequest):
        warehouse.query("SELEC 1")
