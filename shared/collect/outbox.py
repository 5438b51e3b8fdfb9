"""Group commit of concurrent requests' rows into shared Pub/Sub messages.

A single-event request alone makes a message of one event, and every message costs a gzip stream, a protobuf,
the emulator's (or Pub/Sub's) bookkeeping and, downstream, one push to `load` and one insert. Requests of one
site that arrive while an earlier message is being published wait and then go out together, as one message:
batches grow with load, and a lone request is published at once. Each request still answers only after the
message that holds its rows is stored, with that message's id; if it is not stored, every request in it gets
the error (so each client retries its own events, and nothing is half-accepted).

No thread of its own: the first waiting request publishes for the others (it "leads"), and hands the lead to the
next waiting request when its own rows are out."""

from __future__ import annotations

import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.messages import COLUMNS_SCHEMA, CONTENT_ENCODING, encode_message, to_columns

if TYPE_CHECKING:  # the protocol only: the Pub/Sub client stays out of modules that import this one
    from shared.pubsub import Publisher

MAX_MESSAGE_EVENTS = 1000  # rows of all tables in one message: keeps a push to `load` one quick insert
MAX_MESSAGE_BODY_BYTES = 2 * 1024 * 1024  # requests' JSON bodies; the message stays far below Pub/Sub's 10 MB
MAX_LEADERS = 2  # messages being published at once: one is built while the other is in flight


@dataclass(eq=False)
class _Part:
    """One request's rows, waiting for the message that carries them. Its fields change under the outbox's lock."""

    site_id: str | None
    rows: dict[str, list[dict[str, Any]]]
    accepted: int
    body_bytes: int
    wake: threading.Event = field(default_factory=threading.Event)  # set when finished or given the lead
    lead: bool = False
    finished: bool = False
    message_id: str | None = None
    error: Exception | None = None

    @property
    def height(self) -> int:
        return sum(len(table_rows) for table_rows in self.rows.values())


class Outbox:
    """Where a collect instance's requests leave their rows; see the module's doc."""

    def __init__(self, publisher: Publisher, *, max_leaders: int = MAX_LEADERS) -> None:
        self.publisher = publisher
        self._max_leaders = max_leaders
        self._lock = threading.Lock()
        self._queue: deque[_Part] = deque()
        self._leaders = 0

    def send(self, site_id: str | None, rows: dict[str, list[dict[str, Any]]], accepted: int, body_bytes: int) -> str:
        """Publish these rows (with whatever else is waiting) and return the message id once it is stored."""
        part = _Part(site_id, rows, accepted, body_bytes)
        with self._lock:
            self._queue.append(part)
            if self._leaders < self._max_leaders:
                self._leaders += 1
                part.lead = True
        while True:
            with self._lock:
                if part.finished:
                    break
                part.wake.clear()
                taken = self._take() if part.lead and self._queue else []
            if taken:
                self._publish(taken)
            else:  # waiting to be published, or to lead; or, leading, for its rows in another leader's message
                part.wake.wait()
        if part.lead:
            with self._lock:
                # Pass the lead on to the oldest waiting request that does not lead already.
                successor = next((waiting for waiting in self._queue if not waiting.lead), None)
                if successor is None:
                    self._leaders -= 1
                else:
                    successor.lead = True
                    successor.wake.set()
        if part.error is not None:
            raise part.error
        assert part.message_id is not None
        return part.message_id

    def _publish(self, parts: list[_Part]) -> None:
        message_id: str | None = None
        error: Exception | None = None
        try:
            message_id = self.publisher.publish(*_message(parts))
        except Exception as exc:  # every request in the message gets it: none is left waiting
            error = exc
        with self._lock:
            for part in parts:
                part.message_id, part.error, part.finished = message_id, error, True
                part.wake.set()

    def _take(self) -> list[_Part]:
        """The oldest waiting request and those of its site after it, within one message's bounds."""
        if not self._queue:
            return []
        first = self._queue.popleft()
        taken, height, size = [first], first.height, first.body_bytes
        kept: deque[_Part] = deque()
        while self._queue:
            part = self._queue.popleft()
            fits = height + part.height <= MAX_MESSAGE_EVENTS and size + part.body_bytes <= MAX_MESSAGE_BODY_BYTES
            if part.site_id == first.site_id and fits:
                taken.append(part)
                height += part.height
                size += part.body_bytes
            else:
                kept.append(part)
        self._queue = kept
        return taken


def _message(parts: list[_Part]) -> tuple[bytes, dict[str, str]]:
    """One message body and its attributes for these requests' rows (all of one site)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        for name, table_rows in part.rows.items():
            tables.setdefault(name, []).extend(table_rows)
    site_id = parts[0].site_id
    data = encode_message(
        {
            "schema": COLUMNS_SCHEMA,
            "batch_id": uuid.uuid4().hex,
            "site_id": site_id,
            "tables": {name: to_columns(table_rows) for name, table_rows in tables.items()},
        }
    )
    attributes = {
        "schema": COLUMNS_SCHEMA,
        "events": str(sum(part.accepted for part in parts)),
        "rejected": str(len(tables.get("ops.rejected", ()))),
        "requests": str(len(parts)),
        **CONTENT_ENCODING,
        **({"site_id": site_id} if site_id else {}),
    }
    return data, attributes
