"""The simulated shop through the real local stack: everything it sent lands exactly as its ground truth says."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from local.sim import SimConfig, drive, simulate
from local.sim.score import who_is_who
from shared.refine.service import RefineRequest, run_refine
from shared.timeutil import to_iso
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration


def test_a_small_shop_lands_exactly_as_expected(local_stack: RunningStack) -> None:
    small = simulate(SimConfig(seed=5, customers=40, days=14, write_key=local_stack.write_key, bad_share=0.05))
    since = datetime.now(UTC)
    time.sleep(0.01)
    report = drive(local_stack.collect_url, small.requests, concurrency=4)
    assert report.failures == [] and report.by_status == small.expected.statuses
    assert report.accepted == small.expected.accepted_events
    local_stack.drain()
    window = {"since": to_iso(since)}
    for table in ("user", "page", "land", "conv", "event"):
        name = "`user`" if table == "user" else table
        stored = local_stack.query(f"SELECT COUNT(*) AS n FROM raw.{name} WHERE received_at >= @since", window)
        unique = local_stack.query(
            f"SELECT COUNT(DISTINCT event_id) AS n FROM raw.{name} WHERE received_at >= @since", window
        )
        assert (stored[0]["n"], unique[0]["n"]) == (small.expected.stored[table], small.expected.unique[table]), table
    rejected = local_stack.query(
        "SELECT reason_code, COUNT(*) AS n FROM ops.rejected WHERE received_at >= @since GROUP BY 1", window
    )
    assert {r["reason_code"]: r["n"] for r in rejected} == small.expected.rejected


def test_who_is_who_on_the_simulated_shop_meets_the_targets(local_stack: RunningStack) -> None:
    """Stage 3 on the shop's own traffic (several devices per person, shared family laptops, junk user ids,
    CRM / POS imports keyed by the CRM number): pairwise precision >= 0.99 and recall >= 0.98 over the pairs the
    data ties, and better than 'the last user id on the device wins' on both."""
    shop = simulate(SimConfig(seed=7, customers=150, days=30, write_key=local_stack.write_key))
    report = drive(local_stack.collect_url, shop.requests, concurrency=4)
    assert report.failures == []
    local_stack.drain()
    with DuckDBWarehouse(local_stack.stack.warehouse_path) as warehouse:
        run = run_refine(warehouse, RefineRequest(mode="full", trigger="test"))
        assert run.status == "succeeded"
        scores = who_is_who(warehouse, shop.truth, local_stack.site_id)
    print(scores.model_dump_json(indent=1))
    assert scores.identifiers > 300 and scores.people == 150
    assert scores.refine.precision >= 0.99 and scores.refine.recall >= 0.98
    assert scores.refine.precision > scores.baseline.precision and scores.refine.recall > scores.baseline.recall
