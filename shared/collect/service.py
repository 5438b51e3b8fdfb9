"""Collection logic, free of HTTP and of Pub/Sub: a request in, rows and rejections out, published in one message."""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field, ValidationError

from shared.collect.models import BatchEnvelope, Rejection, TrackingCall
from shared.collect.outbox import LINGER_SECONDS, Outbox
from shared.collect.rows import RowBuilder, RowError
from shared.messages import MAX_REJECTED_PAYLOAD, kept_payload
from shared.pubsub import Publisher, PublishUnavailable
from shared.timeutil import to_iso, utc_now

log = logging.getLogger("cdp.collect")

MAX_EVENT_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
SINGLE_CALLS = {"track", "page", "screen", "identify", "alias", "group"}
# analytics.js posts to short paths.
SHORT_PATHS = {"t": "track", "p": "page", "s": "screen", "i": "identify", "a": "alias", "g": "group"}


class CollectRequest(BaseModel):
    """What the HTTP edge hands to the logic."""

    endpoint: str = Field(description="'batch' or a call type")
    body: bytes
    content_encoding: str | None = None
    write_key: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    received_at: datetime = Field(default_factory=utc_now)


class CollectResult(BaseModel):
    status: int
    body: dict[str, Any]
    accepted: int = 0
    rejected: int = 0
    message_id: str | None = None


@dataclass
class Accepted:
    """A request read and checked: its rows by table (rejected calls in ops.rejected), before publishing."""

    site_id: str
    rows: dict[str, list[dict[str, Any]]]
    accepted: int
    calls: int
    rejections: list[tuple[int, Rejection]]

    def result(self, message_id: str | None) -> CollectResult:
        """The answer once the rows are published (in the message `message_id`)."""
        status = 200 if self.accepted or not self.calls else 400
        body: dict[str, Any] = {"success": status == 200, "accepted": self.accepted}
        if self.rejections:
            body["rejected"] = [{"index": i, "error": r.reason_code, "message": r.reason} for i, r in self.rejections]
        if status != 200:
            first = self.rejections[0][1]
            body.update(error=first.reason_code, message=first.reason)
        return CollectResult(
            status=status, body=body, accepted=self.accepted, rejected=len(self.rejections), message_id=message_id
        )


class RequestRejected(Exception):
    """The whole request is refused; status and reason code go back to the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def _validation_reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "event"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(message if where == "event" or message.startswith(where) else f"{where}: {message}")
    return "; ".join(parts)


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Gunzip when the SDK said so, never past the request limit (a small gzip can hide a huge body)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise RequestRejected(
            413, "payload_too_large", f"request body is {len(body)} bytes; the limit is {MAX_REQUEST_BYTES}"
        )
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise RequestRejected(
            415, "unsupported_encoding", f"Content-Encoding {content_encoding!r} is not gzip or deflate"
        )
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
    try:
        data = inflater.decompress(body, MAX_REQUEST_BYTES + 1)
    except zlib.error as exc:
        raise RequestRejected(400, "bad_gzip", f"body is not valid {encoding}: {exc}") from None
    if len(data) > MAX_REQUEST_BYTES or inflater.unconsumed_tail:
        raise RequestRejected(413, "payload_too_large", f"decompressed body exceeds {MAX_REQUEST_BYTES} bytes")
    if not inflater.eof:
        raise RequestRejected(400, "bad_gzip", f"{encoding} body is truncated")
    return data


def decode_pixel(data: str) -> bytes:
    """The pixel API's ?data=: base64 (standard or URL-safe, padding optional) of the JSON call."""
    padded = data.strip() + "=" * (-len(data.strip()) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise RequestRejected(400, "bad_pixel_data", "data is not base64 of a JSON call") from None


class CollectService:
    """Validates, enriches and classifies calls and publishes each request's rows in one message (the outbox may
    put concurrent requests of the site in the same one)."""

    def __init__(
        self, publisher: Publisher, sites_by_write_key: dict[str, str], *, linger_seconds: float = LINGER_SECONDS
    ) -> None:
        # Requests' rows leave through the outbox, in messages shared with concurrent ones.
        self.outbox = Outbox(publisher, linger_seconds=linger_seconds)
        self.sites_by_write_key = sites_by_write_key

    async def handle(self, request: CollectRequest) -> CollectResult:
        """Validate and enrich the request's calls, then answer once their rows are published."""
        try:
            accepted = self.accept(request)
        except RequestRejected as refused:
            return await self.refuse(request, refused)
        message_id = None
        if accepted.rows:
            try:
                message_id = await self.outbox.send(
                    accepted.site_id, accepted.rows, accepted.accepted, len(request.body)
                )
            except PublishUnavailable as exc:
                if accepted.accepted:
                    log.error("collect: %s; answering 503 so that the client retries", exc)
                    return CollectResult(
                        status=503,
                        body={
                            "success": False,
                            "error": "unavailable",
                            "message": "the event stream is unavailable; retry later",
                        },
                    )
                log.error("collect: rejected records not published (%s): %s", exc, accepted.rows["ops.rejected"])
        return accepted.result(message_id)

    async def refuse(self, request: CollectRequest, refused: RequestRejected) -> CollectResult:
        """Answer a refused request, keeping it as a rejected record (best effort: the client has its 4xx)."""
        site_id = self.sites_by_write_key.get(request.write_key or "")
        row = self._rejected_row(
            request,
            site_id,
            Rejection(
                reason_code=refused.code, reason=refused.message, payload=request.body[: MAX_REJECTED_PAYLOAD + 1]
            ),
        )
        try:
            await self.outbox.send(site_id, {"ops.rejected": [row]}, 0, len(request.body))
        except PublishUnavailable as exc:
            log.error("collect: rejection not published (%s): %s", exc, row)
        return CollectResult(
            status=refused.status,
            body={"success": False, "error": refused.code, "message": refused.message},
            rejected=1,
        )

    # -- the steps --------------------------------------------------------------------------
    def accept(self, request: CollectRequest) -> Accepted:
        """The request's rows and rejections, nothing published yet; raises RequestRejected for a whole request
        refused. CPU only: the event loop runs it inline."""
        body = decode_body(request.body, request.content_encoding)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RequestRejected(400, "malformed_json", f"body is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise RequestRejected(400, "invalid_body", f"body must be a JSON object, got {type(document).__name__}")

        write_key = request.write_key or _text_or_none(document.get("writeKey"))
        if not write_key:
            raise RequestRejected(
                401, "missing_write_key", "no write key: send it as the Basic auth user name or as writeKey"
            )
        site_id = self.sites_by_write_key.get(write_key)
        if site_id is None:
            raise RequestRejected(401, "unknown_write_key", "the write key is not one of this platform's sites")

        if request.endpoint == "batch":
            try:
                envelope = BatchEnvelope.model_validate(document)
            except ValidationError as exc:
                raise RequestRejected(400, "invalid_batch", _validation_reason(exc)) from None
            items, sent_at, batch_context = envelope.batch, envelope.sent_at, envelope.context
        else:
            # A single call carries its own sentAt, read with the call itself.
            items = [{**document, "type": request.endpoint}]
            sent_at, batch_context = None, {}

        builder = RowBuilder(
            site_id=site_id,
            received_at=request.received_at,
            ip=request.ip,
            user_agent=request.user_agent,
            headers=request.headers,
            batch_sent_at=sent_at,
            batch_context=batch_context,
        )
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        rejections: list[tuple[int, Rejection]] = []
        accepted = 0
        for index, item in enumerate(items):
            outcome = self._one(builder, item)
            if isinstance(outcome, Rejection):
                rejections.append((index, outcome))
                continue
            accepted += 1
            for table_name, row in outcome:
                rows[f"raw.{table_name}"].append(row)
        if rejections:
            rows["ops.rejected"] = [self._rejected_row(request, site_id, r) for _, r in rejections]
        return Accepted(site_id=site_id, rows=dict(rows), accepted=accepted, calls=len(items), rejections=rejections)

    def _one(self, builder: RowBuilder, item: Any) -> list[tuple[str, dict[str, Any]]] | Rejection:
        if not isinstance(item, dict):
            return Rejection(
                reason_code="invalid_event",
                reason=f"event must be a JSON object, got {type(item).__name__}",
                payload=item,
            )
        encoded = orjson.dumps(item)
        if len(encoded) > MAX_EVENT_BYTES:
            return Rejection(
                reason_code="event_too_large",
                reason=f"event is {len(encoded)} bytes; the limit is {MAX_EVENT_BYTES}",
                event_id=_text_or_none(item.get("messageId")),
                payload=item,
            )
        try:
            call = TrackingCall.model_validate(item)
        except ValidationError as exc:
            return Rejection(
                reason_code="invalid_event",
                reason=_validation_reason(exc),
                event_id=_text_or_none(item.get("messageId")),
                payload=item,
            )
        event_id = call.message_id or uuid.uuid4().hex
        try:
            return builder.rows(call, encoded.decode(), event_id)  # encoded once, for the size check and `raw`
        except RowError as exc:
            return Rejection(reason_code="invalid_value", reason=str(exc), event_id=event_id, payload=item)

    def _rejected_row(self, request: CollectRequest, site_id: str | None, rejection: Rejection) -> dict[str, Any]:
        payload = rejection.payload
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else orjson.dumps(payload).decode()
        return {
            "rejected_id": uuid.uuid4().hex,
            "received_at": to_iso(request.received_at),
            "stage": "collect",
            "reason_code": rejection.reason_code,
            "reason": rejection.reason,
            "site_id": site_id,
            "endpoint": request.endpoint,
            "event_id": rejection.event_id,
            **kept_payload(text),
        }


def _text_or_none(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
