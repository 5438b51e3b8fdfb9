"""The refine function's edge: the scheduler's JSON body in, one run, its outcome as the HTTP status."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import flask
import pytest
from cloudevents.http import CloudEvent

from shared.refine.service import refine_status
from shared.warehouse import WarehouseUnavailable
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.refine_truth import T0, RawEvents
from tests.steps import load_step


@pytest.fixture(scope="module")
def main() -> ModuleType:
    return load_step("refine")


@pytest.fixture
def warehouse(tmp_path: Path):
    wh = DuckDBWarehouse(tmp_path / "fn.duckdb")
    wh.ensure_schema()
    raw = RawEvents()
    raw.page(T0, "dev-a", "U1")
    raw.insert(wh)
    yield wh
    wh.close()


def test_a_scheduled_call_runs_and_answers_the_run(main: ModuleType, warehouse: DuckDBWarehouse) -> None:
    now = (T0 + timedelta(days=1)).isoformat()
    status, answer = main.handle({"mode": "incremental", "now": now}, warehouse)
    assert status == 200 and answer["status"] == "succeeded" and answer["mode"] == "full"  # nothing before: full
    status, answer = main.handle({"mode": "incremental", "now": now}, warehouse)
    assert status == 200 and answer["mode"] == "incremental" and answer["customers_new"] == 0
    runs = warehouse.query("SELECT `trigger`, status FROM refined.runs")
    assert runs == [{"trigger": "scheduler", "status": "succeeded"}] * 2


def test_a_bad_request_is_refused_without_a_run(main: ModuleType, warehouse: DuckDBWarehouse) -> None:
    status, answer = main.handle({"mode": "range", "start": T0.isoformat()}, warehouse)
    assert status == 400 and "invalid" in answer["error"]
    assert warehouse.query("SELECT COUNT(*) AS n FROM refined.runs") == [{"n": 0}]


def test_a_failed_run_is_recorded_and_answers_500(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = warehouse.query_file

    def failing(name: str, params: dict | None = None, *, names: dict | None = None) -> list[dict]:
        if name == "refine/assign":
            raise RuntimeError("warehouse said no")
        return real(name, params, names=names)

    monkeypatch.setattr(warehouse, "query_file", failing)
    status, answer = main.handle({"mode": "full", "now": (T0 + timedelta(days=1)).isoformat()}, warehouse)
    assert status == 500 and answer["status"] == "failed" and "warehouse said no" in answer["error"]
    (run,) = warehouse.query("SELECT status, error FROM refined.runs")
    assert run["status"] == "failed" and "warehouse said no" in run["error"]
    status_row = refine_status(warehouse, stale_after_hours=24 * 365 * 10)
    assert status_row.last_run_status == "failed" and status_row.stale is True
    monkeypatch.undo()
    assert main.handle({"mode": "full", "now": (T0 + timedelta(days=1)).isoformat()}, warehouse)[0] == 200


def test_the_pubsub_entry_point_takes_the_same_request(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "_warehouse", lambda: warehouse)
    data = base64.b64encode(json.dumps({"mode": "full", "now": (T0 + timedelta(days=1)).isoformat()}).encode())
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub", "id": "m-1"},
        {"message": {"data": data.decode(), "messageId": "m-1"}},
    )
    main.refine_event(event)
    assert warehouse.query("SELECT status FROM refined.runs") == [{"status": "succeeded"}]


@pytest.mark.parametrize("body", [b"[1, 2]", b"mode=full", b'"full"'])
def test_a_body_that_is_no_json_object_is_refused_not_taken_for_the_default(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    monkeypatch.setattr(main, "_warehouse", lambda: warehouse)
    with flask.Flask(__name__).test_request_context("/", method="POST", data=body):
        answer, status, _ = main.refine(flask.request)
    assert status == 400 and "not a JSON object" in answer["error"]
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub", "id": "m-2"},
        {"message": {"data": base64.b64encode(body).decode(), "messageId": "m-2"}},
    )
    main.refine_event(event)
    assert warehouse.query("SELECT COUNT(*) AS n FROM refined.runs") == [{"n": 0}]


def test_no_body_is_the_default_run(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(main, "_warehouse", lambda: warehouse)
    with flask.Flask(__name__).test_request_context("/", method="POST"):
        answer, status, _ = main.refine(flask.request)
    assert status == 200 and answer["mode"] == "rolling"
    # The run ends with the structured line the "no successful run" alert counts (infra/components/alerts.py).
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    outcomes = [e for e in lines if e.get("step") == "refine"]
    assert [(e["severity"], e["status"], e["logger"]) for e in outcomes] == [("INFO", 200, "cdp.refine")]
    assert outcomes[0]["message"].startswith("refine: HTTP 200 {")


def test_a_run_while_another_writer_holds_the_tables_answers_409_with_retry_after(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "_warehouse", lambda: warehouse)
    warehouse.query_file("refine/writer_claim", {"holder_id": "erase-busy", "holder_kind": "erase"})
    with flask.Flask(__name__).test_request_context("/", method="POST", data=b'{"mode": "full"}'):
        answer, status, headers = main.refine(flask.request)
    assert (status, headers) == (409, {"Retry-After": str(main.RETRY_AFTER_SECONDS)})
    assert "erasure erase-busy is under way" in answer["error"]
    assert warehouse.query("SELECT COUNT(*) AS n FROM refined.runs") == [{"n": 0}]


def test_an_unavailable_warehouse_answers_503_with_retry_after_not_a_traceback(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    def held(*args: object, **kwargs: object) -> list[dict[str, object]]:
        raise WarehouseUnavailable("the DuckDB file is held by another process")

    monkeypatch.setattr(main, "_warehouse", lambda: warehouse)
    monkeypatch.setattr(warehouse, "query_file", held)
    with flask.Flask(__name__).test_request_context("/", method="POST", data=b'{"mode": "full"}'):
        answer, status, headers = main.refine(flask.request)
    assert (status, headers) == (503, {"Retry-After": str(main.RETRY_AFTER_SECONDS)})
    assert answer == {"error": "the warehouse is unavailable: the DuckDB file is held by another process"}


def test_get_answers_freshness_and_never_starts_a_run(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "_warehouse", lambda: warehouse)
    app = flask.Flask(__name__)
    with app.test_request_context("/", method="GET"):
        answer, status, _ = main.refine(flask.request)
    assert (status, answer["stale"], answer["profiles"], answer["last_run_id"]) == (503, True, 0, None)
    assert warehouse.query("SELECT COUNT(*) AS n FROM refined.runs") == [{"n": 0}]  # a GET is no run

    with app.test_request_context("/", method="POST", data=b'{"mode": "full"}'):
        run, status, _ = main.refine(flask.request)
    assert status == 200
    with app.test_request_context("/", method="GET"):
        answer, status, _ = main.refine(flask.request)
    assert (status, answer["stale"], answer["profiles"], answer["last_run_id"]) == (200, False, 1, run["run_id"])
    with app.test_request_context("/", method="DELETE"):
        answer, status, headers = main.refine(flask.request)
    assert (status, headers) == (405, {"Allow": "GET, POST"})
