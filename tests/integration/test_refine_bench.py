"""The refine benchmark's own run, on a few thousand synthetic events: what `make bench` reports is what it did."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from bench.refine_bench import FLOOR_STEPS, measure_floor, run_one


def test_one_size_reports_the_refine_and_its_floor_and_leaves_the_file_as_refined(tmp_path: Path) -> None:
    result = run_one(3_000, keep=tmp_path)

    assert result["events"] == 3_000
    assert result["profiles"] == result["customers"] > 200  # about one customer per ten events
    assert set(result["floor_seconds"]) == set(FLOOR_STEPS)
    # the report rounds each floor step and the group-by to the millisecond, the ratio to a tenth
    floor, bare = sum(result["floor_seconds"].values()), result["bare_group_by_seconds"]
    lowest, highest = (floor - 0.0015) / (bare + 0.0005), (floor + 0.0015) / max(bare - 0.0005, 1e-9)
    assert lowest - 0.05 <= result["floor_ratio"] <= highest + 0.05
    with duckdb.connect(str(tmp_path / "bench.duckdb"), read_only=True) as con:
        schemas = {row[0] for row in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
        refined_events = con.execute("SELECT COUNT(*) FROM refined.events").fetchone()
    assert "bench_floor" not in schemas  # the floor's copy of the events is dropped again
    assert refined_events == (result["events_read"],)


def test_a_floor_step_that_fails_is_raised_and_leaves_no_copy_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "bench.duckdb")
    warehouse.ensure_schema()
    monkeypatch.setitem(FLOOR_STEPS, "one_window", "SELECT no_such_column FROM refined.events")
    con = warehouse._connect()

    with pytest.raises(duckdb.BinderException, match="no_such_column"):
        measure_floor(con)

    schemas = {row[0] for row in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    temp_tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    warehouse.close()
    assert "bench_floor" not in schemas and temp_tables == []
