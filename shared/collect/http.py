"""The collect function's HTTP edge: routes, auth, CORS, the tracker script and the pixel.

Served as an ASGI app (functions-framework's `aio` mode, uvicorn under gunicorn, locally and on Cloud Run alike):
one event loop a process reads and checks each request inline, and awaits only the Pub/Sub call that stores its
rows. Served as WSGI, every request held a gunicorn thread while it waited, and the threads' hand-offs cost more CPU
than the HTTP server itself (README, Benchmarks, session 9)."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response

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
CORS = {"Access-Control-Allow-Origin": "*"}  # what a browser reads on a response; the rest is the preflight's
CORS_PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}
RETRY_LATER = {**CORS, "Retry-After": "5"}

# Request headers are read from the ASGI scope's list (lower-case names, as bytes) into one dict a request:
# starlette's Headers.get scans the whole list a name, and collect reads a dozen (the geo headers mostly absent).
_GEO_HEADER_KEYS = tuple((name, name.lower().encode()) for name in GEO_HEADER_NAMES)


@lru_cache(maxsize=1)
def default_service() -> CollectService:
    settings = platform_settings()
    publisher = PubSubPublisher(
        settings.project, settings.collected_topic, timeout_seconds=settings.publish_timeout_seconds
    )
    return CollectService(publisher, settings.sites_by_write_key, linger_seconds=settings.publish_linger_seconds)


@lru_cache(maxsize=1)
def tracker_script() -> bytes:
    return TRACKER_FILE.read_bytes()


def _json(status: int, body: dict[str, object], headers: dict[str, str] = CORS) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _reply(result: CollectResult) -> Response:
    return _json(result.status, result.body, RETRY_LATER if result.status == 503 else CORS)


def _endpoint(path: str) -> str | None:
    """'batch', a call type, or None for an unknown path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) != 2 or parts[0] != "v1":
        return None
    name = SHORT_PATHS.get(parts[1], parts[1])
    return name if name == "batch" or name in SINGLE_CALLS else None


def _client_ip(request: Request, headers: dict[bytes, bytes], trusted_hops: int) -> str | None:
    """The address the nearest trusted proxy saw. Clients can write anything into X-Forwarded-For; each
    proxy appends the address it saw, so the real one is `trusted_hops` entries from the right
    (Cloud Run / Functions: 1; behind an external Application Load Balancer: 2)."""
    forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    if trusted_hops <= 0 or not hops:
        return request.client.host if request.client else None
    return hops[-trusted_hops] if len(hops) >= trusted_hops else hops[0]


def _basic_user(authorization: str | None) -> str | None:
    """The user name of HTTP Basic credentials (the SDKs' write key), None for anything else."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(credentials.strip()).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return None


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


def _base_request(
    request: Request, headers: dict[bytes, bytes], endpoint: str, body: bytes, encoding: str | None
) -> CollectRequest:
    return CollectRequest(
        endpoint=endpoint,
        body=body,
        content_encoding=encoding,
        write_key=_basic_user(_header(headers, b"authorization")) or request.query_params.get("writeKey") or None,
        ip=_client_ip(request, headers, platform_settings().trusted_proxy_hops),
        user_agent=_header(headers, b"user-agent"),
        headers={name: value.decode("latin-1") for name, key in _GEO_HEADER_KEYS if (value := headers.get(key))},
    )


async def _body(request: Request, limit: int) -> bytes:
    """The body, read no further than one byte past `limit` (a chunked body says no length up front)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


async def handle(request: Request, service: CollectService | None = None) -> Response:
    """Entry point of the collect function."""
    service = service or default_service()
    method = request.method
    path = request.url.path.rstrip("/") or "/"
    if method == "OPTIONS":
        return Response(status_code=204, headers=CORS_PREFLIGHT)
    if method == "GET" and path == "/tracker.js":
        return Response(
            tracker_script(),
            media_type="application/javascript",
            headers={**CORS, "Cache-Control": "public, max-age=300"},
        )
    if method == "GET" and path == "/healthz":
        return _json(200, {"ok": True})
    headers = dict(request.scope["headers"])
    if method == "GET" and path.startswith("/v1/pixel"):
        return await _pixel(request, headers, path, service)
    endpoint = _endpoint(path)
    if endpoint is None:
        return _json(404, {"success": False, "error": "not_found", "message": f"no endpoint {method} {path}"})
    if method != "POST":
        return _json(405, {"success": False, "error": "method_not_allowed", "message": f"{path} takes POST"})
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > MAX_REQUEST_BYTES:
        refused = RequestRejected(
            413, "payload_too_large", f"request body is {int(length)} bytes; the limit is {MAX_REQUEST_BYTES}"
        )
        return _reply(await service.refuse(_base_request(request, headers, endpoint, b"", None), refused))
    body = await _body(request, MAX_REQUEST_BYTES)
    encoding = _header(headers, b"content-encoding")
    return _reply(await service.handle(_base_request(request, headers, endpoint, body, encoding)))


async def _pixel(request: Request, headers: dict[bytes, bytes], path: str, service: CollectService) -> Response:
    """GET /v1/pixel/<call>?data=<base64 JSON>: the 1x1 GIF fallback where POST is not possible."""
    call = path.removeprefix("/v1/pixel").strip("/") or None
    try:
        body = decode_pixel(request.query_params.get("data", ""))
    except RequestRejected as refused:
        return _json(refused.status, {"success": False, "error": refused.code, "message": refused.message})
    endpoint = "batch" if call in (None, "batch") else SHORT_PATHS.get(call, call)
    if endpoint != "batch" and endpoint not in SINGLE_CALLS:
        return _json(404, {"success": False, "error": "not_found", "message": f"no pixel for {call!r}"})
    result = await service.handle(_base_request(request, headers, endpoint, body, None))
    if result.status != 200:
        return _reply(result)
    return Response(GIF, media_type="image/gif", headers={**CORS, "Cache-Control": "no-store"})
