"""erase (HTTP, marketers): deletion on request (GDPR, Korean PIPA) of one person, found by any one identifier.

POST a JSON ErasureRequest: {"site_id", "identifier_type": anonymous_id | user_id | email | phone | crm_id,
"value", "requested_by", "request_id" (optional; default derived from the identifier, so a repeat is the same
request)}. The person's rows go from the raw and refined tables and each of their ids is tombstoned
(shared/refine/erase.py, docs/refine.md). Locally: `cdp erase`, or POST to the stack's erase URL."""

from __future__ import annotations

import json
import logging
import threading
from functools import lru_cache
from typing import Any

import functions_framework
from flask import Request
from pydantic import Field, ValidationError, field_validator

from shared.callers import authenticated_caller
from shared.logs import configure_logging, log_outcome
from shared.refine.erase import ErasureBusy, ErasureRequest, ErasureResult, describe, erase_person
from shared.warehouse import Warehouse, WarehouseUnavailable, open_warehouse

configure_logging()
log = logging.getLogger("cdp.erase")
RETRY_AFTER_SECONDS = 300

# The cloud runs one request per instance and one instance (function.json); functions-framework serves threads
# locally, so the same rule is kept here: two erasures never interleave their deletes.
_one_at_a_time = threading.Lock()


class ErasureCall(ErasureRequest):
    """The HTTP body. Who asked is required here: the tombstone is the record that the request was honoured."""

    requested_by: str = Field(description="who asked (a person, a ticket)")

    @field_validator("requested_by")
    @classmethod
    def _someone(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is blank: say who asked (a person, a ticket); it is recorded with the tombstones")
        return value.strip()


@lru_cache(maxsize=1)
def _warehouse() -> Warehouse:
    return open_warehouse()


def handle(body: object, warehouse: Warehouse | None = None, caller: str | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer). 400: a bad request (named); 409: a refine run is under way; 503: the warehouse
    is unavailable (BigQuery failing transiently, the DuckDB file held). Both of the latter are safe to retry.
    `caller`: the authenticated principal, recorded on the tombstones beside the body's `requested_by`."""
    if not isinstance(body, dict):
        return 400, {"error": "the body is not a JSON object: POST an erasure request", "detail": []}
    try:
        request = ErasureCall.model_validate(body)
    except ValidationError as exc:
        return 400, {
            "error": f"invalid erasure request: {describe(exc)}",
            "detail": json.loads(exc.json(include_url=False)),
        }
    try:
        with _one_at_a_time:
            result: ErasureResult = erase_person(warehouse or _warehouse(), request, caller)
    except ErasureBusy as exc:
        return 409, {"error": str(exc)}
    except WarehouseUnavailable as exc:
        return 503, {"error": str(exc)}
    return 200, result.model_dump(mode="json")


@functions_framework.http
def erase(request: Request) -> tuple[dict[str, Any], int, dict[str, str]]:
    if request.method != "POST":
        return {"error": f"{request.method} is not allowed: POST an erasure request"}, 405, {"Allow": "POST"}
    # force: a plain `curl -d` sends form encoding; the body is JSON whatever the header says.
    caller = authenticated_caller(request.headers)
    status, answer = handle(request.get_json(force=True, silent=True), caller=caller)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status in (409, 503) else {}
    # The answer names the identifier; the log keeps only what the request did, not whom it was about.
    outcome = {k: answer[k] for k in ("request_id", "identifiers", "customer_id", "rows_erased") if k in answer}
    if status == 400:
        outcome = {"fields": [".".join(str(p) for p in e["loc"]) for e in answer["detail"]]}
    log_outcome(
        log,
        "erase",
        status,
        f"erase: HTTP {status}",
        caller=caller,
        outcome=outcome if status in (200, 400) else answer,
    )
    return answer, status, headers
