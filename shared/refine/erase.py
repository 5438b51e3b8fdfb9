"""Deletion on request: erase a person, found by any one identifier, from the raw and refined tables.

The person is every identifier of the customer the given identifier belongs to (or just that identifier when
refine has not seen it yet). Each is tombstoned in refined.erasures by its SHA-256 (the identifier itself is
not kept), so later events of these ids are never profiled again, and the request is recorded with the number of rows it erased. Re-running a request is safe
(and, on BigQuery, deletes rows that were still in the streaming buffer the first time). Segment and
activation tables are not built yet: when they are, their delete steps belong here."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from shared.refine import pii
from shared.refine.writers import WriterBusy, exclusive_writer
from shared.schema import RAW_TABLES
from shared.warehouse.base import Warehouse

log = logging.getLogger("cdp.refine.erase")

IdentifierType = Literal["anonymous_id", "user_id", "email", "phone", "crm_id"]
_NODE_TYPE = {"anonymous_id": "a", "user_id": "u", "email": "e", "phone": "p", "crm_id": "c"}


class ErasureBusy(WriterBusy):
    """A refine run (whose later steps could write back what the erasure deletes) or another erasure is under way."""


class ErasureRequest(BaseModel):
    # A misspelt field is named, not ignored: a misspelt requested_by would otherwise be recorded as "unknown".
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1)
    identifier_type: IdentifierType
    value: str = Field(min_length=1)
    requested_by: str = "unknown"
    request_id: str | None = Field(None, description="default: derived from site, type and value (idempotent)")

    @field_validator("value")
    @classmethod
    def _findable(cls, value: str, info: ValidationInfo) -> str:
        """Refuse what finds no one, or everyone: a junk id ("undefined", "0", ...) is shared by many people, and
        erasing it would delete their rows; an email / phone that does not standardise was never linked to anyone."""
        if pii.is_junk_identifier(value):
            raise ValueError(f"{value!r} is a junk identifier shared by many people; name the person's own")
        kind = info.data.get("identifier_type")
        if kind in ("email", "phone"):
            standard = (pii.standardise_email if kind == "email" else pii.standardise_phone)(value)
            if not standard.valid:
                raise ValueError(
                    f"{value!r} is not a usable {kind} ({standard.reason}): no person is found by it; "
                    "erase by their user id, CRM id or device instead"
                )
        return value


class ErasureResult(BaseModel):
    request_id: str
    node: str
    identifiers: int
    customer_id: str | None
    rows_erased: int


def describe(exc: ValidationError) -> str:
    """Each bad field of a request by name, with what is wrong: the answer of the HTTP step and the CLI."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: "
        + (str(e["ctx"]["error"]) if e["type"] == "value_error" else e["msg"])
        for e in exc.errors()
    )


def node_of(request: ErasureRequest) -> str:
    value = request.value.strip()
    if request.identifier_type == "email":
        value = pii.standardise_email(value).value or value.lower()
    elif request.identifier_type == "phone":
        value = pii.standardise_phone(value).value or value
    return f"{request.site_id}|{_NODE_TYPE[request.identifier_type]}:{value}"


def _count(rows: list[dict[str, Any]]) -> int:
    if rows and len(rows[0]) == 1:
        value = next(iter(rows[0].values()))
        return int(value) if isinstance(value, int) else 0
    return 0


def erase_person(warehouse: Warehouse, request: ErasureRequest, caller: str | None = None) -> ErasureResult:
    """Raises ErasureBusy while a refine run or another erasure is under way (nothing erased; the request is safe
    to repeat). `caller`: who made the request as the edge authenticated them (never from the request body),
    recorded on the tombstones beside `requested_by`."""
    warehouse.ensure_schema_if_owned()
    node = node_of(request)
    request_id = request.request_id or "erase-" + hashlib.sha256(node.encode()).hexdigest()[:20]
    try:
        with exclusive_writer(warehouse, "erase", f"{request_id}/{uuid.uuid4().hex[:8]}"), warehouse.bulk_writes():
            return _erase(warehouse, request_id, node, request.site_id, request.requested_by, caller)
    except WriterBusy as busy:
        raise ErasureBusy(busy.holder) from None


def _erase(
    warehouse: Warehouse, request_id: str, node: str, site_id: str, requested_by: str, caller: str | None
) -> ErasureResult:
    params = {
        "request_id": request_id,
        "site_id": site_id,
        "erase_node": node,
        "requested_by": requested_by,
        "caller": caller,
    }
    warehouse.query_file("refine/erase_nodes", params)
    try:
        warehouse.query_file("refine/erase_tombstones", params)
        erased = 0
        for table in RAW_TABLES:
            erased += _count(warehouse.query_file("refine/erase_raw", params, names={"table": table}))
        erased += _count(warehouse.query_file("refine/erase_raw_user_pii", params))
        for step in (
            "erase_events",
            "erase_traits",
            "erase_sessions",
            "erase_sessions_device",
            "erase_edges",
            "erase_dropped_links",
            "erase_profiles",
            "erase_pii_values",
            "erase_identity_map",
        ):
            erased += _count(warehouse.query_file(f"refine/{step}", params))
        warehouse.query_file("refine/erase_customers", params)
        warehouse.query_file("refine/erase_record", {**params, "rows_erased": erased})
    finally:
        warehouse.query_file("refine/erase_cleanup")  # the person's ids in clear go, whatever happened
    tombstones = warehouse.query(
        "SELECT node_hash, customer_id FROM refined.erasures WHERE request_id = @request_id",
        {"request_id": request_id},
    )
    customer = next((r["customer_id"] for r in tombstones if r["customer_id"]), None)
    result = ErasureResult(
        request_id=request_id, node=node, identifiers=len(tombstones), customer_id=customer, rows_erased=erased
    )
    log.info("erasure: %s", result.model_dump_json(exclude={"node"}))  # the erased identifier stays out of the logs
    return result
