"""The collect function's HTTP edge: routes, auth, CORS, the tracker script and the pixel."""

from __future__ import annotations

import base64
import binascii
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
CORS = {"Access-Control-Allow-Origin": "*"}  # what a browser reads on a response; the rest is the preflight's
CORS_PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


# Request headers are read straight from the WSGI environ: werkzeug's Headers.get costs several µs a name, and
# collect reads a dozen on every request (the geo headers mostly absent).
_GEO_ENVIRON_KEYS = tuple((name, "HTTP_" + name.upper().replace("-", "_")) for name in GEO_HEADER_NAMES)
_JSON_HEADERS = tuple(CORS.items())


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


def _json(status: int, body: dict[str, object], extra: dict[str, str] | None = None) -> flask.Response:
    headers = [*_JSON_HEADERS, *extra.items()] if extra else _JSON_HEADERS
    return flask.Response(orjson.dumps(body), status=status, content_type="application/json", headers=headers)


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
    hops = [h.strip() for h in request.environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if trusted_hops <= 0 or not hops:
        return request.remote_addr
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


def _base_request(request: flask.Request, endpoint: str, body: bytes, encoding: str | None) -> CollectRequest:
    environ = request.environ
    return CollectRequest(
        endpoint=endpoint,
        body=body,
        content_encoding=encoding,
        write_key=_basic_user(environ.get("HTTP_AUTHORIZATION")) or request.args.get("writeKey") or None,
        ip=_client_ip(request, platform_settings().trusted_proxy_hops),
        user_agent=environ.get("HTTP_USER_AGENT"),
        headers={name: value for name, key in _GEO_ENVIRON_KEYS if (value := environ.get(key))},
    )


def handle(request: flask.Request, service: CollectService | None = None) -> flask.Response:
    """Entry point of the collect function."""
    service = service or default_service()
    path = request.path.rstrip("/") or "/"
    if request.method == "OPTIONS":
        return flask.Response(status=204, headers=CORS_PREFLIGHT)
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
    return _reply(service.handle(_base_request(request, endpoint, body, request.environ.get("HTTP_CONTENT_ENCODING"))))


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
