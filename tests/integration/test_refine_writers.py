"""One writer of the refined tables at a time: given a refine run or an erasure under way, when the other starts,
then it withdraws without writing anything, and the one under way finishes untouched; crashed writers' claims
expire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared.refine import service
from shared.refine.erase import ErasureBusy, ErasureRequest, erase_person
from shared.refine.service import RefineBusy, RefineFailed, RefineRequest, run_refine
from shared.refine.writers import STALE_AFTER_MINUTES, WriterBusy, exclusive_writer
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.refine_truth import T0, RawEvents

REQUEST = RefineRequest(mode="range", start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), trigger="test")
KIM = ErasureRequest(site_id="test-shop", identifier_type="user_id", value="U1", requested_by="dpo@shop.kr")


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    with DuckDBWarehouse(tmp_path / "writers.duckdb") as warehouse:
        warehouse.ensure_schema()
        raw = RawEvents()
        raw.identify(T0, "dev-a", "U1", email="kim@mail.co.kr")
        raw.page(T0 + timedelta(minutes=1), "dev-a", "U1")
        raw.page(T0 + timedelta(minutes=2), "dev-z", "U2")
        raw.insert(warehouse)
        yield warehouse


def count(wh: DuckDBWarehouse, sql: str) -> int:
    return int(wh.query(f"SELECT COUNT(*) AS n FROM {sql}")[0]["n"])


def claim(wh: DuckDBWarehouse, holder_id: str, kind: str = "refine", minutes_ago: int = 0) -> None:
    wh.query_file("refine/writer_claim", {"holder_id": holder_id, "holder_kind": kind})
    if minutes_ago:
        wh.query(
            "UPDATE refined.writers SET claimed_at = TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @m MINUTE) "
            "WHERE holder_id = @h",
            {"m": minutes_ago, "h": holder_id},
        )


def test_an_erasure_under_way_holds_off_refine_which_writes_nothing(wh: DuckDBWarehouse) -> None:
    claim(wh, "erase-123/ab", kind="erase")
    with pytest.raises(RefineBusy, match=r"erasure erase-123/ab is under way"):
        run_refine(wh, REQUEST)
    assert count(wh, "refined.runs") == 0  # not even a run row: the run never started
    assert count(wh, "refined.events") == 0
    assert wh.query("SELECT holder_id FROM refined.writers") == [{"holder_id": "erase-123/ab"}]  # its own claim went


def test_a_refine_run_under_way_holds_off_an_erasure_which_erases_nothing(wh: DuckDBWarehouse) -> None:
    run_refine(wh, REQUEST)
    claim(wh, "r-busy")
    with pytest.raises(ErasureBusy, match=r"refine run r-busy is under way"):
        erase_person(wh, KIM)
    assert count(wh, "refined.erasures") == 0
    assert count(wh, "raw.page WHERE user_id = 'U1'") == 1
    assert count(wh, "refined.profiles") == 2


def test_an_erasure_waits_for_a_refine_run_really_under_way(
    wh: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the claim closes: the run has read the person's events and is between steps."""
    in_run, go_on = threading.Event(), threading.Event()
    standardise = service._standardised_columns

    def paused(candidates: list[dict[str, object]]) -> dict[str, list[object]]:
        in_run.set()
        assert go_on.wait(30)
        return standardise(candidates)

    monkeypatch.setattr(service, "_standardised_columns", paused)
    results: list[object] = []
    runner = threading.Thread(target=lambda: results.append(run_refine(wh, REQUEST)))
    runner.start()
    try:
        assert in_run.wait(30)
        with pytest.raises(ErasureBusy, match=r"refine run r\S+ is under way"):
            erase_person(wh, KIM)
    finally:
        go_on.set()
        runner.join(60)
    assert len(results) == 1 and count(wh, "refined.profiles") == 2  # the run finished with both people
    assert count(wh, "refined.writers") == 0
    erase_person(wh, KIM)  # and now it goes through
    assert count(wh, "refined.profiles") == 1


def test_two_writers_that_claim_before_either_looks_both_withdraw(wh: DuckDBWarehouse) -> None:
    claim(wh, "r-first")
    with pytest.raises(WriterBusy) as busy, exclusive_writer(wh, "erase", "erase-1/x"):
        pytest.fail("must not get here")
    assert busy.value.holder.holder_id == "r-first"
    # r-first, looking now, sees no other claim: the erasure withdrew
    others = wh.query_file("refine/writers_other", {"holder_id": "r-first", "stale_after_minutes": STALE_AFTER_MINUTES})
    assert others == []
    # had r-first looked while the erasure's claim was there, it would have seen it
    claim(wh, "erase-1/x", kind="erase")
    others = wh.query_file("refine/writers_other", {"holder_id": "r-first", "stale_after_minutes": STALE_AFTER_MINUTES})
    assert [o["holder_id"] for o in others] == ["erase-1/x"]


def test_a_crashed_writers_claim_expires_and_goes_with_the_next_release(wh: DuckDBWarehouse) -> None:
    claim(wh, "r-crashed", minutes_ago=STALE_AFTER_MINUTES + 5)
    claim(wh, "r-recent", minutes_ago=STALE_AFTER_MINUTES - 5)
    with pytest.raises(RefineBusy, match="r-recent"):
        run_refine(wh, REQUEST)
    wh.query("DELETE FROM refined.writers WHERE holder_id = 'r-recent'")
    run = run_refine(wh, REQUEST)
    assert run.status == "succeeded" and run.profiles == 2
    assert count(wh, "refined.writers") == 0  # the stale claim went with the run's release


def test_the_claim_is_released_when_a_run_fails(wh: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(candidates: list[dict[str, object]]) -> dict[str, list[object]]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "_standardised_columns", broken)
    with pytest.raises(RefineFailed, match="disk on fire"):
        run_refine(wh, REQUEST)
    assert count(wh, "refined.writers") == 0
    assert wh.query("SELECT status FROM refined.runs") == [{"status": "failed"}]
