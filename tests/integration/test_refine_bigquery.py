"""Refine through the BigQuery adapter, against bqemulator: the same SQL files, typed @parameters, insertAll
of the PII cache, DML on the run ledger. (bqemulator is DuckDB underneath: this checks the adapter path and
the GoogleSQL text, not BigQuery's own planner.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from shared.refine.service import RefineRequest, run_refine
from tests.integration import bqemulator
from tests.integration.test_bigquery_adapter import Emulated
from tests.refine_truth import T0, RawEvents


@pytest.fixture(scope="module")
def emulated() -> Iterator[Emulated]:
    try:
        with bqemulator.running() as running:
            emulated = Emulated(running)
            emulated.warehouse.ensure_schema()
            yield emulated
            emulated.client.close()
    except bqemulator.EmulatorNotStarted as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"bqemulator did not start: {exc}")


def test_refine_runs_on_the_bigquery_adapter(emulated: Emulated) -> None:
    warehouse = emulated.warehouse
    raw = RawEvents()
    raw.page(T0, "dev-a")
    raw.identify(T0 + timedelta(minutes=1), "dev-a", "U1", email="Kim@Mail.co.kr", phone="010-2222-3333")
    raw.order(T0 + timedelta(minutes=2), "dev-a", "U1", "o-1", 1000, ["A"])
    raw.page(T0 + timedelta(minutes=3), "undefined", "U2")
    raw.page(T0 + timedelta(minutes=4), "undefined", "U3")
    raw.insert(warehouse)
    request = RefineRequest(mode="range", start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), trigger="test")

    first = run_refine(warehouse, request)
    second = run_refine(warehouse, request)

    assert first.status == second.status == "succeeded" and first.customers == 3
    assert second.customers_new == 0 and second.customers == 3
    profiles = warehouse.query("SELECT user_id, email, phone, odr_ltv FROM refined.profiles ORDER BY user_id")
    assert profiles[0] == {"user_id": "U1", "email": "kim@mail.co.kr", "phone": "+821022223333", "odr_ltv": 1}
    reasons = warehouse.query("SELECT DISTINCT reason FROM refined.dropped_links")
    assert reasons == [{"reason": "junk_identifier"}]
    runs = warehouse.query("SELECT status FROM refined.runs WHERE status = 'succeeded'")
    assert len(runs) == 2
