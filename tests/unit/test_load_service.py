"""Loading logic: a message in, rows written once; permanent problems become rejected rows, not retries."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.collect.service import CollectRequest, CollectService
from shared.load import handler
from shared.load.service import LoadService, parse_message
from shared.messages import ROWS_SCHEMA, decode_message, encode_arrow_message, encode_message, to_rows
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.unit.fakes import RecordingPublisher


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    w = DuckDBWarehouse(tmp_path / "w.duckdb")
    w.ensure_schema()
    return w


def collected_message(events: list[dict]) -> bytes:
    """What collect really publishes for these events."""
    publisher = RecordingPublisher()
    asyncio.run(
        CollectService(publisher, {"wk": "shop"}).handle(
            CollectRequest(endpoint="batch", body=orjson.dumps({"batch": events}), write_key="wk")
        )
    )
    return orjson.dumps(publisher.messages[0][0])


def count(w: DuckDBWarehouse, table: str) -> int:
    return w.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]


def test_collected_rows_load_and_redelivery_writes_nothing_more(warehouse: DuckDBWarehouse) -> None:
    data = collected_message(
        [
            {"type": "page", "anonymousId": "a"},
            {"type": "track", "anonymousId": "a", "event": "x"},
            {"type": "track", "anonymousId": "a"},
        ]
    )
    service = LoadService(warehouse)
    first = service.handle("m1", data)
    again = service.handle("m1", data)
    assert (first.written, first.rows, first.rejected) == (True, 3, 1)  # page + land + event; one rejected
    assert again.written is False
    assert (count(warehouse, "raw.page"), count(warehouse, "raw.land"), count(warehouse, "raw.event")) == (1, 1, 1)
    assert count(warehouse, "ops.rejected") == 1


def test_a_message_that_is_not_ours_is_kept_as_rejected_not_retried(warehouse: DuckDBWarehouse) -> None:
    outcome = LoadService(warehouse).handle("m9", b"\x00garbage")
    assert (outcome.written, outcome.rejected) == (True, 1)
    row = warehouse.query("SELECT stage, reason_code, reason FROM ops.rejected")[0]
    assert (row["stage"], row["reason_code"]) == ("load", "bad_message")
    assert "not JSON" in row["reason"]


def test_what_collect_publishes_gzip_compressed_loads(warehouse: DuckDBWarehouse) -> None:
    publisher = RecordingPublisher()
    asyncio.run(
        CollectService(publisher, {"wk": "shop"}).handle(
            CollectRequest(
                endpoint="batch", body=orjson.dumps({"batch": [{"type": "page", "anonymousId": "z"}]}), write_key="wk"
            )
        )
    )
    compressed = encode_message(publisher.messages[0][0], gzip_from=0)
    assert compressed.startswith(b"\x1f\x8b")
    outcome = LoadService(warehouse).handle("mz", compressed)
    assert (outcome.written, outcome.rows) == (True, 2)  # a page view, and the landing it is
    assert (count(warehouse, "raw.page"), count(warehouse, "raw.land")) == (1, 1)


def test_a_broken_gzip_message_is_kept_as_rejected_with_its_bytes(warehouse: DuckDBWarehouse) -> None:
    broken = encode_message({"schema": "raw-rows/1", "rows": {}}, gzip_from=0)[:-6]  # truncated in transit
    outcome = LoadService(warehouse).handle("mg", broken)
    assert (outcome.written, outcome.rejected) == (True, 1)
    row = warehouse.query("SELECT reason_code, reason, payload FROM ops.rejected")[0]
    assert row["reason_code"] == "bad_message" and "gzip" in row["reason"]
    assert base64.b64decode(row["payload"]) == broken


def test_unknown_table_is_a_permanent_error(warehouse: DuckDBWarehouse) -> None:
    data = orjson.dumps({"schema": "raw-rows/1", "rows": {"raw.nope": []}})
    LoadService(warehouse).handle("m3", data)
    assert "unknown table(s) ['raw.nope']" in warehouse.query("SELECT reason FROM ops.rejected")[0]["reason"]


def test_a_row_that_does_not_fit_moves_to_rejected_and_the_rest_loads(warehouse: DuckDBWarehouse) -> None:
    message = orjson.loads(
        collected_message([{"type": "page", "anonymousId": "a"}, {"type": "page", "anonymousId": "b"}])
    )
    message["tables"]["raw.page"]["event_time"][1] = "not a time"
    outcome = LoadService(warehouse).handle("m4", encode_message(message))
    assert (outcome.rows, outcome.rejected) == (3, 1)  # one page + two landings
    assert warehouse.query("SELECT anonymous_id FROM raw.page") == [{"anonymous_id": "a"}]
    rejected = warehouse.query("SELECT reason_code, reason, event_id, payload FROM ops.rejected")[0]
    assert rejected["reason_code"] == "row_does_not_fit"
    assert "raw.page.event_time: 'not a time' is not a TIMESTAMP" in rejected["reason"]
    assert rejected["event_id"] == message["tables"]["raw.page"]["event_id"][1]
    assert orjson.loads(rejected["payload"])["event_time"] == "not a time"
    assert orjson.loads(rejected["payload"])["anonymous_id"] == "b"


def test_the_cloud_event_edge_reads_the_push_envelope(warehouse: DuckDBWarehouse) -> None:
    data = collected_message([{"type": "page", "anonymousId": "a"}])
    envelope = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": "pm-1",
            "publishTime": "2026-11-23T10:00:00.123Z",
        },
        "subscription": "projects/p/subscriptions/s",
    }
    outcome = handler.handle("ce-1", envelope, LoadService(warehouse))
    assert outcome.message_id == "pm-1" and outcome.written
    ledger = warehouse.query("SELECT message_id, published_at FROM ops.load_batches")[0]
    assert ledger["message_id"] == outcome.batch_id == orjson.loads(decode_message(data))["batch_id"]
    assert ledger["published_at"].year == 2026


def test_the_ledger_key_survives_an_emulator_restart(warehouse: DuckDBWarehouse) -> None:
    """A restarted emulator numbers messages from 1 again: the same Pub/Sub id on new rows must still load."""
    service = LoadService(warehouse)
    first = collected_message([{"type": "page", "anonymousId": "before"}])
    second = collected_message([{"type": "page", "anonymousId": "after"}])
    assert service.handle("1", first).written
    assert service.handle("1", second).written
    assert service.handle("1", second).written is False  # a true redelivery
    assert count(warehouse, "raw.page") == 2


def _rows_message(message: dict) -> dict:
    """The same message as an older collect published it: row objects."""
    rows = {name: to_rows(columns) for name, columns in message["tables"].items()}
    return {**{k: v for k, v in message.items() if k != "tables"}, "schema": ROWS_SCHEMA, "rows": rows}


@pytest.mark.parametrize(
    "older",
    [lambda m: orjson.dumps(_rows_message(m)), lambda m: encode_message(_rows_message(m), gzip_from=0)],
    ids=["plain", "gzip"],
)
def test_messages_of_row_objects_still_in_flight_load_the_same_rows_as_columns(tmp_path: Path, older) -> None:
    events = [
        {"type": "page", "anonymousId": "a", "properties": {"url": "https://shop.kr/?utm_source=naver"}},
        {"type": "track", "anonymousId": "a", "userId": "u1", "event": "Order Completed",
         "properties": {"order_id": "o1", "revenue": 59000}},
        {"type": "identify", "userId": "u1", "traits": {"email": "a@b.kr", "birthday": "1990-01-02"}},
    ]  # fmt: skip
    message = orjson.loads(collected_message(events))
    assert message["schema"] == "raw-columns/1"
    loaded = {}
    tables = {name: to_rows(columns) for name, columns in message["tables"].items()}
    arrow = encode_arrow_message(message["batch_id"], message["site_id"], tables)  # as a large message goes
    assert arrow is not None
    forms = (("columns", encode_message(message, gzip_from=0)), ("rows", older(message)), ("arrow", arrow))
    for name, data in forms:
        with DuckDBWarehouse(tmp_path / f"{name}.duckdb") as w:
            w.ensure_schema()
            outcome = LoadService(w).handle("m1", data)
            assert (outcome.written, outcome.rows, outcome.rejected) == (True, 4, 0)  # page, its landing, conv, user
            loaded[name] = {
                t: w.query(f"SELECT * FROM {t} ORDER BY event_id")
                for t in ("raw.page", "raw.land", "raw.conv", "raw.user")
            }
    assert loaded["columns"] == loaded["rows"] == loaded["arrow"]
    conv = loaded["columns"]["raw.conv"][0]
    assert (conv["revenue"], conv["order_id"], conv["event_time"].tzinfo is not None) == (59000.0, "o1", True)
    assert orjson.loads(conv["raw"])["event"] == "Order Completed"  # the whole event, per row


@pytest.mark.parametrize(
    ("tables", "reason"),
    [
        ({"raw.page": {"event_id": ["e1", "e2"], "site_id": ["s"]}}, "columns of different lengths"),
        ({"raw.page": {"event_id": "e1"}}, "every column must be a list"),
        ({"raw.page": [{"event_id": "e1"}]}, "objects of columns"),
        ({"raw.nope": {"event_id": ["e1"]}}, "unknown table(s) ['raw.nope']"),
    ],
)
def test_a_column_message_of_the_wrong_shape_is_kept_as_rejected(
    warehouse: DuckDBWarehouse, tables: dict, reason: str
) -> None:
    data = encode_message({"schema": "raw-columns/1", "batch_id": "b1", "tables": tables})
    outcome = LoadService(warehouse).handle("m5", data)
    assert (outcome.written, outcome.rows, outcome.rejected) == (True, 0, 1)
    row = warehouse.query("SELECT reason_code, reason FROM ops.rejected")[0]
    assert row["reason_code"] == "bad_message" and reason in row["reason"]
    assert count(warehouse, "raw.page") == 0


def test_an_unknown_schema_names_both_it_reads(warehouse: DuckDBWarehouse) -> None:
    LoadService(warehouse).handle("m6", orjson.dumps({"schema": "raw-rows/9", "rows": {}}))
    reason = warehouse.query("SELECT reason FROM ops.rejected")[0]["reason"]
    assert "'raw-rows/9'" in reason and "'raw-columns/1'" in reason and "'raw-rows/1'" in reason


def test_a_column_row_missing_a_required_value_is_rejected_and_the_rest_loads(warehouse: DuckDBWarehouse) -> None:
    message = orjson.loads(collected_message([{"type": "page", "anonymousId": a} for a in "abc"]))
    message["tables"]["raw.page"]["site_id"][0] = None  # required
    outcome = LoadService(warehouse).handle("m7", encode_message(message))
    assert (outcome.rows, outcome.rejected) == (5, 1)  # two pages, three landings
    (row,) = warehouse.query("SELECT reason, event_id FROM ops.rejected")
    assert "raw.page.site_id is required" in row["reason"]
    assert row["event_id"] == message["tables"]["raw.page"]["event_id"][0]
    assert [r["anonymous_id"] for r in warehouse.query("SELECT anonymous_id FROM raw.page ORDER BY 1")] == ["b", "c"]


def test_a_column_the_table_does_not_have_rejects_the_rows_that_carry_it(warehouse: DuckDBWarehouse) -> None:
    message = orjson.loads(collected_message([{"type": "page", "anonymousId": a} for a in "ab"]))
    message["tables"]["raw.page"]["colour"] = [None, "red"]  # a column is every row's key, null or not
    outcome = LoadService(warehouse).handle("m8", encode_message(message))
    assert (outcome.rows, outcome.rejected) == (2, 2)  # the landings load
    reasons = [r["reason"] for r in warehouse.query("SELECT reason FROM ops.rejected")]
    assert reasons == ["raw.page has no column(s) ['colour']"] * 2
    assert (count(warehouse, "raw.page"), count(warehouse, "raw.land")) == (0, 2)


def test_the_load_function_builds_its_service_at_start_without_opening_the_warehouse(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import runpy, sys; from shared.load import handler\n"
        "runpy.run_path('functions/load/main.py')\n"
        "service = handler.default_service()\n"
        "assert handler.default_service.cache_info().misses == 1, 'built again on the first message'\n"
        "assert service.warehouse._connection is None, 'the file is held before any message'\n"
        "assert 'shared.warehouse.duckdb' in sys.modules\n"
    )
    env = {"CDP_DUCKDB_PATH": str(tmp_path / "w.duckdb"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "w.duckdb").exists()


def test_each_message_is_announced_to_the_warehouse_for_its_whole_handling(
    warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    incoming = warehouse.incoming

    @contextmanager
    def recording() -> Iterator[None]:
        seen.append("in")
        with incoming():
            yield
        seen.append(f"out after {count(warehouse, 'raw.page')} page row(s)")

    monkeypatch.setattr(warehouse, "incoming", recording)
    LoadService(warehouse).handle("m1", collected_message([{"type": "page", "anonymousId": "a"}]))
    LoadService(warehouse).handle("m2", b"not ours")
    assert seen == ["in", "out after 1 page row(s)", "in", "out after 1 page row(s)"]
    assert warehouse._announced == warehouse._in_flight == 0


def arrow_page_message(event_ids: list[str | None], **extra_columns: list) -> bytes:
    columns = {
        "event_id": event_ids,
        "site_id": ["shop"] * len(event_ids),
        "call": ["page"] * len(event_ids),
        "event_time": ["2026-11-23T10:00:00+00:00"] * len(event_ids),
        "received_at": ["2026-11-23T10:00:01+00:00"] * len(event_ids),
        "anonymous_id": ["a"] * len(event_ids),
        "raw": ["{}"] * len(event_ids),
        **extra_columns,
    }
    data = encode_arrow_message("b-arrow", "shop", {"raw.page": to_rows(columns)})
    assert data is not None
    return data


def test_an_arrow_row_that_does_not_fit_moves_to_rejected_and_the_rest_loads(warehouse: DuckDBWarehouse) -> None:
    data = arrow_page_message(["e1", None, "e3"])  # event_id is required
    outcome = LoadService(warehouse).handle("ma", data)
    assert (outcome.written, outcome.rows, outcome.rejected) == (True, 2, 1)
    assert [r["event_id"] for r in warehouse.query("SELECT event_id FROM raw.page ORDER BY 1")] == ["e1", "e3"]
    (rejected,) = warehouse.query("SELECT reason_code, reason FROM ops.rejected")
    assert rejected["reason_code"] == "row_does_not_fit" and "event_id" in rejected["reason"]
    assert LoadService(warehouse).handle("ma", data).written is False  # redelivered: nothing more
    assert count(warehouse, "raw.page") == 2


def test_an_arrow_column_of_the_wrong_type_names_its_rows(warehouse: DuckDBWarehouse) -> None:
    data = arrow_page_message(["e1", "e2"], title=[1.5, 2.5])  # title is a STRING column
    outcome = LoadService(warehouse).handle("mb", data)
    assert (outcome.rows, outcome.rejected) == (0, 2)
    reasons = [r["reason"] for r in warehouse.query("SELECT reason FROM ops.rejected")]
    assert all("title" in reason for reason in reasons)


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (lambda data: data[:-10], "Truncated compressed stream"),
        (lambda data: data + b"more", "not valid raw-arrow/1"),
        (lambda data: data[:14] + b"{not json" + data[23:], "not valid raw-arrow/1"),
    ],
)
def test_a_broken_arrow_message_is_kept_as_rejected(warehouse: DuckDBWarehouse, cut: Any, reason: str) -> None:
    outcome = LoadService(warehouse).handle("mc", cut(arrow_page_message(["e1"])))
    assert (outcome.written, outcome.rows, outcome.rejected) == (True, 0, 1)
    (rejected,) = warehouse.query("SELECT reason_code, reason FROM ops.rejected")
    assert rejected["reason_code"] == "bad_message" and reason in rejected["reason"], rejected["reason"]
    assert count(warehouse, "raw.page") == 0


def test_an_arrow_batch_as_rows_is_what_the_columns_say() -> None:
    batch = parse_message("md", arrow_page_message(["e1", "e2"], title=["a", None]), None)
    assert (batch.row_count, batch.tables) == (2, ["raw.page"])
    rows = batch.as_rows().rows["raw.page"]  # what the BigQuery adapter inserts
    assert [(r["event_id"], r["title"], r["site_id"]) for r in rows] == [("e1", "a", "shop"), ("e2", None, "shop")]
