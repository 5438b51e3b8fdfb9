"""The PII cache across a rules upgrade: given values standardised by older rules, when the next run comes (even
over a period in which they do not occur), then each is standardised again by the current rules, kept once, and
profiles read the new form."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.refine import pii, service
from shared.refine.erase import ErasureRequest, erase_person
from shared.refine.service import RefineRequest, run_refine
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.refine_truth import T0, RawEvents


def refine(wh: DuckDBWarehouse, start_days: int, end_days: int) -> int:
    request = RefineRequest(
        mode="range", start=T0 + timedelta(days=start_days), end=T0 + timedelta(days=end_days), trigger="test"
    )
    return run_refine(wh, request).pii_values_new


def test_values_of_older_rules_are_standardised_again_and_kept_once(tmp_path: Path) -> None:
    with DuckDBWarehouse(tmp_path / "pii.duckdb") as wh:
        wh.ensure_schema()
        raw = RawEvents()
        raw.identify(T0, "dev-a", "U1", email="Kim@Mail.co.kr", region="KR41")  # as the load balancer gives it
        raw.page(T0 + timedelta(minutes=1), "dev-a", "U1", region="KR41")
        raw.insert(wh)
        assert refine(wh, -1, 1) == 2  # the email and the geo region
        region = "SELECT region FROM refined.profiles"
        assert wh.query(region) == [{"region": "경기"}]

        # as an older version of the rules left them (before versions were kept: NULL), one of them wrong
        wh.query("UPDATE refined.pii_values SET rules_version = NULL")
        wh.query("UPDATE refined.pii_values SET value = 'KR41' WHERE kind = 'geo_region'")

        assert refine(wh, 1, 2) == 2  # a period without these values: the cache is renewed all the same
        cached = wh.query("SELECT kind, value, rules_version FROM refined.pii_values ORDER BY kind")
        assert cached == [
            {"kind": "email", "value": "kim@mail.co.kr", "rules_version": pii.RULES_VERSION},
            {"kind": "geo_region", "value": "경기", "rules_version": pii.RULES_VERSION},
        ]
        assert wh.query(region) == [{"region": "경기"}]

        assert refine(wh, 2, 3) == 0  # nothing left to standardise


def test_a_stale_row_left_beside_its_renewal_is_not_read_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BigQuery refuses to delete rows still in its streaming buffer (and a run may stop between inserting the new
    forms and deleting the old): both are left, the joins read the current rules' only, the next run ends it."""
    with DuckDBWarehouse(tmp_path / "pii.duckdb") as wh:
        wh.ensure_schema()
        raw = RawEvents()
        raw.identify(T0, "dev-a", "U1", email="kim@mail.co.kr", phone="010-2222-3333")
        raw.insert(wh)
        refine(wh, -1, 1)
        wh.query("UPDATE refined.pii_values SET value = 'stale@old.kr', rules_version = 'older' WHERE kind = 'email'")

        sql = service._Run.sql

        def refusing(run: service._Run, name: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            if name == "pii_stale_delete":
                raise RuntimeError("UPDATE or DELETE statement would affect rows in the streaming buffer")
            return sql(run, name, *args, **kwargs)

        monkeypatch.setattr(service._Run, "sql", refusing)
        assert refine(wh, -1, 1) == 1  # the email again; the old row stays beside it
        assert wh.query("SELECT COUNT(*) AS n FROM refined.pii_values WHERE kind = 'email'") == [{"n": 2}]
        assert wh.query("SELECT email FROM refined.traits") == [{"email": "kim@mail.co.kr"}]
        assert wh.query("SELECT email FROM refined.profiles") == [{"email": "kim@mail.co.kr"}]

        monkeypatch.setattr(service._Run, "sql", sql)
        assert refine(wh, -1, 1) == 0
        assert wh.query("SELECT COUNT(*) AS n FROM refined.pii_values WHERE rules_version = 'older'") == [{"n": 0}]


def test_a_value_standardised_again_gets_a_row_id_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BigQuery drops an insertAll row whose row id it saw in the last minute or so: the renewed row of a value must
    not carry its old row's id (value_id includes the rules' version)."""
    with DuckDBWarehouse(tmp_path / "pii.duckdb") as wh:
        wh.ensure_schema()
        raw = RawEvents()
        raw.identify(T0, "dev-a", "U1", email="kim@mail.co.kr")
        raw.insert(wh)
        monkeypatch.setattr(pii, "RULES_VERSION", "older")
        refine(wh, -1, 1)
        (old,) = wh.query("SELECT value_id FROM refined.pii_values WHERE kind = 'email'")
        monkeypatch.undo()
        assert refine(wh, -1, 1) == 2  # the email and the geo region
        (new,) = wh.query("SELECT value_id, rules_version FROM refined.pii_values WHERE kind = 'email'")
        assert new["rules_version"] == pii.RULES_VERSION and new["value_id"] != old["value_id"]


def test_new_rules_make_the_traits_of_earlier_periods_again_leaving_erased_people_out(tmp_path: Path) -> None:
    """Profiles read every period's traits: a value whose standard form changed must change there too, not only
    in the cache, and a tombstoned person's late rows must stay out of the traits made again."""
    with DuckDBWarehouse(tmp_path / "pii.duckdb") as wh:
        wh.ensure_schema()
        raw = RawEvents()
        raw.identify(T0, "dev-a", "U1", email="Kim@Mail.co.kr")
        raw.identify(T0, "dev-b", "U9", email="lee@mail.co.kr")
        raw.insert(wh)
        refine(wh, -1, 1)
        erase_person(wh, ErasureRequest(site_id="test-shop", identifier_type="user_id", value="U9"))
        # as older rules left them: another form in the cache and in the traits made from it
        wh.query("UPDATE refined.pii_values SET value = UPPER(value), rules_version = 'older' WHERE kind = 'email'")
        wh.query("UPDATE refined.traits SET email = UPPER(email)")
        late = RawEvents()
        late.identify(
            T0 - timedelta(hours=12), "dev-b", "U9", email="lee@mail.co.kr", event_id="ev-late"
        )  # after the erasure
        late.insert(wh)

        run = run_refine(
            wh, RefineRequest(mode="range", start=T0 + timedelta(days=1), end=T0 + timedelta(days=2), trigger="test")
        )

        assert (run.status, run.pii_values_restandardised) == ("succeeded", 1)
        assert wh.query("SELECT user_id, email FROM refined.traits") == [{"user_id": "U1", "email": "kim@mail.co.kr"}]
        assert wh.query("SELECT email FROM refined.profiles") == [{"email": "kim@mail.co.kr"}]
        (ledger,) = wh.query("SELECT pii_values_restandardised FROM refined.runs WHERE run_id = @r", {"r": run.run_id})
        assert ledger == {"pii_values_restandardised": 1}
