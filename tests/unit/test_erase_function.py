"""The erase step's edge (functions/erase/main.py): a JSON body in, the erasure's outcome as the HTTP status.

Given a small refined warehouse (DuckDB file), when `handle` gets a body, then a good request erases and answers
the counts, and a bad one is refused with the field named and nothing erased."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import flask
import pytest

from shared.refine.service import RefineRequest, run_refine
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.refine_truth import SITE, T0, RawEvents, node
from tests.steps import load_step
from tests.unit.fakes import identity_token

GOOD = {"site_id": SITE, "identifier_type": "user_id", "value": "U1", "requested_by": "dpo@shop.kr"}


@pytest.fixture(scope="module")
def main() -> ModuleType:
    return load_step("erase")


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    """Two people: U1 on dev-a with an email, U2 on dev-z; refined once."""
    wh = DuckDBWarehouse(tmp_path / "erase.duckdb")
    wh.ensure_schema()
    raw = RawEvents()
    raw.page(T0, "dev-a", "U1")
    raw.identify(T0 + timedelta(minutes=1), "dev-a", "U1", email="kim@mail.co.kr")
    raw.page(T0 + timedelta(minutes=2), "dev-z", "U2")
    raw.insert(wh)
    run_refine(wh, RefineRequest(mode="range", start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), trigger="t"))
    try:
        yield wh
    finally:
        wh.close()


def erasures(wh: DuckDBWarehouse) -> int:
    return wh.query("SELECT COUNT(*) AS n FROM refined.erasures")[0]["n"]


def test_a_request_erases_the_person_and_answers_the_counts(main: ModuleType, warehouse: DuckDBWarehouse) -> None:
    (customer,) = warehouse.query(
        "SELECT customer_id FROM refined.identity_map WHERE node = @n", {"n": node("u", "U1")}
    )

    status, answer = main.handle(GOOD, warehouse)

    assert status == 200
    assert answer["node"] == node("u", "U1") and answer["request_id"].startswith("erase-")
    assert answer["identifiers"] == 3  # dev-a, U1, the email
    assert answer["customer_id"] == customer["customer_id"]
    assert answer["rows_erased"] >= 3  # raw page + user rows at least, and their refined rows
    assert warehouse.query("SELECT DISTINCT requested_by FROM refined.erasures") == [{"requested_by": "dpo@shop.kr"}]
    assert warehouse.query("SELECT COUNT(*) AS n FROM refined.profiles") == [{"n": 1}]  # U2's


def test_a_repeat_is_the_same_request(main: ModuleType, warehouse: DuckDBWarehouse) -> None:
    first = main.handle(GOOD, warehouse)[1]
    status, again = main.handle({**GOOD, "value": " U1 "}, warehouse)
    assert status == 200 and again["request_id"] == first["request_id"] and again["identifiers"] == 3
    assert erasures(warehouse) == 3  # tombstones are not duplicated


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"requested_by": None}, "requested_by", "Field required"),
        ({"requested_by": "  "}, "requested_by", "say who asked"),
        ({"identifier_type": "cookie"}, "identifier_type", "'anonymous_id', 'user_id'"),
        ({"value": ""}, "value", "at least 1 character"),
        ({"identifier_type": "anonymous_id", "value": "undefined"}, "value", "junk identifier"),
        ({"identifier_type": "user_id", "value": "0"}, "value", "junk identifier"),
        ({"identifier_type": "email", "value": "kim@naver"}, "value", "not a usable email (invalid_email)"),
        ({"identifier_type": "phone", "value": "010-0000-0000"}, "value", "not a usable phone (junk)"),
        ({"site_id": None}, "site_id", "Field required"),
        ({"requestd_by": "typo"}, "requestd_by", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(
    main: ModuleType, warehouse: DuckDBWarehouse, change: dict[str, Any], field: str, says: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}

    status, answer = main.handle(body, warehouse)

    assert status == 400
    assert f"{field}: " in answer["error"] and says in answer["error"], answer["error"]
    assert [tuple(e["loc"]) for e in answer["detail"]] == [(field,)]
    assert erasures(warehouse) == 0


@pytest.mark.parametrize("body", [None, [GOOD], "U1"])
def test_a_body_that_is_no_json_object_is_refused(main: ModuleType, warehouse: DuckDBWarehouse, body: object) -> None:
    status, answer = main.handle(body, warehouse)
    assert status == 400 and "not a JSON object" in answer["error"]
    assert erasures(warehouse) == 0


def test_no_erasure_while_a_refine_run_is_under_way(main: ModuleType, warehouse: DuckDBWarehouse) -> None:
    # a run holds the refined tables as run_refine claims them (tests/integration/test_refine_writers.py)
    warehouse.query_file("refine/writer_claim", {"holder_id": "r-busy", "holder_kind": "refine"})
    status, answer = main.handle(GOOD, warehouse)
    assert status == 409 and "refine run r-busy is under way" in answer["error"]
    assert erasures(warehouse) == 0


def test_the_http_entry_point_takes_only_post(main: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    app = flask.Flask(__name__)
    for method in ("GET", "PUT", "DELETE"):
        with app.test_request_context("/", method=method):
            answer, status, headers = main.erase(flask.request)
        assert status == 405 and headers == {"Allow": "POST"} and method in answer["error"]
    # a POST reaches handle with the JSON body, even without a JSON content type (curl -d)
    seen: list[object] = []
    monkeypatch.setattr(main, "handle", lambda body, caller: (seen.append((body, caller)), (409, {"error": "busy"}))[1])
    with app.test_request_context("/", method="POST", data='{"a": 1}', content_type="text/plain"):
        answer, status, headers = main.erase(flask.request)
    assert seen == [({"a": 1}, None)] and status == 409 and headers == {"Retry-After": "300"}


def test_the_tombstones_record_the_authenticated_caller_beside_who_asked(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed, Cloud Run has checked the caller's identity token before the step runs: its principal is kept
    with the tombstones, whatever the body's requested_by says. A body cannot set it."""
    monkeypatch.setattr(main, "_warehouse", lambda: warehouse)
    monkeypatch.setenv("K_SERVICE", "cdp-erase")
    headers = {"Authorization": f"Bearer {identity_token({'email': 'kim@shop.kr', 'aud': 'https://cdp-erase'})}"}
    body = json.dumps({**GOOD, "requested_by": "someone else"})
    with flask.Flask(__name__).test_request_context("/", method="POST", data=body, headers=headers):
        _, status, _ = main.erase(flask.request)
    assert status == 200
    assert warehouse.query("SELECT DISTINCT requested_by, caller FROM refined.erasures") == [
        {"requested_by": "someone else", "caller": "user:kim@shop.kr"}
    ]
    with flask.Flask(__name__).test_request_context("/", method="POST", data=json.dumps({**GOOD, "caller": "x"})):
        answer, status, _ = main.erase(flask.request)
    assert status == 400 and "caller: Extra inputs are not permitted" in answer["error"]


def test_outside_cloud_run_no_token_is_believed(
    main: ModuleType, warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "_warehouse", lambda: warehouse)
    monkeypatch.delenv("K_SERVICE", raising=False)
    headers = {"Authorization": f"Bearer {identity_token({'email': 'kim@shop.kr', 'aud': 'https://cdp-erase'})}"}
    with flask.Flask(__name__).test_request_context("/", method="POST", data=json.dumps(GOOD), headers=headers):
        _, status, _ = main.erase(flask.request)
    assert status == 200
    assert warehouse.query("SELECT DISTINCT caller FROM refined.erasures") == [{"caller": None}]
