"""refine (scheduled): raw events of a period into one clean, current profile per customer.

Cloud Scheduler (locally: the stack's scheduler, or `cdp run refine`) POSTs the JSON body of function.json's
schedule: a RefineRequest (mode rolling / range / full / incremental, ...). `refine_event` takes the same
request as a Pub/Sub message (CloudEvent) for deployments that route the schedule through a topic. A GET answers
the refined tables' freshness (refine_status), 503 while the profiles are stale, and never starts a run."""

from __future__ import annotations

import base64
import json
import logging
from functools import lru_cache
from typing import Any

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request
from pydantic import ValidationError

from shared.logs import configure_logging, log_outcome
from shared.refine.service import RefineBusy, RefineFailed, RefineRequest, RefineRun, refine_status, run_refine
from shared.warehouse import Warehouse, WarehouseUnavailable, open_warehouse

configure_logging()
log = logging.getLogger("cdp.refine")

# A run takes minutes; a scheduler or person told 409 or 503 tries again after a couple.
RETRY_AFTER_SECONDS = 120


@lru_cache(maxsize=1)
def _warehouse() -> Warehouse:
    return open_warehouse()


def handle(body: object, warehouse: Warehouse | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer). 400: a bad request (not retried); 409: another run or an erasure is under way;
    503: the warehouse is unavailable before the run began (BigQuery failing transiently, the DuckDB file held);
    500: the run failed (recorded in refined.runs; the scheduler's retry re-runs it, which is safe)."""
    if not isinstance(body, dict):
        return 400, {"error": "the body is not a JSON object: send a refine request, or nothing for the default run"}
    try:
        request = RefineRequest.model_validate({"trigger": "scheduler", **body})
    except ValidationError as exc:
        return 400, {"error": "invalid refine request", "detail": json.loads(exc.json())}
    try:
        run: RefineRun = run_refine(warehouse or _warehouse(), request)
    except RefineBusy as exc:
        return 409, {"error": str(exc)}
    except WarehouseUnavailable as exc:
        return 503, {"error": f"the warehouse is unavailable: {exc}"}
    except RefineFailed as exc:
        return 500, exc.run.model_dump(mode="json")
    return 200, run.model_dump(mode="json")


def freshness() -> tuple[int, dict[str, Any]]:
    """GET: the refined tables' freshness; 503 while stale, so that an uptime check alerts on stale profiles."""
    try:
        fresh = refine_status(_warehouse())
    except WarehouseUnavailable as exc:
        return 503, {"error": f"the warehouse is unavailable: {exc}"}
    return (503 if fresh.stale else 200), fresh.model_dump(mode="json")


@functions_framework.http
def refine(request: Request) -> tuple[dict[str, Any], int, dict[str, str]]:
    if request.method == "GET":  # never a run: a probe or a browser must not start one
        code, answer = freshness()
        return answer, code, {}
    if request.method != "POST":
        return (
            {"error": f"{request.method} is not allowed: POST a refine request, GET the status"},
            405,
            {"Allow": "GET, POST"},
        )
    # No body: the default run. A body that is not a JSON object is refused, never taken for the default.
    body = request.get_json(force=True, silent=True) if request.get_data() else {}
    status, answer = handle(body)
    log_outcome(log, "refine", status, f"refine: HTTP {status} {json.dumps(answer, default=str)[:2000]}")
    return answer, status, {"Retry-After": str(RETRY_AFTER_SECONDS)} if status in (409, 503) else {}


@functions_framework.cloud_event
def refine_event(event: CloudEvent) -> None:
    """A Pub/Sub message whose data is the request's JSON. Never raises: a failed run is recorded and the
    next scheduled run covers the period again (retrying a whole refine on redelivery gains nothing)."""
    message = (event.data or {}).get("message", {}) if isinstance(event.data, dict) else {}
    try:
        body: object = json.loads(base64.b64decode(message.get("data") or b"") or b"{}")
    except (ValueError, TypeError):
        body = None  # refused below, and logged: a message that is not a request starts no run
    status, answer = handle(body)
    answer_text = json.dumps(answer, default=str)[:2000]
    log_outcome(log, "refine", status, f"refine (pubsub {event['id']}): {status} {answer_text}", error=status >= 400)
