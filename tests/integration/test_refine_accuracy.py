"""Who-is-who against ground truth: refine's identity stitching next to the baseline 'last user id seen on
the device wins', on simulated customers with shared laptops, junk ids, a test account and PII in varied
formats (tests/refine_truth.py). Targets: pairwise precision >= 0.99 and recall >= 0.98."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from shared.refine.service import RefineRequest, run_refine
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.refine_truth import T0, baseline_last_user_wins, generate_truth, pairwise_scores


def test_pairwise_precision_and_recall_beat_the_baseline(tmp_path: Path) -> None:
    events, truth = generate_truth(people=1500, seed=11)
    with DuckDBWarehouse(tmp_path / "truth.duckdb") as warehouse:
        warehouse.ensure_schema()
        events.insert(warehouse)
        run = run_refine(warehouse, RefineRequest(mode="full", now=T0 + timedelta(days=60), trigger="test"))
        predicted = {
            r["node"]: r["customer_id"] for r in warehouse.query("SELECT node, customer_id FROM refined.identity_map")
        }

    precision, recall = pairwise_scores(predicted, truth, evidence_only=True)
    base_precision, base_recall = pairwise_scores(baseline_last_user_wins(events), truth, evidence_only=True)
    _, recall_all = pairwise_scores(predicted, truth)
    print(
        f"refine precision={precision:.4f} recall={recall:.4f} (all ids: {recall_all:.4f}); "
        f"baseline precision={base_precision:.4f} recall={base_recall:.4f}; dropped={run.dropped_links}"
    )
    assert truth.shared_devices > 0 and truth.junk_events > 0
    assert precision >= 0.99 and recall >= 0.98
    assert precision > base_precision and recall > base_recall
