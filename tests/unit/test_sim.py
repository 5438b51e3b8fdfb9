"""The synthetic shop: given a seed, the same bytes; the identity structure, the bad input and the expected counts
it promises are really in the requests it makes; drive() sends them as SDKs would."""

from __future__ import annotations

import base64
import gzip
import re
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from local.sim import Shop, SimConfig, SimRequest, drive, simulate
from local.sim.catalog import JUNK_IDS
from local.sim.wire import INJECTED, STANDALONE

END = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
CLICK_IDS = {"gclid", "gbraid", "wbraid", "dclid", "msclkid", "fbclid", "n_query", "n_ad", "kclid", "igshid"}
CONV_NAMES = {"Order Completed", "Signed Up"}


@pytest.fixture(scope="module")
def shop() -> Shop:
    return simulate(SimConfig(seed=7, end=END))


def document(request: SimRequest) -> Any:
    body = gzip.decompress(request.body) if request.headers.get("Content-Encoding") == "gzip" else request.body
    return orjson.loads(body)


def items(request: SimRequest) -> list[Any]:
    """The calls a clean (or partly bad) request carries, with their type as the endpoint gives it."""
    doc = document(request)
    if request.path == "/v1/batch":
        return doc["batch"]
    return [{**doc, "type": request.path.rsplit("/", 1)[-1]}]


def parseable(request: SimRequest) -> bool:
    return not any(kind in STANDALONE for kind in request.bad)


def web_calls(shop: Shop) -> list[dict[str, Any]]:
    return [i for r in shop.requests if parseable(r) and r.retry_of is None for i in items(r) if isinstance(i, dict)]


def tables_by_the_spec(item: dict[str, Any]) -> list[str]:
    """The raw tables a call lands in, by the rules of the product spec (written here, not taken from the code)."""
    call = item["type"]
    if call in ("identify", "alias"):
        return ["user"]
    if call == "group":
        return ["event"]
    if call == "track":
        return ["conv"] if item["event"] in CONV_NAMES else ["event"]
    props = item["properties"]
    url, referrer = urlsplit(props["url"]), props.get("referrer") or ""
    query = parse_qs(url.query)
    landing = (
        not referrer
        or urlsplit(referrer).hostname != url.hostname
        or any(k.startswith("utm_") or k in CLICK_IDS for k in query)
    )
    return ["page", "land"] if landing else ["page"]


# -- determinism ------------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_bytes(shop: Shop) -> None:
    again = simulate(SimConfig(seed=7, end=END))
    assert [(r.path, r.headers, r.body, r.label) for r in again.requests] == [
        (r.path, r.headers, r.body, r.label) for r in shop.requests
    ]
    assert again.truth.model_dump_json() == shop.truth.model_dump_json()
    assert again.expected == shop.expected
    other = simulate(SimConfig(seed=8, end=END, customers=50))
    assert {r.body for r in other.requests if not r.bad}.isdisjoint({r.body for r in shop.requests})


def test_a_whole_day_later_the_same_seed_makes_the_same_shop_shifted() -> None:
    """`make demo` ends its history at a midnight, so that a run on another day reports the same counts."""
    small = {"seed": 7, "customers": 60, "days": 20}
    today = simulate(SimConfig(**small, end=datetime(2026, 11, 23, tzinfo=UTC)))
    tomorrow = simulate(SimConfig(**small, end=datetime(2026, 11, 24, tzinfo=UTC)))
    assert tomorrow.expected == today.expected
    assert [(r.path, r.label) for r in tomorrow.requests] == [(r.path, r.label) for r in today.requests]
    assert [p.identifiers for p in tomorrow.truth.people] == [p.identifiers for p in today.truth.people]


def test_render_makes_only_sent_at_fresh_on_the_devices_clock(shop: Shop) -> None:
    now = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    skewed = [r for r in shop.requests if abs(r.clock_skew_seconds) > 3600 and r.sent_at]
    assert any(r.gzipped for r in skewed) and any(not r.gzipped for r in skewed)
    for request in skewed[:20]:
        sent = SimRequest(**{**request.model_dump(), "body": request.render(now)})
        before, after = document(request), document(sent)
        fresh = datetime.fromisoformat(after.pop("sentAt").replace("Z", "+00:00"))
        before.pop("sentAt")
        assert after == before
        assert abs((fresh - now).total_seconds() - request.clock_skew_seconds) < 0.001


def test_volume_and_batches_fit_a_demo(shop: Shop) -> None:
    assert 20_000 <= shop.expected.unique_events <= 40_000
    sizes = [len(items(r)) for r in shop.requests if r.path == "/v1/batch" and parseable(r)]
    assert max(sizes) <= 101 and sum(1 for s in sizes if s >= 50) > len(sizes) / 3
    assert max(len(r.body) for r in shop.requests if not r.bad) < 500 * 1024
    assert Counter(r.path for r in shop.requests).keys() >= {"/v1/batch", "/v1/track", "/v1/page", "/v1/identify"}
    assert sum(r.gzipped for r in shop.requests) > 0.1 * len(shop.requests) / 2


# -- the clocks ------------------------------------------------------------------------------
def test_original_timestamp_is_true_time_on_the_devices_clock(shop: Shop) -> None:
    truth = {e.message_id: e for e in shop.truth.events}
    skews = {r.clock_skew_seconds for r in shop.requests}
    assert any(abs(s) >= 3600 for s in skews) and any(60 <= abs(s) < 3600 for s in skews)
    checked = 0
    for request in shop.requests:
        if not parseable(request) or request.retry_of:
            continue
        for item in items(request):
            if isinstance(item, dict) and item.get("messageId") in truth:
                stamp = item.get("originalTimestamp") or item["timestamp"]
                claimed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                offset = (claimed - truth[item["messageId"]].time).total_seconds()
                assert abs(offset - request.clock_skew_seconds) < 0.001
                checked += 1
    assert checked == len(truth)
    assert all(shop.truth.start <= e.time < shop.truth.end for e in shop.truth.events)


# -- identity structure ------------------------------------------------------------------------
def test_shared_family_laptops_carry_two_peoples_logins(shop: Shop) -> None:
    truth = shop.truth
    assert len(truth.shared_devices) >= 2
    calls = web_calls(shop)
    for shared in truth.shared_devices:
        user_ids = {c["userId"] for c in calls if c.get("anonymousId") == shared.anonymous_id and c.get("userId")}
        people = [truth.person(pid) for pid in shared.person_ids]
        assert len(people) == 2 and all(p.user_id in user_ids for p in people)
        assert people[0].person_id != people[1].person_id


def test_junk_ids_are_sent_for_many_different_people(shop: Shop) -> None:
    truth = {e.message_id: e for e in shop.truth.events}
    people_by_junk: dict[str, set[str]] = defaultdict(set)
    for call in web_calls(shop):
        user_id = call.get("userId")
        if user_id is not None and str(user_id) in JUNK_IDS and call["messageId"] in truth:
            people_by_junk[str(user_id)].add(truth[call["messageId"]].person_id)
    assert set(people_by_junk) == set(JUNK_IDS)
    assert all(len(people) >= 2 for people in people_by_junk.values()), people_by_junk
    junk_traits = [
        t.get(k)
        for c in web_calls(shop)
        if c["type"] == "identify"
        for t in [c.get("traits") or {}]
        for k in ("email", "phone")
        if t.get(k) in JUNK_IDS
    ]
    assert {"000-0000", "", "null", "none"} <= set(junk_traits)


def test_several_devices_per_person_joined_by_login(shop: Shop) -> None:
    calls = web_calls(shop)
    devices_by_user: dict[str, set[str]] = defaultdict(set)
    for call in calls:
        if call.get("userId") and call.get("anonymousId"):
            devices_by_user[str(call["userId"])].add(call["anonymousId"])
    joined = [p for p in shop.truth.people if p.user_id and len(devices_by_user[p.user_id] - _shared(shop)) >= 2]
    assert len(joined) >= 20
    unlinked = [d for d in shop.truth.devices if not d.linked_by and not d.shared_by]
    assert unlinked, "some devices are never tied to a login: stitching must leave them alone"


def _shared(shop: Shop) -> set[str]:
    return {d.anonymous_id for d in shop.truth.shared_devices}


def test_anonymous_history_before_sign_up_then_logged_in(shop: Shop) -> None:
    signed_up = [p for p in shop.truth.people if p.signed_up_in_window]
    assert len(signed_up) >= 20
    calls = web_calls(shop)
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        by_device[call.get("anonymousId") or ""].append(call)
    for person in signed_up:
        signup = next(c for c in calls if c.get("event") == "Signed Up" and c.get("userId") == person.user_id)
        history = sorted(by_device[signup["anonymousId"]], key=lambda c: c["originalTimestamp"])
        first = next(i for i, c in enumerate(history) if c.get("userId") == person.user_id)
        assert first > 0 and history[0]["type"] == "page"  # anonymous browsing first
        assert history[first]["type"] in ("alias", "identify")  # then the sign-up ties the device to the login
        assert all(c.get("userId") == person.user_id for c in history[first:])
        identify = [c for c in history if c["type"] == "identify" and c.get("userId") == person.user_id]
        assert identify[0]["traits"].get("email") and identify[0]["traits"].get("name") == person.name


def test_store_records_aliases_and_contact_formats(shop: Shop) -> None:
    calls = web_calls(shop)
    crm = [c for c in calls if c["context"]["library"]["name"] == "analytics-python" and c["type"] == "identify"]
    assert len(crm) >= 10
    assert all("anonymousId" not in c and c["userId"] == c["traits"]["crmId"] and c["traits"].get("phone") for c in crm)
    web_crm_ids = {
        c["traits"]["crmId"]
        for c in calls
        if c["type"] == "identify" and "crmId" in (c.get("traits") or {}) and c.get("anonymousId")
    }
    assert web_crm_ids & {c["userId"] for c in crm}
    pos = [c for c in calls if c.get("event") == "Order Completed" and c["properties"].get("channel") == "store"]
    assert pos and all("anonymousId" not in c for c in pos)
    aliases = [c for c in calls if c["type"] == "alias"]
    assert any(c.get("anonymousId") == c["previousId"] for c in aliases)  # web: anonymous -> login
    assert any("anonymousId" not in c for c in aliases)  # server: old login -> new login

    phones = [
        v
        for c in calls
        if c["type"] == "identify"
        for k, v in (c.get("traits") or {}).items()
        if k in ("phone", "mobile")
    ]
    for pattern in (
        r"^010-\d{4}-\d{4}$",
        r"^010\d{8}$",
        r"^\+82 10-\d{4}-\d{4}$",
        r"^82-10-\d{4}-\d{4}$",
        r"^010\.\d{4}\.\d{4}$",
        r"^\(010\) \d{4} \d{4}$",
        r"^0(2|[3-6]\d)-\d{3,4}-\d{4}$",
        r"^\(\d{3}\) 555-\d{4}$",
        r"^\+81 \d0-\d{4}-\d{4}$",
    ):
        assert any(re.match(pattern, p) for p in phones), pattern
    emails = [c["traits"]["email"] for c in calls if c["type"] == "identify" and (c.get("traits") or {}).get("email")]
    canonical = {p.email for p in shop.truth.people}
    odd = [e for e in emails if e != e.strip().lower() and e.strip().lower() in canonical]
    assert len(odd) >= 20 and any(e != e.strip() for e in odd) and any(e.strip() != e.strip().lower() for e in odd)


# -- behaviour and the future -----------------------------------------------------------------
def test_behaviour_groups_and_future_purchases(shop: Shop) -> None:
    truth = shop.truth
    people = {p.person_id: p for p in truth.people}
    assert set(truth.groups) == {
        "loyal_big_spender",
        "bargain_hunter",
        "window_shopper",
        "lapsed",
        "new_signup",
        "regular",
        "store_only",
    }

    def avg(group: str, value: Any) -> float:
        members = [people[pid] for pid in truth.groups[group]]
        return sum(value(p) for p in members) / len(members)

    assert all(not people[pid].orders for pid in truth.groups["window_shopper"])
    assert avg("loyal_big_spender", lambda p: len(p.orders)) > 2 * avg("regular", lambda p: len(p.orders))
    assert all(people[pid].last_seen < truth.end - timedelta(days=30) for pid in truth.groups["lapsed"])
    assert all(people[pid].first_seen > truth.end - timedelta(days=21) for pid in truth.groups["new_signup"])
    assert all(not people[pid].web_visitor and people[pid].crm_id for pid in truth.groups["store_only"])
    bargain_orders = [
        c for c in web_calls(shop) if c.get("event") == "Order Completed" and c["properties"].get("coupon")
    ]
    assert len(bargain_orders) >= 20

    future = [f for p in truth.people for f in p.future_purchases]
    assert future and all(truth.end < f.time <= truth.future_end for f in future)
    assert avg("loyal_big_spender", lambda p: p.buys_next_30d) > 3 * avg("window_shopper", lambda p: p.buys_next_30d)
    assert max(e.time for e in truth.events) < truth.end  # the future is never sent


def test_truth_saves_and_loads(shop: Shop, tmp_path: Any) -> None:
    from local.sim.models import Truth

    path = shop.truth.save(tmp_path / "truth.json")
    loaded = Truth.load(path)
    assert loaded == shop.truth
    assert len(loaded.events) == shop.expected.unique_events - shop.expected.crawler_events  # crawlers are no one


# -- bad input and expected counts ------------------------------------------------------------
def test_bad_input_at_the_requested_share_every_kind_present(shop: Shop) -> None:
    bad = [r for r in shop.requests if r.bad]
    share = len(bad) / len(shop.requests)
    assert abs(share - 0.03) < 0.005
    kinds = Counter(k for r in bad for k in r.bad)
    assert set(kinds) == set(STANDALONE) | set(INJECTED)
    key = shop.config.write_key
    for request in bad:
        kind = request.bad[0]
        auth = request.headers.get("Authorization")
        user = base64.b64decode(auth.split()[1]).decode().split(":")[0] if auth else None
        if kind == "missing_write_key":
            assert auth is None and b"writeKey" not in request.body
        elif kind == "unknown_write_key":
            assert user != key
        elif kind == "malformed_json":
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(request.body)
        elif kind == "bad_gzip":
            with pytest.raises((OSError, EOFError)):
                gzip.decompress(request.body)
        elif kind == "payload_too_large":
            assert len(request.body) < 500 * 1024 < len(gzip.decompress(request.body))
        elif kind == "invalid_batch":
            assert not isinstance(document(request).get("batch"), list)
        elif kind == "invalid_body":
            assert isinstance(document(request), list)
        elif kind == "oversize_event":
            assert any(isinstance(i, dict) and len(orjson.dumps(i)) > 32 * 1024 for i in items(request))
        if kind in STANDALONE:
            assert request.expected_status in (400, 401, 413)
        else:
            assert request.expected_status == 200 and len(items(request)) >= 2
    none = simulate(SimConfig(seed=3, end=END, customers=40, bad_share=0))
    assert not any(r.bad for r in none.requests) and none.expected.rejected == {}
    more = simulate(SimConfig(seed=3, end=END, customers=40, bad_share=0.1))
    assert abs(more.expected.bad_requests / more.expected.requests - 0.1) < 0.01


def test_expected_counts_are_what_the_requests_carry(shop: Shop) -> None:
    truth = {e.message_id: e for e in shop.truth.events}
    stored: Counter[str] = Counter()
    unique: dict[str, set[str]] = defaultdict(set)
    foreign = accepted = 0
    crawled = crawler_landings = 0
    for request in shop.requests:
        if not parseable(request):
            continue
        for item in items(request):
            message_id = item.get("messageId") if isinstance(item, dict) else None
            if request.label.startswith("crawler:"):  # no one's: not in the truth, but it lands in raw
                assert "compatible;" in request.headers["User-Agent"] and item["type"] == "page"
                crawled += 1
                accepted += 1
                crawler_landings += "land" in tables_by_the_spec(item)
                for table in tables_by_the_spec(item):
                    stored[table] += 1
                    unique[table].add(message_id)
                continue
            if message_id not in truth:
                foreign += 1  # one of the bad events hidden in a good batch
                continue
            tables = tables_by_the_spec(item)
            assert tables == truth[message_id].tables, item
            accepted += 1
            for table in tables:
                stored[table] += 1
                unique[table].add(message_id)
    expected = shop.expected
    assert expected.stored == {t: stored[t] for t in expected.stored}
    assert expected.unique == {t: len(unique[t]) for t in expected.unique}
    assert expected.accepted_events == accepted and expected.unique_events == len(truth) + crawled
    assert expected.crawler_events == crawled > 0
    assert foreign == sum(len(r.bad) for r in shop.requests if r.expected_status == 200)
    assert sum(expected.rejected.values()) == sum(len(r.bad) for r in shop.requests)
    assert expected.statuses == dict(Counter(r.expected_status for r in shop.requests))
    retried = [r for r in shop.requests if r.retry_of]
    assert retried and expected.stored["page"] > expected.unique["page"]
    originals = {r.label: r for r in shop.requests}
    for retry in retried:
        assert [i["messageId"] for i in items(retry)] == [i["messageId"] for i in items(originals[retry.retry_of])]
    truth_landings = sum(1 for e in truth.values() if "land" in e.tables)
    assert expected.unique["land"] == truth_landings + crawler_landings and truth_landings > 1000
    assert crawler_landings == sum(1 for r in shop.requests if r.label.startswith("crawler:"))  # one a visit


# -- drive ------------------------------------------------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []
    failed_once: ClassVar[set[str]] = set()
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            first = self.path == "/v1/page" and self.path not in self.failed_once
            if first:
                self.failed_once.add(self.path)
            else:
                self.seen.append((self.path, dict(self.headers), body))
        status, answer = (503, b'{"success":false}') if first else (200, b'{"success":true,"accepted":1}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def test_drive_sends_fresh_sent_at_and_retries_server_errors() -> None:
    small = simulate(SimConfig(seed=11, end=END, customers=40, days=14))
    batches = sorted((r for r in small.requests if r.path == "/v1/batch" and not r.bad), key=lambda r: not r.gzipped)
    chosen = [r for r in small.requests if r.path == "/v1/page"][:1] + batches[:3]
    assert len(chosen) == 4
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        before = datetime.now(UTC)
        report = drive(f"http://127.0.0.1:{server.server_address[1]}", chosen, concurrency=2)
        after = datetime.now(UTC)
    finally:
        server.shutdown()
        server.server_close()
    assert report.sent == 4 and report.by_status == {200: 4} and report.retries == 1 and report.failures == []
    assert len(_Recorder.seen) == 4
    for path, headers, body in _Recorder.seen:
        raw = orjson.loads(gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body)
        sent_at = datetime.fromisoformat(raw.pop("sentAt").replace("Z", "+00:00"))
        request = next(
            r for r in chosen if r.path == path and {**document(r), "sentAt": None} == {**raw, "sentAt": None}
        )
        skew = timedelta(seconds=request.clock_skew_seconds)
        assert before + skew - timedelta(seconds=1) <= sent_at <= after + skew + timedelta(seconds=1)
        assert headers.get("Authorization") == request.headers.get("Authorization")
