"""Refine on DuckDB, end to end on crafted raw rows: stitching, guards, idempotency, stable ids, profiles.

Given raw rows inserted with insert_rows, when run_refine runs on a range, then the refined tables say
who is who. Each test uses its own temporary warehouse file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared.refine.service import RefineFailed, RefineRequest, refine_status, run_refine
from shared.timeutil import to_iso
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.refine_truth import T0, RawEvents, node

END = T0 + timedelta(days=40)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(tmp_path / "refine.duckdb")
    wh.ensure_schema()
    try:
        yield wh
    finally:
        wh.close()


def refine(wh: DuckDBWarehouse, end=END, **kw):
    return run_refine(wh, RefineRequest(mode="range", start=T0 - timedelta(days=60), end=end, trigger="test", **kw))


def customer_of(wh: DuckDBWarehouse, kind: str, value: str) -> str | None:
    rows = wh.query("SELECT customer_id FROM refined.identity_map WHERE node = @n", {"n": node(kind, value)})
    return rows[0]["customer_id"] if rows else None


def one_customer(wh: DuckDBWarehouse, anchor: tuple[str, str], *others: tuple[str, str]) -> str:
    """The customer of `anchor`, asserting it has one and that every other id is theirs too."""
    customer = customer_of(wh, *anchor)
    assert customer is not None, anchor
    for kind, value in others:
        assert customer_of(wh, kind, value) == customer, (kind, value)
    return customer


def at(minutes: float):
    return T0 + timedelta(minutes=minutes)


def test_anonymous_browsing_then_sign_up_joins_the_person(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    raw.page(at(0), "dev-a")
    raw.page(at(1), "dev-a", url="https://shop.kr/p/1")
    raw.event(at(2), "dev-a", None, "search", search_keyword="운동화")
    raw.page(at(60 * 24), "dev-b")  # another device, anonymous, later joined through the email
    raw.identify(at(60 * 24 + 1), "dev-b", None, email="Kim@Mail.co.kr ")
    raw.identify(at(3), "dev-a", "U1", email=" kim@mail.co.kr", phone="010-1234-5678", gender="남", birth_year=1990)
    raw.order(at(4), "dev-a", "U1", "o-1", 50000, ["운동화", "양말"])
    raw.insert(warehouse)

    run = refine(warehouse)

    assert run.status == "succeeded" and run.converged
    customer = one_customer(
        warehouse, ("u", "U1"), ("a", "dev-a"), ("a", "dev-b"), ("e", "kim@mail.co.kr"), ("p", "+821012345678")
    )
    (profile,) = warehouse.query("SELECT * FROM refined.profiles WHERE customer_id = @c", {"c": customer})
    assert profile["email"] == "kim@mail.co.kr" and profile["phone"] == "+821012345678"
    assert profile["sex"] == "M" and profile["age"] == 2026 - 1990
    assert profile["odr_ltv"] == 1 and profile["rvn_ltv"] == 50000 and profile["avg_rvn_ltv"] == 50000
    assert profile["kw_inner"] == "운동화" and profile["pn_odr"] in ("양말 | 운동화", "운동화 | 양말")
    assert profile["visits_total"] == 2 and profile["region"] == "서울"
    assert warehouse.query("SELECT COUNT(*) AS n FROM refined.profiles")[0]["n"] == 1


def test_shared_laptop_does_not_merge_two_user_ids(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    raw.page(at(0), "laptop", "alice")
    raw.page(at(10), "laptop", "bob")
    raw.identify(at(11), "laptop", "bob", email="bob@mail.co.kr")
    raw.page(at(20), "phone-a", "alice")
    raw.insert(warehouse)

    refine(warehouse)

    alice, bob = customer_of(warehouse, "u", "alice"), customer_of(warehouse, "u", "bob")
    assert alice and bob and alice != bob
    assert customer_of(warehouse, "a", "laptop") not in (alice, bob)
    assert customer_of(warehouse, "a", "phone-a") == alice
    reasons = {r["reason"] for r in warehouse.query("SELECT reason FROM refined.dropped_links")}
    assert "shared_identifier" in reasons


def test_chain_of_weak_ids_never_merges_two_user_ids(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    raw.identify(at(0), "dev-1", "alice", email="family@mail.co.kr")
    raw.identify(at(5), "dev-2", None, email="family@mail.co.kr")  # anonymous sign-up on dev-2
    raw.page(at(10), "dev-2", "bob")
    raw.insert(warehouse)

    refine(warehouse)

    assert customer_of(warehouse, "u", "alice") != customer_of(warehouse, "u", "bob")
    reasons = {r["reason"] for r in warehouse.query("SELECT reason FROM refined.dropped_links")}
    assert "would_merge_user_ids" in reasons


def test_junk_ids_do_not_link(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    raw.page(at(0), "undefined", "alice")
    raw.page(at(1), "undefined", "bob")
    raw.page(at(2), "dev-c", "null")
    raw.page(at(3), "dev-d", "NULL ")
    raw.identify(at(4), "dev-e", "carol", email="test@test.com", phone="010-0000-0000")
    raw.identify(at(5), "dev-f", "dave", email="test@test.com", phone="010-0000-0000")
    raw.insert(warehouse)

    refine(warehouse)

    ids = {
        v: customer_of(warehouse, k, v)
        for k, v in (("u", "alice"), ("u", "bob"), ("a", "dev-c"), ("a", "dev-d"), ("u", "carol"), ("u", "dave"))
    }
    assert len(set(ids.values())) == 6 and None not in ids.values()
    assert customer_of(warehouse, "a", "undefined") is None and customer_of(warehouse, "u", "null") is None
    junk = warehouse.query("SELECT COUNT(*) AS n FROM refined.dropped_links WHERE reason = 'junk_identifier'")
    assert junk[0]["n"] >= 3
    invalid = warehouse.query("SELECT kind, reason FROM refined.pii_values WHERE NOT valid ORDER BY kind")
    assert {(r["kind"], r["reason"]) for r in invalid} >= {("email", "junk"), ("phone", "junk")}


def test_an_event_id_counts_once_per_table_as_its_first_received_row(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    first = raw.page(at(0), "dev-a", url="https://shop.kr/first")
    # the same page view again, received later, with another page (a replay carries what the client had then),
    # and once more received before both: the earliest received row is the event
    raw.rows["page"].append({**first, "page_url": "https://shop.kr/later", "received_at": to_iso(at(9))})
    raw.rows["page"].append({**first, "page_url": "https://shop.kr/earliest", "received_at": to_iso(at(-1))})
    raw.page(at(1), "dev-a", url="https://shop.kr/other")
    # an identify call that happens to carry the page view's id is another table's event: both count
    raw.identify(at(2), "dev-a", "U1", event_id=first["event_id"])
    raw.insert(warehouse)

    run = refine(warehouse)

    rows = warehouse.query(
        "SELECT source_table, event_id, page_url FROM refined.events ORDER BY event_time, source_table"
    )
    assert run.events_read == 3
    assert [(r["source_table"], r["page_url"]) for r in rows] == [
        ("page", "https://shop.kr/earliest"),
        ("page", "https://shop.kr/other"),
        ("user", None),
    ]
    assert rows[0]["event_id"] == rows[2]["event_id"] == first["event_id"]


def test_rerun_is_idempotent(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    raw.page(at(0), "dev-a")
    raw.identify(at(1), "dev-a", "U1", email="a@mail.co.kr")
    raw.order(at(2), "dev-a", "U1", "o-1", 1000)
    dup = raw.order(at(3), "dev-a", "U1", "o-2", 2000)
    raw.rows["conv"].append({**dup, "received_at": dup["received_at"].replace("01.", "09.")})  # redelivery
    raw.page(at(5), "dev-b", "U2")
    raw.insert(warehouse)

    tables = ["events", "sessions", "traits", "identity_map", "customers", "profiles", "identity_edges"]

    def snapshot() -> dict[str, list]:
        out = {}
        for t in tables:
            rows = warehouse.query(f"SELECT * FROM refined.{t}")
            drop = {"created_at", "profile_run_id", "first_run_id", "created_run_id"}
            if t != "identity_map":  # an identifier's updated_at moves only when its row changes
                drop.add("updated_at")
            out[t] = sorted(repr(sorted((k, v) for k, v in r.items() if k not in drop)) for r in rows)
        return out

    first = refine(warehouse)
    before = snapshot()
    second = refine(warehouse)
    assert snapshot() == before
    assert first.events_read == second.events_read == 5  # the redelivered order counts once
    assert second.customers_new == 0 and second.merges == 0
    (profile,) = warehouse.query("SELECT odr_ltv, rvn_ltv FROM refined.profiles WHERE user_id = 'U1'")
    assert profile == {"odr_ltv": 2, "rvn_ltv": 3000}


def test_a_tie_at_the_same_microsecond_is_decided_the_same_way_whatever_the_order(tmp_path: Path) -> None:
    """Two events of one person at the same microsecond with different devices (and two identify calls with
    different e-mails): the profile picks by time, then by a hash of the event id, never by the order rows
    happen to arrive in, so every run picks the same."""
    picks = []
    for order in ((0, 1), (1, 0)):
        with DuckDBWarehouse(tmp_path / f"tie-{order}.duckdb") as wh:
            wh.ensure_schema()
            raw = RawEvents()
            raw.identify(at(0), "dev-a", "U1", email="first@mail.co.kr")
            tied = [
                ("page", at(5), "dev-a", {"event_id": "ev-tie-1", "device_type": "mobile", "os": "iOS"}),
                ("page", at(5), "dev-b", {"event_id": "ev-tie-2", "device_type": "desktop", "os": "Windows"}),
                ("identify", at(6), "dev-a", {"event_id": "ev-tie-3", "email": "one@mail.co.kr"}),
                ("identify", at(6), "dev-b", {"event_id": "ev-tie-4", "email": "two@mail.co.kr"}),
            ]
            for i in order:
                for call, when, device, extra in (tied[i], tied[i + 2]):
                    getattr(raw, call)(when, device, "U1", **extra)
            raw.insert(wh)
            refine(wh)
            picks.append(wh.query("SELECT device, os, email FROM refined.profiles WHERE user_id = 'U1'"))
    assert picks[0] == picks[1] and len(picks[0]) == 1
    assert picks[0][0]["email"] in ("one@mail.co.kr", "two@mail.co.kr")  # the later call wins over the earlier


def test_a_sessions_pages_at_the_same_microsecond_are_picked_the_same_way_whatever_the_order(tmp_path: Path) -> None:
    picks = []
    for order in ((0, 1), (1, 0)):
        with DuckDBWarehouse(tmp_path / f"session-tie-{order}.duckdb") as wh:
            wh.ensure_schema()
            raw = RawEvents()
            tied = [("ev-tie-1", "https://shop.kr/a"), ("ev-tie-2", "https://shop.kr/b")]
            for i in order:
                raw.page(at(0), "dev-a", None, url=tied[i][1], event_id=tied[i][0])
            raw.insert(wh)
            refine(wh)
            picks.append(wh.query("SELECT landing_page, exit_page, pageviews FROM refined.sessions"))
    assert (
        picks[0]
        == picks[1]
        == [{"landing_page": "https://shop.kr/a", "exit_page": "https://shop.kr/b", "pageviews": 2}]
    )


def test_customer_ids_are_stable_and_merges_keep_the_older(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    raw.page(at(0), "dev-old")
    raw.identify(at(1), "dev-old", "U1")
    raw.page(at(60 * 24 * 2), "dev-new")  # a later anonymous visitor, own customer for now
    raw.insert(warehouse)
    refine(warehouse, end=T0 + timedelta(days=3))
    older, newer = customer_of(warehouse, "u", "U1"), customer_of(warehouse, "a", "dev-new")
    assert older and newer and older != newer
    map_sql = "SELECT node, updated_at FROM refined.identity_map"
    updated_before = {r["node"]: r["updated_at"] for r in warehouse.query(map_sql)}

    later = RawEvents()
    later._ids = iter(range(1000, 2000))
    later.identify(at(60 * 24 * 4), "dev-new", "U1")  # the new device logs in as U1
    later.page(at(60 * 24 * 4 + 1), "dev-3")  # and an unrelated new visitor
    later.insert(warehouse)
    run = run_refine(warehouse, RefineRequest(mode="incremental", now=T0 + timedelta(days=5), trigger="test"))

    assert run.mode == "incremental" and run.merges == 1
    updated_after = {r["node"]: r["updated_at"] for r in warehouse.query(map_sql)}
    changed = {node for node, at_ in updated_after.items() if updated_before.get(node) != at_}
    assert changed == {"test-shop|a:dev-new", "test-shop|a:dev-3"}  # moved to U1's customer / new; the rest kept
    assert customer_of(warehouse, "a", "dev-new") == older == customer_of(warehouse, "u", "U1")
    merges = warehouse.query("SELECT merged_id, surviving_id FROM refined.customer_merges")
    assert merges == [{"merged_id": newer, "surviving_id": older}]
    status = warehouse.query("SELECT status, merged_into FROM refined.customers WHERE customer_id = @c", {"c": newer})
    assert status == [{"status": "merged", "merged_into": older}]
    assert (
        warehouse.query("SELECT COUNT(*) AS n FROM refined.profiles WHERE customer_id = @c", {"c": newer})[0]["n"] == 0
    )


def test_run_table_and_status(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    raw.page(at(0), "dev-a", "U1")
    raw.insert(warehouse)
    run = refine(warehouse)
    rows = warehouse.query("SELECT * FROM refined.runs")
    assert len(rows) == 1 and rows[0]["status"] == "succeeded" and rows[0]["run_id"] == run.run_id
    assert rows[0]["events_read"] == 1 and rows[0]["customers"] == 1 and rows[0]["profiles"] == 1
    status = refine_status(warehouse, stale_after_hours=24 * 365 * 10)
    assert status.last_run_status == "succeeded" and status.stale is False


def test_a_long_chain_converges_in_few_passes_and_a_tight_bound_is_recorded(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    for i in range(40):  # device i signs up with email i and email i+1: a path of 81 nodes
        raw.identify(at(i), f"dev-{i}", None, email=f"p{i}@mail.co.kr")
        raw.identify(at(i + 0.5), f"dev-{i}", None, email=f"p{i + 1}@mail.co.kr")
    raw.insert(warehouse)

    run = refine(warehouse)

    assert run.converged and run.passes <= 16  # two rounds; pointer jumping: about log2(81) passes each
    ids = {r["customer_id"] for r in warehouse.query("SELECT customer_id FROM refined.identity_map")}
    assert len(ids) == 1

    before = warehouse.query("SELECT node, customer_id FROM refined.identity_map ORDER BY node")
    with pytest.raises(RefineFailed) as failed:
        refine(warehouse, max_passes=1)  # too tight: the run fails, the last good identity map stays
    assert not failed.value.run.converged and "did not converge" in (failed.value.run.error or "")
    row = warehouse.query(
        "SELECT status, converged FROM refined.runs WHERE run_id = @r", {"r": failed.value.run.run_id}
    )
    assert row == [{"status": "failed", "converged": False}]
    assert warehouse.query("SELECT node, customer_id FROM refined.identity_map ORDER BY node") == before


def test_incremental_runs_pick_up_late_events_inside_the_overlap(warehouse: DuckDBWarehouse) -> None:
    raw = RawEvents()
    raw.page(at(0), "dev-a", "U1")
    raw.insert(warehouse)
    first = run_refine(warehouse, RefineRequest(mode="incremental", now=T0 + timedelta(days=2), trigger="test"))
    assert first.mode == "full"

    late = RawEvents()
    late._ids = iter(range(700, 800))
    late.order(T0 + timedelta(days=1, hours=12), "dev-a", "U1", "o-late", 7000)  # happened before the last run's end
    late.order(T0 - timedelta(days=5), "dev-a", "U1", "o-too-late", 1)  # older than the overlap: left for a full run
    late.insert(warehouse)
    second = run_refine(
        warehouse, RefineRequest(mode="incremental", overlap_hours=48, now=T0 + timedelta(days=3), trigger="test")
    )

    assert second.mode == "incremental"
    assert second.period_start == first.period_end - timedelta(hours=48)
    (profile,) = warehouse.query("SELECT odr_ltv, rvn_ltv FROM refined.profiles")
    assert profile == {"odr_ltv": 1, "rvn_ltv": 7000}
    run_refine(warehouse, RefineRequest(mode="full", now=T0 + timedelta(days=3), trigger="test"))
    (profile,) = warehouse.query("SELECT odr_ltv, rvn_ltv FROM refined.profiles")
    assert profile == {"odr_ltv": 2, "rvn_ltv": 7001}


def test_the_default_request_is_a_rolling_window(warehouse: DuckDBWarehouse) -> None:
    request = RefineRequest(now=T0 + timedelta(days=10))
    run = run_refine(warehouse, request)
    assert run.mode == "rolling" and run.period_end - run.period_start == timedelta(days=3)


def test_a_crm_record_keyed_by_its_crm_id_joins_the_web_member_who_carries_that_id(warehouse: DuckDBWarehouse) -> None:
    """CRM / POS imports often send userId = the customer number. That is the CRM record, not a second user id:
    the web login carrying the same CRM id is the same customer, and the store order goes with them."""
    raw = RawEvents()
    raw.identify(at(0), "web-dev", "member-7", crm_id="C-100", email="lee@mail.co.kr")
    raw.identify(at(5), None, "C-100", crm_id="C-100", phone="010-5555-0000")  # the CRM import
    raw.order(at(6), None, "C-100", "pos-1", 30000, ["매장 상품"])  # a store order keyed the same way
    raw.identify(at(7), None, "C-200", crm_id="C-200", phone="010-6666-0000")  # another CRM-only customer
    raw.insert(warehouse)

    run = refine(warehouse)

    assert run.status == "succeeded"
    member = one_customer(
        warehouse, ("u", "member-7"), ("c", "C-100"), ("a", "web-dev"), ("p", "+821055550000"), ("e", "lee@mail.co.kr")
    )
    assert customer_of(warehouse, "c", "C-200") not in (None, member)
    dropped = warehouse.query("SELECT reason FROM refined.dropped_links WHERE reason = 'crm_on_many_users'")
    assert dropped == []
    (profile,) = warehouse.query("SELECT odr_ltv, rvn_ltv FROM refined.profiles WHERE customer_id = @c", {"c": member})
    assert (profile["odr_ltv"], profile["rvn_ltv"]) == (1, 30000)


def test_a_crm_id_carried_by_two_user_ids_joined_by_alias_is_one_customer_but_by_two_strangers_is_dropped(
    warehouse: DuckDBWarehouse,
) -> None:
    """A member who changed login (alias old -> new) and identified under both with their CRM id is one person:
    the CRM id is carried by one alias group, not by two user ids. Found in the demo: the guard counted user
    ids, dropped the CRM link, and left the shop's CRM record as a customer of its own."""
    raw = RawEvents()
    raw.identify(at(0), "dev-1", "old-login", crm_id="C-300", phone="010-3333-0000")
    raw.alias(at(10), "old-login", "new-login")
    raw.identify(at(20), "dev-2", "new-login", crm_id="C-300", email="park@mail.co.kr")
    raw.identify(at(30), None, "C-300", crm_id="C-300", phone="000-0000")  # the CRM import, junk phone only
    # two unrelated logins carrying one CRM id (a typo in the shop's CRM): neither gets it
    raw.identify(at(40), "dev-3", "stranger-a", crm_id="C-400")
    raw.identify(at(50), "dev-4", "stranger-b", crm_id="C-400")
    raw.insert(warehouse)

    run = refine(warehouse)

    assert run.status == "succeeded"
    one_customer(warehouse, ("u", "new-login"), ("u", "old-login"), ("c", "C-300"), ("a", "dev-1"), ("a", "dev-2"))
    strangers = {customer_of(warehouse, "u", "stranger-a"), customer_of(warehouse, "u", "stranger-b")}
    assert len(strangers) == 2 and customer_of(warehouse, "c", "C-400") not in strangers
    dropped = warehouse.query(
        "SELECT dst, detail FROM refined.dropped_links WHERE reason = 'crm_on_many_users' ORDER BY src"
    )
    assert dropped == [
        {"dst": node("c", "C-400"), "detail": "2 user ids not joined by an alias"},
        {"dst": node("c", "C-400"), "detail": "2 user ids not joined by an alias"},
    ]


def test_a_login_and_a_crm_record_sharing_a_phone_are_one_customer_but_two_crm_records_are_not(
    warehouse: DuckDBWarehouse,
) -> None:
    """A web login and a store CRM record (sent with userId = the CRM number) that share a phone are the same
    person seen online and in the shop: one customer. A phone shared by two CRM records (or two logins) joins
    neither: that would merge two customers of the shop's own records."""
    raw = RawEvents()
    raw.identify(at(0), "web-1", "member-1", email="kim@mail.co.kr", phone="010-1111-2222")
    raw.identify(at(5), None, "C-1", crm_id="C-1", phone="01011112222")  # the CRM import, same phone
    raw.identify(at(10), "web-2", "member-2", phone="010-3333-4444")
    raw.identify(at(15), None, "C-2", crm_id="C-2", phone="010-3333-4444")
    raw.identify(at(16), None, "C-3", crm_id="C-3", phone="010 3333 4444")  # a second CRM record, same phone
    raw.insert(warehouse)

    refine(warehouse)

    member_1 = one_customer(
        warehouse, ("u", "member-1"), ("c", "C-1"), ("p", "+821011112222"), ("e", "kim@mail.co.kr"), ("a", "web-1")
    )
    member_2, crm_2, crm_3 = (customer_of(warehouse, k, v) for k, v in (("u", "member-2"), ("c", "C-2"), ("c", "C-3")))
    assert len({member_2, crm_2, crm_3, member_1}) == 4
    dropped = warehouse.query(
        "SELECT detail FROM refined.dropped_links WHERE reason = 'shared_identifier' AND dst = @p",
        {"p": node("p", "+821033334444")},
    )
    assert dropped and {r["detail"] for r in dropped} == {"2 customers with CRM ids"}


def test_no_customer_holds_more_ids_of_one_type_than_the_cap(warehouse: DuckDBWarehouse) -> None:
    """A chain of devices each signing up with two e-mails (every id links only two others, so the per-id
    guard never fires) would make one customer of 12 devices and 13 e-mails. The per-customer cap keeps the
    earliest seen ids of each type and cuts the rest loose, with the reason recorded."""
    raw = RawEvents()
    raw.identify(at(0), "chain-0", "u-chain")
    for i in range(12):
        raw.identify(at(10 + i), f"chain-{i}", None, email=f"c{i}@mail.co.kr")
        raw.identify(at(10 + i), f"chain-{i}", None, email=f"c{i + 1}@mail.co.kr")
    raw.identify(at(100), "solo-dev", "u-solo", email="solo@mail.co.kr")
    raw.insert(warehouse)

    run = refine(warehouse, max_ids_per_customer=5)

    assert run.status == "succeeded"
    held = warehouse.query(
        "SELECT customer_id, node_type, COUNT(*) AS n FROM refined.identity_map GROUP BY customer_id, node_type"
    )
    assert max(r["n"] for r in held) == 5
    chain = customer_of(warehouse, "u", "u-chain")
    kept = {
        r["node"] for r in warehouse.query("SELECT node FROM refined.identity_map WHERE customer_id = @c", {"c": chain})
    }
    assert node("a", "chain-0") in kept and node("a", "chain-11") not in kept
    assert customer_of(warehouse, "a", "solo-dev") == customer_of(warehouse, "u", "u-solo")
    reasons = warehouse.query(
        "SELECT reason, COUNT(*) AS n FROM refined.dropped_links WHERE reason = 'customer_cap' GROUP BY reason"
    )
    assert reasons and reasons[0]["n"] > 0
    # with the default cap nothing is cut: one customer holds the whole chain
    run = refine(warehouse)
    assert customer_of(warehouse, "a", "chain-11") == customer_of(warehouse, "u", "u-chain")


def test_a_session_going_on_across_the_period_start_is_one_session(warehouse: DuckDBWarehouse) -> None:
    """Page views every 10 minutes from 23:30 to 00:30 on a device, refined as two periods split at midnight:
    one session with seven page views, as a single run over both would make it, and re-running changes nothing."""
    midnight = T0 + timedelta(days=1)
    raw = RawEvents()
    for i in range(7):
        raw.page(midnight + timedelta(minutes=-30 + 10 * i), "night-dev", url=f"https://shop.kr/p/{i}")
    raw.page(midnight + timedelta(hours=5), "night-dev", url="https://shop.kr/later")  # a session of its own
    raw.insert(warehouse)

    def sessions() -> list[dict]:
        return warehouse.query(
            "SELECT started_at, pageviews, landing_page, exit_page FROM refined.sessions "
            "WHERE device_key = 'night-dev' ORDER BY started_at"
        )

    for start, end in ((T0, midnight), (midnight, midnight + timedelta(days=1))):
        run_refine(warehouse, RefineRequest(mode="range", start=start, end=end, trigger="test"))
    split_runs = sessions()
    run_refine(warehouse, RefineRequest(mode="range", start=midnight, end=midnight + timedelta(days=1), trigger="test"))
    assert sessions() == split_runs
    assert [(s["pageviews"], s["landing_page"], s["exit_page"]) for s in split_runs] == [
        (7, "https://shop.kr/p/0", "https://shop.kr/p/6"),
        (1, "https://shop.kr/later", "https://shop.kr/later"),
    ]
    assert split_runs[0]["started_at"] == midnight - timedelta(minutes=30)


def test_a_device_with_a_login_and_another_persons_member_number_is_shared(warehouse: DuckDBWarehouse) -> None:
    """On a family laptop one person logs in with a web id and another with the member number the shop's CRM
    knows (userId = the CRM id). A device joins one strong group only, so it joins neither: the two people are
    not merged, though a login and a CRM record may share an e-mail or a phone."""
    raw = RawEvents()
    raw.identify(at(0), None, "C-9", crm_id="C-9", phone="010-9999-0000")  # the CRM import of person B
    raw.page(at(5), "family-laptop", "member-A")
    raw.page(at(10), "family-laptop", "C-9")  # person B logs in with the member number
    raw.insert(warehouse)

    refine(warehouse)

    person_a, person_b = customer_of(warehouse, "u", "member-A"), customer_of(warehouse, "c", "C-9")
    assert person_a and person_b and person_a != person_b
    assert customer_of(warehouse, "a", "family-laptop") not in (person_a, person_b)
    (dropped,) = warehouse.query(
        "SELECT DISTINCT detail FROM refined.dropped_links WHERE dst = @d OR src = @d",
        {"d": node("a", "family-laptop")},
    )
    assert dropped["detail"] == "2 customers logged in on the device"


def test_crawler_traffic_stays_in_raw_but_makes_no_sessions_or_customers(warehouse: DuckDBWarehouse) -> None:
    """Crawlers and monitoring browsers (collect marks them device_type 'bot') run the site's JavaScript too:
    their page views must not become sessions, landings or customers. Identity and order records are kept
    whatever the user agent (a shop's backend may send them with any)."""
    raw = RawEvents()
    raw.page(at(0), "crawler-1", device_type="bot", os="Other", browser="Googlebot")
    raw.page(at(1), "crawler-1", url="https://shop.kr/p/1", device_type="bot")
    raw.event(at(2), "crawler-1", None, "product_view", device_type="bot")
    raw.page(at(0), "dev-a")
    raw.identify(at(1), "dev-a", "U1", email="kim@mail.co.kr")
    raw.order(at(3), None, "U1", "o-1", 50000, ["운동화"], device_type="bot")  # the shop's backend, an odd UA
    raw.insert(warehouse)

    run = refine(warehouse)

    assert run.status == "succeeded"
    assert customer_of(warehouse, "a", "crawler-1") is None
    assert warehouse.query("SELECT COUNT(*) AS n FROM refined.sessions WHERE device_key = 'crawler-1'") == [{"n": 0}]
    assert warehouse.query("SELECT COUNT(*) AS n FROM raw.page WHERE anonymous_id = 'crawler-1'") == [{"n": 2}]
    member = customer_of(warehouse, "u", "U1")
    (profile,) = warehouse.query("SELECT odr_ltv, device FROM refined.profiles WHERE customer_id = @c", {"c": member})
    assert profile == {"odr_ltv": 1, "device": "desktop"}  # the order counts; the device stays the person's own
    assert warehouse.query("SELECT COUNT(*) AS n FROM refined.profiles") == [{"n": 1}]
