"""Collection logic: given a request, when handled, then rows, rejections and status are exactly right."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from datetime import UTC, datetime

import orjson
import pytest

from shared.collect.service import (
    MAX_EVENT_BYTES,
    MAX_REQUEST_BYTES,
    CollectRequest,
    CollectResult,
    CollectService,
)
from tests.unit.fakes import RecordingPublisher

RECEIVED = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
UA_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"


def handled(svc: CollectService, collect_request: CollectRequest) -> CollectResult:
    """The service's answer to one request, on an event loop of its own, as the ASGI server gives it one."""
    return asyncio.run(svc.handle(collect_request))


def service(publisher: RecordingPublisher | None = None) -> tuple[CollectService, RecordingPublisher]:
    publisher = publisher or RecordingPublisher()
    return CollectService(publisher, {"wk": "shop"}), publisher


def request(body: object, endpoint: str = "batch", **kw: object) -> CollectRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return CollectRequest(endpoint=endpoint, body=raw, write_key=kw.pop("write_key", "wk"), received_at=RECEIVED, **kw)


def test_batch_is_classified_into_the_five_tables_and_one_message() -> None:
    svc, pub = service()
    batch = {
        "batch": [
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"email": "a@b.kr", "phone": "010-1234-5678", "birthday": "1990-02-03"},
            },
            {"type": "alias", "userId": "u1", "previousId": "anon-1"},
            {
                "type": "page",
                "anonymousId": "a1",
                "properties": {"url": "https://shop.kr/?utm_campaign=w&utm_source=x", "referrer": ""},
            },
            {
                "type": "page",
                "anonymousId": "a1",
                "properties": {"url": "https://shop.kr/p/1", "referrer": "https://shop.kr/"},
            },
            {
                "type": "track",
                "anonymousId": "a1",
                "event": "Order Completed",
                "properties": {"order_id": "o1", "revenue": 100},
            },
            {"type": "track", "anonymousId": "a1", "event": "Signed Up"},
            {"type": "track", "anonymousId": "a1", "event": "Products Searched", "properties": {"query": "운동화"}},
            {"type": "group", "anonymousId": "a1", "groupId": "g1"},
        ]
    }
    result = handled(svc, request(batch))
    assert (result.status, result.accepted, result.rejected) == (200, 8, 0)
    assert len(pub.messages) == 1
    message, attributes = pub.messages[0]
    assert message["schema"] == "raw-columns/1"  # each table column by column
    assert {t: len(c["event_id"]) for t, c in message["tables"].items()} == {
        "raw.user": 2,
        "raw.page": 2,
        "raw.land": 1,
        "raw.conv": 2,
        "raw.event": 2,
    }
    assert attributes == {
        "site_id": "shop",
        "schema": "raw-columns/1",
        "batch_id": message["batch_id"],
        "events": "8",
        "rejected": "0",
        "requests": "1",
        "content_encoding": "gzip",
    }
    user = pub.rows("raw.user")[0]
    assert (user["email"], user["phone"], user["birth_year"]) == ("a@b.kr", "010-1234-5678", 1990)
    assert pub.rows("raw.user")[1]["previous_id"] == "anon-1"
    assert [r["conv_type"] for r in pub.rows("raw.conv")] == ["order", "signup"]
    search = next(r for r in pub.rows("raw.event") if r["event_type"] == "search")
    assert search["search_keyword"] == "운동화"
    land = pub.rows("raw.land")[0]
    assert (land["medium"], land["campaign"]) == ("campaign", "w")


def test_unknown_properties_are_kept_and_message_id_is_the_event_id() -> None:
    svc, pub = service()
    event = {
        "type": "track",
        "messageId": "m-1",
        "anonymousId": "a",
        "event": "Wishlist",
        "properties": {"x": {"deep": [1, 2]}},
        "someVendorField": 5,
    }
    handled(svc, request(event, endpoint="track"))
    row = pub.rows("raw.event")[0]
    assert row["event_id"] == "m-1"
    assert orjson.loads(row["properties"]) == {"x": {"deep": [1, 2]}}
    assert orjson.loads(row["raw"])["someVendorField"] == 5
    assert row["event_type"] == "custom"


def test_skew_is_corrected_and_future_is_pulled_back() -> None:
    svc, pub = service()
    slow_clock = {"type": "page", "anonymousId": "a", "originalTimestamp": "2026-11-23T09:00:00Z"}  # 3 h behind
    future = {"type": "page", "anonymousId": "b", "originalTimestamp": "2027-01-01T00:00:00Z"}
    handled(svc, request({"batch": [slow_clock], "sentAt": "2026-11-23T09:00:10Z"}))
    handled(svc, request({"batch": [future]}))
    first, second = pub.rows("raw.page")
    assert first["event_time"] == "2026-11-23T11:59:50.000000Z"
    assert first["original_timestamp"] == "2026-11-23T09:00:00.000000Z"
    assert second["event_time"] == "2026-11-23T12:00:00.000000Z"


def test_user_agent_is_parsed() -> None:
    svc, pub = service()
    handled(svc, request({"type": "page", "anonymousId": "a"}, endpoint="page", user_agent=UA_IPHONE))
    row = pub.rows("raw.page")[0]
    assert (row["device_type"], row["device"], row["os"], row["browser"]) == (
        "mobile",
        "iPhone",
        "iOS",
        "Mobile Safari",
    )


def test_geo_comes_from_the_edge_headers_then_the_context() -> None:
    svc, pub = service()
    handled(
        svc,
        request(
            {"type": "page", "anonymousId": "a"},
            endpoint="page",
            headers={"X-Client-Geo-Country": "kr", "X-Client-Geo-Region": "KR-11"},
        ),
    )
    handled(
        svc,
        request(
            {"type": "page", "anonymousId": "a", "context": {"location": {"country": "JP", "city": "Osaka"}}},
            endpoint="page",
        ),
    )
    first, second = pub.rows("raw.page")
    assert (first["country"], first["region"]) == ("KR", "KR-11")
    assert (second["country"], second["city"]) == ("JP", "Osaka")


def test_request_wide_values_are_shared_but_a_calls_own_location_and_sent_at_win() -> None:
    svc, pub = service()
    batch = {
        "sentAt": "2026-11-23T10:00:05Z",
        "batch": [
            {"type": "page", "anonymousId": "a", "context": {"location": {"country": "JP", "city": "Osaka"}}},
            {"type": "page", "anonymousId": "b"},
            {"type": "page", "anonymousId": "c", "sentAt": "2026-11-23T10:00:09Z"},
            {"type": "page", "anonymousId": "d"},
        ],
    }
    handled(svc, request(batch))
    rows = {r["anonymous_id"]: r for r in pub.rows("raw.page")}
    assert (rows["a"]["country"], rows["a"]["city"]) == ("JP", "Osaka")
    assert all(rows[k]["country"] is None and rows[k]["city"] is None for k in "bcd")
    assert [rows[k]["sent_at"] for k in "abcd"] == [
        "2026-11-23T10:00:05.000000Z",
        "2026-11-23T10:00:05.000000Z",
        "2026-11-23T10:00:09.000000Z",
        "2026-11-23T10:00:05.000000Z",
    ]


def test_bad_events_in_a_batch_are_rejected_with_reasons_and_the_rest_goes_through() -> None:
    svc, pub = service()
    batch = {
        "batch": [
            {"type": "track", "anonymousId": "a", "event": "Product Viewed"},
            {"type": "track", "anonymousId": "a"},
            {"type": "track", "anonymousId": "a", "event": "x", "properties": "not an object"},
            {"type": "track", "userId": {"id": 1}, "event": "x"},
            {"type": "track", "anonymousId": "a", "event": "Order Completed", "properties": {"revenue": "abc"}},
            {"type": "fly", "anonymousId": "a"},
            {"type": "track", "anonymousId": "a", "event": "big", "properties": {"blob": "x" * MAX_EVENT_BYTES}},
            7,
        ]
    }
    result = handled(svc, request(batch))
    assert (result.status, result.accepted, result.rejected) == (200, 1, 7)
    reasons = {r["index"]: (r["error"], r["message"]) for r in result.body["rejected"]}
    assert reasons[1] == ("invalid_event", "track needs an event name")
    assert reasons[2] == ("invalid_event", "properties must be a JSON object, got str")
    assert "userId must be a string or a number" in reasons[3][1]
    assert reasons[4] == ("invalid_value", "properties.revenue must be a number, got 'abc'")
    assert reasons[5][0] == "invalid_event" and "type" in reasons[5][1]
    assert reasons[6][0] == "event_too_large"
    assert reasons[7][1] == "event must be a JSON object, got int"
    kept = pub.rows("ops.rejected")
    assert len(kept) == 7 and all(r["stage"] == "collect" and r["site_id"] == "shop" for r in kept)
    assert len(pub.rows("raw.event")) == 1


def test_a_batch_with_nothing_valid_is_a_400_and_still_kept() -> None:
    svc, pub = service()
    result = handled(svc, request({"batch": [{"type": "track", "anonymousId": "a"}]}))
    assert result.status == 400 and result.body["error"] == "invalid_event"
    assert len(pub.rows("ops.rejected")) == 1


@pytest.mark.parametrize(
    ("body", "kw", "status", "code"),
    [
        (b"{not json", {}, 400, "malformed_json"),
        (b"[1, 2]", {}, 400, "invalid_body"),
        (b'{"batch": "x"}', {}, 400, "invalid_batch"),
        (b'{"batch": []}', {"write_key": None}, 401, "missing_write_key"),
        (b'{"batch": []}', {"write_key": "nope"}, 401, "unknown_write_key"),
        (b"\x1f\x8b\x08garbage", {"content_encoding": "gzip"}, 400, "bad_gzip"),
        (b"{}", {"content_encoding": "br"}, 415, "unsupported_encoding"),
        (b" " * (MAX_REQUEST_BYTES + 1), {}, 413, "payload_too_large"),
        (gzip.compress(b" " * (MAX_REQUEST_BYTES + 10)), {"content_encoding": "gzip"}, 413, "payload_too_large"),
    ],
)
def test_refused_requests_get_a_4xx_naming_the_problem_and_are_kept(
    body: bytes, kw: dict, status: int, code: str
) -> None:
    svc, pub = service()
    result = handled(svc, request(body, **kw))
    assert (result.status, result.body["error"]) == (status, code)
    assert result.body["message"]
    kept = pub.rows("ops.rejected")
    assert [r["reason_code"] for r in kept] == [code]


def test_gzip_and_deflate_bodies_are_read() -> None:
    svc, pub = service()
    body = orjson.dumps({"batch": [{"type": "page", "anonymousId": "a"}]})
    assert handled(svc, request(gzip.compress(body), content_encoding="gzip")).status == 200
    assert handled(svc, request(zlib.compress(body), content_encoding="deflate")).status == 200
    assert len(pub.rows("raw.page")) == 2


def test_write_key_may_come_in_the_body() -> None:
    svc, pub = service()
    result = handled(svc, request({"writeKey": "wk", "batch": [{"type": "page", "anonymousId": "a"}]}, write_key=None))
    assert result.status == 200 and pub.rows("raw.page")[0]["site_id"] == "shop"


def test_pubsub_down_means_503_and_nothing_half_accepted() -> None:
    svc, pub = service(RecordingPublisher(down=True))
    result = handled(svc, request({"batch": [{"type": "page", "anonymousId": "a"}]}))
    assert result.status == 503 and result.body["error"] == "unavailable"
    assert pub.messages == []


def test_client_input_never_gives_a_5xx() -> None:
    svc, _ = service()
    odd_bodies = [
        b"",
        b"null",
        b"true",
        b'"x"',
        b'{"batch": [null]}',
        b'{"batch": [{"type": null}]}',
        b'{"type": "track"}',
        b'{"batch": [{"type": "page", "anonymousId": "a", "timestamp": "yesterday"}]}',
        b'{"batch": [{"type": "page", "anonymousId": "a", "context": []}]}',
        b'{"batch": [], "context": 5}',
        b'{"batch": [{"type": "page", "anonymousId": "\\ud800"}]}',
    ]
    for body in odd_bodies:
        for endpoint in ("batch", "track", "identify"):
            assert handled(svc, request(body, endpoint=endpoint)).status < 500, body


def test_a_single_call_is_corrected_with_its_own_sent_at() -> None:
    svc, pub = service()
    call = {"anonymousId": "a", "originalTimestamp": "2026-11-23T02:00:00Z", "sentAt": "2026-11-23T02:00:30Z"}
    handled(svc, request(call, endpoint="page"))
    assert pub.rows("raw.page")[0]["event_time"] == "2026-11-23T11:59:30.000000Z"
