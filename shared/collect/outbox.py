"""Group commit of concurrent requests' rows into shared Pub/Sub messages.

A single-event request alone makes a message of one event, and every message costs a protobuf, the emulator's (or
Pub/Sub's) bookkeeping and, downstream, one push to `load` and one insert. Requests that arrive while an earlier
Publish call is in flight wait, then go out together in the next call: one message per site (sites never share a
message, nor wait for one another's). Batches grow with load, and a lone request is published at once. While
requests come concurrently (a call carried several lately), the leader first lingers a few milliseconds so that
those arriving join its call: fewer, larger calls cost less CPU per event here, in Pub/Sub and in `load`. Each
request still answers only after the message that holds its rows is stored, with that message's id; if the call
fails, every request in it gets the error (so each client retries its own events, and nothing is half-accepted).

No thread of its own: the first waiting request publishes for the others (it "leads"), and hands the lead to the
next waiting request when its own rows are out."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.messages import COLUMNS_SCHEMA, CONTENT_ENCODING, encode_message, is_compressed, to_columns

if TYPE_CHECKING:  # the protocol only: the Pub/Sub client stays out of modules that import this one
    from shared.pubsub import Message, Publisher

# Rows of all tables in one Publish call, so in any message. Each push to `load` has a fixed cost (a statement a
# table and a commit, about 10 ms in DuckDB): messages of 5,000 rows load about 1.5x faster than of 1,000
# (README, Benchmarks, session 8), and stay far below Pub/Sub's 10 MB (about 110 KB of gzip for 5,000 page rows).
# Only requests that queue behind a Publish call share one: a message grows this large under load alone.
MAX_CALL_ROWS = 5000
MAX_CALL_BODY_BYTES = 2 * 1024 * 1024  # requests' JSON bodies; the call stays far below Pub/Sub's 10 MB
MAX_LEADERS = 1  # Publish calls in flight at once: with two, each carries fewer requests, for more CPU in all
LINGER_SECONDS = 0.005  # a leader's wait for concurrent requests to join its message, when they came lately
SHARED_LATELY_SECONDS = 1.0  # a message carried several requests this recently: worth lingering for the next


@dataclass(eq=False)
class _Part:
    """One request's rows, waiting for the message that carries them. Its fields change under the outbox's lock."""

    site_id: str | None
    rows: dict[str, list[dict[str, Any]]]
    accepted: int
    body_bytes: int
    wake: _Wakeup | None = None  # signalled when finished or given the lead; made only by a request that waits
    lead: bool = False
    finished: bool = False
    message_id: str | None = None
    error: Exception | None = None

    @property
    def height(self) -> int:
        return sum(len(table_rows) for table_rows in self.rows.values())


class Outbox:
    """Where a collect instance's requests leave their rows; see the module's doc."""

    def __init__(
        self, publisher: Publisher, *, max_leaders: int = MAX_LEADERS, linger_seconds: float = LINGER_SECONDS
    ) -> None:
        self.publisher = publisher
        self._max_leaders = max_leaders
        self._linger = linger_seconds
        self._lock = threading.Lock()
        self._queue: deque[_Part] = deque()
        self._leaders = 0
        self._shared_until = 0.0  # monotonic time until which lingering pays (requests came concurrently)

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
                leading = part.lead and bool(self._queue)
                wake = None
                if not leading:
                    wake = part.wake = part.wake or _Wakeup()
                    wake.arm()
                linger = self._linger if leading and time.monotonic() < self._shared_until else 0.0
            if wake is not None:  # waiting to be published, or to lead; or, leading, for its rows in another's message
                wake.wait()
                continue
            if linger:  # requests are coming concurrently: let those arriving now join this message
                time.sleep(linger)
            with self._lock:
                taken = self._take()
            if taken:
                self._publish(taken)
        if part.lead:
            with self._lock:
                # Pass the lead on to the oldest waiting request that does not lead already.
                successor = next((waiting for waiting in self._queue if not waiting.lead), None)
                if successor is None:
                    self._leaders -= 1
                else:
                    successor.lead = True
                    _wake(successor)
        if part.error is not None:
            raise part.error
        assert part.message_id is not None
        return part.message_id

    def _publish(self, parts: list[_Part]) -> None:
        by_site: dict[str | None, list[_Part]] = {}
        for part in parts:
            by_site.setdefault(part.site_id, []).append(part)
        sites = list(by_site.values())  # one message each
        message_ids: list[str | None] = [None] * len(sites)
        error: Exception | None = None
        try:
            answered = list(self.publisher.publish([_message(site_parts) for site_parts in sites]))
            if len(answered) != len(sites):
                raise RuntimeError(f"the publisher answered {len(answered)} ids for {len(sites)} messages")
            message_ids = [*answered]
        except Exception as exc:  # every request in the call gets it: none is left waiting
            error = exc
        with self._lock:
            for site_parts, message_id in zip(sites, message_ids, strict=True):
                for part in site_parts:
                    part.message_id, part.error, part.finished = message_id, error, True
                    _wake(part)

    def _take(self) -> list[_Part]:
        """The waiting requests, oldest first, within one Publish call's bounds (the oldest always)."""
        taken: list[_Part] = []
        height = size = 0
        kept: deque[_Part] = deque()
        while self._queue:
            part = self._queue.popleft()
            fits = height + part.height <= MAX_CALL_ROWS and size + part.body_bytes <= MAX_CALL_BODY_BYTES
            if fits or not taken:
                taken.append(part)
                height += part.height
                size += part.body_bytes
            else:
                kept.append(part)
        self._queue = kept
        if len(taken) > 1:
            self._shared_until = time.monotonic() + SHARED_LATELY_SECONDS
        return taken


class _Wakeup:
    """One request's wake-up: a lock the request holds until another thread signals it. `arm` and `signal` run
    under the outbox's lock, `wait` outside it. Cheaper than a threading.Event, whose every wait builds a
    Condition's lock: under load, 80-110 µs of CPU less per single-event request (README, Benchmarks)."""

    __slots__ = ("_lock", "_signalled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._signalled = False  # never False while the lock is free, so that `signal` never releases it twice

    def arm(self) -> None:
        """Before a wait: a signal from now on ends it (an earlier one, unwaited, is dropped)."""
        self._lock.acquire(blocking=False)
        self._signalled = False

    def signal(self) -> None:
        if not self._signalled:
            self._signalled = True
            self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()  # held again afterwards: the next wait blocks until the next signal


def _wake(part: _Part) -> None:
    if part.wake is not None:
        part.wake.signal()


def message_of(site_id: str | None, requests: list[tuple[dict[str, list[dict[str, Any]]], int]]) -> Message:
    """The message that one Publish call makes of these requests' (rows, accepted events), all of one site, without
    the waiting: for tools that need what collect publishes under load (the load benchmark)."""
    return _message([_Part(site_id, rows, accepted, 0) for rows, accepted in requests])


def _message(parts: list[_Part]) -> Message:
    """One message body and its attributes for these requests' rows (all of one site)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        for name, table_rows in part.rows.items():
            tables.setdefault(name, []).extend(table_rows)
    site_id = parts[0].site_id
    batch_id = os.urandom(16).hex()  # as unique as a uuid4, without building one
    data = encode_message(
        {
            "schema": COLUMNS_SCHEMA,
            "batch_id": batch_id,
            "site_id": site_id,
            "tables": {name: to_columns(table_rows) for name, table_rows in tables.items()},
        }
    )
    attributes = {
        "schema": COLUMNS_SCHEMA,
        # Also outside the body: a dead letter published again is a new message with the same batch (load's
        # ledger key), and whoever waits for the batch (the local stack's drain) can tell without decoding it.
        "batch_id": batch_id,
        "events": str(sum(part.accepted for part in parts)),
        "rejected": str(len(tables.get("ops.rejected", ()))),
        "requests": str(len(parts)),
        **(CONTENT_ENCODING if is_compressed(data) else {}),
        **({"site_id": site_id} if site_id else {}),
    }
    return data, attributes
