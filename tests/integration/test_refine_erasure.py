"""Deletion on request: given a refined person, when erased by one identifier, then every row of every one of
their identifiers is gone, the request is recorded, and late events of those ids are not profiled again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from shared.refine.erase import ErasureRequest, erase_person
from shared.refine.service import RefineRequest, run_refine
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.refine_truth import T0, RawEvents


def test_erase_by_email_removes_the_person_everywhere_and_tombstones(tmp_path: Path) -> None:
    with DuckDBWarehouse(tmp_path / "erase.duckdb") as wh:
        wh.ensure_schema()
        raw = RawEvents()
        raw.page(T0, "dev-a")
        raw.identify(T0 + timedelta(minutes=1), "dev-a", "U1", email="Kim@Mail.co.kr", phone="010-2222-3333")
        raw.identify(T0 + timedelta(minutes=2), "dev-b", None, email="kim@mail.co.kr")  # another device, same email
        raw.order(T0 + timedelta(minutes=3), "dev-a", "U1", "o-1", 1000)
        raw.page(T0 + timedelta(minutes=4), "dev-z", "U2")  # someone else
        raw.insert(wh)
        request = RefineRequest(mode="range", start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), trigger="test")
        run_refine(wh, request)

        result = erase_person(
            wh,
            ErasureRequest(
                site_id="test-shop", identifier_type="email", value=" KIM@mail.co.kr", requested_by="dpo@shop.kr"
            ),
        )

        assert result.identifiers == 5  # dev-a, dev-b, U1, email, phone
        assert result.rows_erased > 0
        for table in ("user", "page", "conv"):
            left = wh.query(
                f"SELECT COUNT(*) AS n FROM raw.`{table}` WHERE user_id = 'U1' OR anonymous_id IN ('dev-a', 'dev-b')"
            )
            assert left == [{"n": 0}], table
        assert wh.query("SELECT COUNT(*) AS n FROM refined.profiles") == [{"n": 1}]  # only U2 is left
        assert wh.query(
            "SELECT COUNT(*) AS n FROM refined.pii_values WHERE value LIKE '%kim%' OR value = '+821022223333'"
        ) == [{"n": 0}]
        assert wh.query("SELECT COUNT(*) AS n FROM refined.identity_edges WHERE src LIKE '%U1' OR dst LIKE '%U1'") == [
            {"n": 0}
        ]
        # tombstones keep hashes, not the person's ids; the ids in clear left with the erasure's work table
        kept = wh.query("SELECT * FROM refined.erasures")
        assert len(kept) == 5 and not any("U1" in str(v) or "kim@" in str(v) for r in kept for v in r.values())
        work = "SELECT COUNT(*) FROM duckdb_tables() WHERE table_name = 'work_erase_nodes'"
        assert wh._connect().execute(work).fetchone() == (0,)
        recorded = wh.query("SELECT DISTINCT requested_by, rows_erased FROM refined.erasures")
        assert recorded == [{"requested_by": "dpo@shop.kr", "rows_erased": result.rows_erased}]

        late = RawEvents()
        late._ids = iter(range(500, 600))
        late.page(T0 + timedelta(hours=2), "dev-a")  # a late event of an erased device
        late.insert(wh)
        run_refine(wh, request)
        assert wh.query("SELECT COUNT(*) AS n FROM refined.events WHERE anonymous_id = 'dev-a'") == [{"n": 0}]
        assert wh.query("SELECT COUNT(*) AS n FROM refined.profiles") == [{"n": 1}]

        again = erase_person(wh, ErasureRequest(site_id="test-shop", identifier_type="email", value="kim@mail.co.kr"))
        assert again.request_id == result.request_id and again.identifiers == 5
        # the repeat erased the late raw event too; the request's count covers both attempts
        assert again.rows_erased >= 1
        recorded = wh.query(
            "SELECT DISTINCT rows_erased FROM refined.erasures WHERE request_id = @r", {"r": again.request_id}
        )
        assert recorded == [{"rows_erased": result.rows_erased + again.rows_erased}]
