"""Loading logic: a message in, rows written once; permanent problems become rejected rows, not retries."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from shared.collect.service import CollectRequest, CollectService
from shared.load import handler
from shared.load.service import LoadService
from shared.messages import decode_message, encode_message
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
    CollectService(publisher, {"wk": "shop"}).handle(
        CollectRequest(endpoint="batch", body=orjson.dumps({"batch": events}), write_key="wk")
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
    CollectService(publisher, {"wk": "shop"}).handle(
        CollectRequest(
            endpoint="batch", body=orjson.dumps({"batch": [{"type": "page", "anonymousId": "z"}]}), write_key="wk"
        )
    )
    compressed = encode_message(publisher.messages[0][0])
    assert compressed.startswith(b"\x1f\x8b")
    outcome = LoadService(warehouse).handle("mz", compressed)
    assert (outcome.written, outcome.rows) == (True, 2)  # a page view, and the landing it is
    assert (count(warehouse, "raw.page"), count(warehouse, "raw.land")) == (1, 1)


def test_a_broken_gzip_message_is_kept_as_rejected_with_its_bytes(warehouse: DuckDBWarehouse) -> None:
    broken = encode_message({"schema": "raw-rows/1", "rows": {}})[:-6]  # truncated in transit
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
    message["rows"]["raw.page"][1]["event_time"] = "not a time"
    outcome = LoadService(warehouse).handle("m4", orjson.dumps(message))
    assert (outcome.rows, outcome.rejected) == (3, 1)  # one page + two landings
    assert count(warehouse, "raw.page") == 1
    rejected = warehouse.query("SELECT reason_code, event_id, payload FROM ops.rejected")[0]
    assert rejected["reason_code"] == "row_does_not_fit"
    assert orjson.loads(rejected["payload"])["event_time"] == "not a time"


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
