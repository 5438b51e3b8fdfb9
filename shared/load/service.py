"""Loading logic: one Pub/Sub message of rows -> the warehouse. Transient failures raise (Pub/Sub retries);
permanent ones become rejected rows, so that nothing is retried forever and nothing is lost."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from shared.messages import (
    ARROW_SCHEMA,
    COLUMNS_SCHEMA,
    GZIP_MAGIC,
    ROWS_SCHEMA,
    MessageDecodeError,
    column_height,
    decode_arrow_message,
    decode_message,
    is_arrow,
    kept_payload,
)
from shared.schema import all_tables
from shared.timeutil import iso_now
from shared.warehouse import BadRows, LoadBatch, Warehouse

log = logging.getLogger("cdp.load")


class LoadOutcome(BaseModel):
    message_id: str = Field(description="the Pub/Sub message id")
    batch_id: str = Field(description="the ledger key: collect's batch id, else the message id")
    written: bool
    rows: int
    rejected: int


class PermanentMessageError(ValueError):
    """The message can never load as it is (not JSON, unknown schema or table)."""


def _rejected(
    message_id: str, key: str, code: str, reason: str, payload: Any, site_id: str | None, event_id: str | None = None
) -> dict[str, Any]:
    text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return {
        # Derived from the message, so that a redelivery names the same record.
        "rejected_id": hashlib.sha256(f"{message_id}/{key}".encode()).hexdigest()[:32],
        "received_at": iso_now(),
        "stage": "load",
        "reason_code": code,
        "reason": reason,
        "site_id": site_id,
        "endpoint": None,
        "event_id": event_id,
        **kept_payload(text),
    }


def _columns_of(tables: Any) -> dict[str, dict[str, list[Any]]]:
    """A raw-columns message's tables, checked for shape: each table an object of equal-length lists."""
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise PermanentMessageError("message tables must map table names to objects of columns")
    for name, columns in tables.items():
        if not all(isinstance(values, list) for values in columns.values()):
            raise PermanentMessageError(f"message table {name!r}: every column must be a list of values")
        try:
            column_height(columns)
        except ValueError as exc:
            raise PermanentMessageError(f"message table {name!r}: {exc}") from None
    return tables


def parse_message(message_id: str, data: bytes, published_at: datetime | None) -> LoadBatch:
    if is_arrow(data):
        return _parse_arrow(message_id, data, published_at)
    try:
        document = orjson.loads(decode_message(data))
    except MessageDecodeError as exc:
        raise PermanentMessageError(str(exc)) from None
    except orjson.JSONDecodeError as exc:
        raise PermanentMessageError(f"message is not JSON: {exc}") from None
    schema = document.get("schema") if isinstance(document, dict) else None
    rows: dict[str, list[Any]] = {}
    columns: dict[str, dict[str, list[Any]]] = {}
    if schema == COLUMNS_SCHEMA:  # what collect publishes
        columns = _columns_of(document.get("tables"))
    elif schema == ROWS_SCHEMA:  # what older collects published, and hand-published messages
        rows = document.get("rows")
        if not isinstance(rows, dict) or not all(isinstance(v, list) for v in rows.values()):
            raise PermanentMessageError("message rows must map table names to lists of rows")
    else:
        found = schema if isinstance(document, dict) else type(document).__name__
        raise PermanentMessageError(f"message schema is {found!r}, expected {COLUMNS_SCHEMA!r} or {ROWS_SCHEMA!r}")
    _known_tables({*rows, *columns})
    # Rows are checked against their tables by the warehouse, column by column: no second, slower pass here.
    return LoadBatch.model_construct(
        message_id=_ledger_id(document.get("batch_id"), message_id),
        published_at=published_at,
        site_id=document.get("site_id"),
        rows=rows,
        columns=columns,
        arrow={},
    )


def _parse_arrow(message_id: str, data: bytes, published_at: datetime | None) -> LoadBatch:
    try:
        header, tables = decode_arrow_message(data)
    except MessageDecodeError as exc:
        raise PermanentMessageError(str(exc)) from None
    if header.get("schema") != ARROW_SCHEMA:
        raise PermanentMessageError(f"Arrow message schema is {header.get('schema')!r}, expected {ARROW_SCHEMA!r}")
    _known_tables(set(tables))
    site_id = header.get("site_id")
    return LoadBatch.model_construct(
        message_id=_ledger_id(header.get("batch_id"), message_id),
        published_at=published_at,
        site_id=site_id if isinstance(site_id, str) else None,
        rows={},
        columns={},
        arrow=tables,
    )


def _known_tables(names: set[str]) -> None:
    unknown = sorted(names - set(all_tables()))
    if unknown:
        raise PermanentMessageError(f"message names unknown table(s) {unknown}")


def _ledger_id(batch_id: Any, message_id: str) -> str:
    """The ledger key: collect's own batch id, unique for good, where Pub/Sub ids from an emulator restart repeat;
    a redelivery carries the same body and so the same id."""
    return batch_id if isinstance(batch_id, str) and batch_id else message_id


class LoadService:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def handle(self, message_id: str, data: bytes, published_at: datetime | None = None) -> LoadOutcome:
        with self.warehouse.incoming():  # a concurrent message's commit may wait for this one and take it along
            return self._handle(message_id, data, published_at)

    def _handle(self, message_id: str, data: bytes, published_at: datetime | None) -> LoadOutcome:
        try:
            batch = parse_message(message_id, data, published_at)
        except PermanentMessageError as exc:
            log.error("load: message %s rejected: %s", message_id, exc)
            # kept as it came: text, or base64 of a body that is not text (a broken gzip)
            text = (
                data.decode("utf-8", "replace") if not data.startswith(GZIP_MAGIC) else base64.b64encode(data).decode()
            )
            batch = LoadBatch(
                message_id=message_id,
                published_at=published_at,
                rows={"ops.rejected": [_rejected(message_id, "message", "bad_message", str(exc), text, None)]},
            )
        for _ in range(len(batch.tables) + 1):
            try:
                written = self.warehouse.write_batch(batch)
                return LoadOutcome(
                    message_id=message_id,
                    batch_id=batch.message_id,
                    written=written,
                    rows=batch.row_count,
                    rejected=batch.rejected_count,
                )
            except BadRows as bad:
                batch = _move_to_rejected(batch, bad)
        raise RuntimeError(f"message {message_id}: bad rows kept reappearing")  # pragma: no cover


def _move_to_rejected(batch: LoadBatch, bad: BadRows) -> LoadBatch:
    """Rows that do not fit their table move to ops.rejected with the reason; the rest loads."""
    if bad.table == "ops.rejected":
        raise bad  # our own records must fit: a bug to see, not data to hide
    batch = batch.as_rows()  # rare: row by row from here (BadRows numbers rows in the order either form has)
    kept = batch.rows[bad.table]
    moved = [
        _rejected(
            batch.message_id,
            f"{bad.table}/{i}",
            "row_does_not_fit",
            reason,
            kept[i],
            batch.site_id,
            kept[i].get("event_id") if isinstance(kept[i], dict) else None,
        )
        for i, reason in bad.bad.items()
    ]
    rows = {**batch.rows, bad.table: [r for i, r in enumerate(kept) if i not in bad.bad]}
    rows["ops.rejected"] = [*rows.get("ops.rejected", []), *moved]
    return batch.model_copy(update={"rows": rows})
