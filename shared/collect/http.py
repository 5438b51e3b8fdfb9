"""The collect function's HTTP edge: routes, auth, CORS, the tracker script and the pixel."""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path

import flask
import orjson

from shared.collect.enrich import GEO_HEADER_NAMES
from shared.collect.service import (
    MAX_REQUEST_BYTES,
    SHORT_PATHS,
    SINGLE_CALLS,
    CollectRequest,
    CollectResult,
    CollectService,
    RequestRejected,
    decode_pixel,
)
from shared.pubsub import PubSubPublisher
from shared.settings import platform_settings

TRACKER_FILE = Path(__file__).resolve().parent.parent / "tracker" / "tracker.js"
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


@lru_cache(maxsize=1)
def default_service() -> CollectService:
    settings = platform_settings()
    publisher = PubSubPublisher(
        settings.project,
        settings.collected_topic,
        timeout_seconds=settings.publish_timeout_seconds,
        linger_seconds=settings.publish_linger_seconds,
    )
    return CollectService(publisher, settings.sites_by_write_key)


@lru_cache(maxsize=1)
def tracker_script() -> bytes:
    return TRACKER_FILE.read_bytes()


def _json(status: int, body: dict[str, object], extra: dict[str, str] | None = None) -> flask.Response:
    headers = {**CORS, **(extra or {})}
    return flask.Response(orjson.dumps(body), status=status, mimetype="application/json", headers=headers)


def _reply(result: CollectResult) -> flask.Response:
    return _json(result.status, result.body, {"Retry-After": "5"} if result.status == 503 else None)


def _endpoint(path: str) -> str | None:
    """'batch', a call type, or None for an unknown path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) != 2 or parts[0] != "v1":
        return None
    name = SHORT_PATHS.get(parts[1], parts[1])
    return name if name == "batch" or name in SINGLE_CALLS else None


def _client_ip(request: flask.Request, trusted_hops: int) -> str | None:
    """The address the nearest trusted proxy saw. Clients can write anything into X-Forwarded-For; each
    proxy appends the address it saw, so the real one is `trusted_hops` entries from the right
    (Cloud Run / Functions: 1; behind an external Application Load Balancer: 2)."""
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    if trusted_hops <= 0 or not hops:
        return request.remote_addr
    return hops[-trusted_hops] if len(hops) >= trusted_hops else hops[0]


def _base_request(request: flask.Request, endpoint: str, body: bytes, encoding: str | None) -> CollectRequest:
    write_key = (
        request.authorization.username if request.authorization and request.authorization.type == "basic" else None
    )
    return CollectRequest(
        endpoint=endpoint,
        body=body,
        content_encoding=encoding,
        write_key=write_key or request.args.get("writeKey") or None,
        ip=_client_ip(request, platform_settings().trusted_proxy_hops),
        user_agent=request.headers.get("User-Agent"),
        headers={name: value for name in GEO_HEADER_NAMES if (value := request.headers.get(name))},
    )


def handle(request: flask.Request, service: CollectService | None = None) -> flask.Response:
    """Entry point of the collect function."""
    service = service or default_service()
    path = request.path.rstrip("/") or "/"
    if request.method == "OPTIONS":
        return flask.Response(status=204, headers=CORS)
    if request.method == "GET" and path == "/tracker.js":
        return flask.Response(
            tracker_script(),
            mimetype="application/javascript",
            headers={**CORS, "Cache-Control": "public, max-age=300"},
        )
    if request.method == "GET" and path == "/healthz":
        return _json(200, {"ok": True})
    if request.method == "GET" and path.startswith("/v1/pixel"):
        return _pixel(request, path, service)
    endpoint = _endpoint(path)
    if endpoint is None:
        return _json(404, {"success": False, "error": "not_found", "message": f"no endpoint {request.method} {path}"})
    if request.method != "POST":
        return _json(405, {"success": False, "error": "method_not_allowed", "message": f"{path} takes POST"})
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        refused = RequestRejected(
            413,
            "payload_too_large",
            f"request body is {request.content_length} bytes; the limit is {MAX_REQUEST_BYTES}",
        )
        return _reply(service.refuse(_base_request(request, endpoint, b"", None), refused))
    body = request.get_data(cache=False)
    return _reply(service.handle(_base_request(request, endpoint, body, request.headers.get("Content-Encoding"))))


def _pixel(request: flask.Request, path: str, service: CollectService) -> flask.Response:
    """GET /v1/pixel/<call>?data=<base64 JSON>: the 1x1 GIF fallback where POST is not possible."""
    call = path.removeprefix("/v1/pixel").strip("/") or None
    try:
        body = decode_pixel(request.args.get("data", ""))
    except RequestRejected as refused:
        return _json(refused.status, {"success": False, "error": refused.code, "message": refused.message})
    endpoint = "batch" if call in (None, "batch") else SHORT_PATHS.get(call, call)
    if endpoint != "batch" and endpoint not in SINGLE_CALLS:
        return _json(404, {"success": False, "error": "not_found", "message": f"no pixel for {call!r}"})
    result = service.handle(_base_request(request, endpoint, body, None))
    if result.status != 200:
        return _reply(result)
    return flask.Response(GIF, mimetype="image/gif", headers={**CORS, "Cache-Control": "no-store"})
