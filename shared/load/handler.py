"""The load function's edge: a Pub/Sub push (as a CloudEvent) in, the load service called once."""

from __future__ import annotations

import base64
import time
from datetime import datetime
from functools import lru_cache
from typing import Any

from shared.load.service import LoadOutcome, LoadService
from shared.logs import emit
from shared.settings import platform_settings
from shared.warehouse import open_warehouse


@lru_cache(maxsize=1)
def default_service() -> LoadService:
    settings = platform_settings()
    return LoadService(open_warehouse(settings, threads=settings.duckdb_load_threads))


def _published_at(message: dict[str, Any]) -> datetime | None:
    text = message.get("publishTime") or message.get("publish_time")
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def handle(event_id: str, data: dict[str, Any], service: LoadService | None = None) -> LoadOutcome:
    """`data` is the CloudEvent's data: {"message": {data, messageId, publishTime, attributes}, "subscription"}.
    Raising makes Pub/Sub redeliver, so only transient failures raise."""
    service = service or default_service()
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        message = {}
    message_id = str(message.get("messageId") or message.get("message_id") or event_id)
    try:
        payload = base64.b64decode(message.get("data") or "", validate=False)
    except ValueError:
        payload = str(message.get("data")).encode()
    started = time.perf_counter()
    outcome = service.handle(message_id, payload, _published_at(message))
    # Written only once the rows are committed: the local stack's drain reads these lines.
    emit("INFO", "loaded", step="load", seconds=round(time.perf_counter() - started, 4), **outcome.model_dump())
    return outcome
