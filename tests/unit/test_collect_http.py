"""The collect function's HTTP edge: functions-framework's ASGI app of it, through starlette's test client."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import functions_framework
import orjson
import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from shared.collect import http
from shared.collect.service import CollectService
from tests.unit.fakes import RecordingPublisher


@pytest.fixture
def client_and_publisher(monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, RecordingPublisher]:
    publisher = RecordingPublisher()
    monkeypatch.setattr(http, "default_service", lambda: CollectService(publisher, {"wk": "shop"}))
    app = functions_framework.create_app(target="collect", source="functions/collect/main.py")
    return TestClient(app), publisher


def posted_page_row(
    client_and_publisher: tuple[TestClient, RecordingPublisher], headers: dict[str, str], *, gzipped: bool = False
) -> dict[str, Any]:
    """The row of one page call POSTed with these headers (and the site's write key)."""
    client, publisher = client_and_publisher
    body = orjson.dumps({"anonymousId": "a"})
    response = client.post(
        "/v1/page", content=gzip.compress(body) if gzipped else body, auth=("wk", ""), headers=headers
    )
    assert response.status_code == 200
    return publisher.rows("raw.page")[-1]


def test_the_client_address_is_the_one_the_trusted_proxy_saw(
    client_and_publisher: tuple[TestClient, RecordingPublisher],
) -> None:
    row = posted_page_row(client_and_publisher, {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
    assert row["ip"] == "203.0.113.7"


def test_oversize_is_refused_before_reading(client_and_publisher: tuple[TestClient, RecordingPublisher]) -> None:
    client, publisher = client_and_publisher
    response = client.post("/v1/batch", content=b"x" * (600 * 1024), auth=("wk", ""))
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"
    assert [r["reason_code"] for r in publisher.rows("ops.rejected")] == ["payload_too_large"]


def test_a_body_without_a_length_is_read_no_further_than_the_limit(
    client_and_publisher: tuple[TestClient, RecordingPublisher],
) -> None:
    client, publisher = client_and_publisher
    chunked_upload = (b"x" * (64 * 1024) for _ in range(100))  # sent chunked: no Content-Length to refuse it by
    response = client.post("/v1/batch", content=chunked_upload, auth=("wk", ""))
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"
    assert [r["reason_code"] for r in publisher.rows("ops.rejected")] == ["payload_too_large"]


def test_the_body_is_read_no_further_than_the_chunk_that_passes_the_limit() -> None:
    chunks_received: list[int] = []

    async def receive() -> dict[str, Any]:  # the ASGI server's side: 64 KiB chunks of an endless body
        chunks_received.append(len(chunks_received))
        return {"type": "http.request", "body": b"x" * (64 * 1024), "more_body": True}

    request = Request({"type": "http", "method": "POST", "path": "/v1/batch", "headers": []}, receive)
    body = asyncio.run(http._body(request, 100_000))
    assert (len(body), len(chunks_received)) == (128 * 1024, 2)


def test_wrong_method_and_path(client_and_publisher: tuple[TestClient, RecordingPublisher]) -> None:
    client, _ = client_and_publisher
    assert client.get("/v1/track").status_code == 405
    assert client.post("/v1/nothing").status_code == 404
    assert client.get("/healthz").json() == {"ok": True}


def test_the_write_key_comes_from_basic_auth_or_else_the_body(
    client_and_publisher: tuple[TestClient, RecordingPublisher],
) -> None:
    client, publisher = client_and_publisher
    event = orjson.dumps({"anonymousId": "a"})
    assert client.post("/v1/page", content=event, headers={"Authorization": "basic d2s6"}).status_code == 200  # wk:
    refused = client.post("/v1/page", content=event, headers={"Authorization": "Basic %%%"})
    assert (refused.status_code, refused.json()["error"]) == (401, "missing_write_key")
    bearer = client.post("/v1/page", content=event, headers={"Authorization": "Bearer d2s6"})
    assert (bearer.status_code, bearer.json()["error"]) == (401, "missing_write_key")
    in_body = orjson.dumps({"anonymousId": "b", "writeKey": "wk"})
    assert client.post("/v1/page", content=in_body, headers={"Authorization": "Bearer x"}).status_code == 200
    assert client.post("/v1/page?writeKey=wk", content=event).status_code == 200
    assert [row["anonymous_id"] for row in publisher.rows("raw.page")] == ["a", "b", "a"]


def test_the_edges_geo_headers_and_content_encoding_are_read(
    client_and_publisher: tuple[TestClient, RecordingPublisher],
) -> None:
    row = posted_page_row(
        client_and_publisher,
        {"X-Client-Geo-Country": "kr", "X-Client-Geo-Region": "KR11", "Content-Encoding": "gzip"},
        gzipped=True,
    )
    assert (row["country"], row["region"], row["city"]) == ("KR", "KR11", None)


def test_cors_a_response_allows_any_origin_and_the_preflight_names_what_may_be_sent(
    client_and_publisher: tuple[TestClient, RecordingPublisher],
) -> None:
    client, _ = client_and_publisher
    preflight = client.options("/v1/batch", headers={"Origin": "https://shop.kr"})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST, GET, OPTIONS"
    assert {"Authorization", "Content-Encoding"} <= set(preflight.headers["Access-Control-Allow-Headers"].split(", "))
    response = client.post("/v1/page", content=orjson.dumps({"anonymousId": "a"}), auth=("wk", ""))
    assert (
        response.headers["Access-Control-Allow-Origin"] == "*"
        and response.headers["content-type"] == "application/json"
    )
    assert "Access-Control-Max-Age" not in response.headers
