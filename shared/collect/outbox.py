"""Group commit of concurrent requests' rows into shared Pub/Sub messages.

A single-event request alone makes a message of one event, and every message costs a protobuf, the emulator's (or
Pub/Sub's) bookkeeping and, downstream, one push to `load` and one insert. Requests that arrive while an earlier
Publish call is in flight wait, then go out together in the next call: one message per site (sites never share a
message, nor wait for one another's). Batches grow with load, and a lone request is published at once. While
requests come concurrently (a call carried several lately), the sender first lingers a few milliseconds so that
those arriving join its call: fewer, larger calls cost less CPU per event here, in Pub/Sub and in `load`. Each
request still answers only after the message that holds its rows is stored, with that message's id; if the call
fails, every request in it gets the error (so each client retries its own events, and nothing is half-accepted).

Collect serves its requests on one asyncio event loop a process (functions-framework's ASGI mode): a request
awaits its rows' message, and one task a process, the sender, makes the Publish calls one at a time. Each call, and
the building of its messages, runs on the outbox's one publishing thread: the Pub/Sub client blocks, and the event
loop goes on reading and validating the next requests meanwhile (compression and gRPC leave the interpreter's lock)."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.messages import (
    ARROW_FROM_ROWS,
    ARROW_SCHEMA,
    COLUMNS_SCHEMA,
    CONTENT_ENCODING,
    encode_arrow_message,
    encode_message,
    is_compressed,
    to_columns,
)

if TYPE_CHECKING:  # the protocol only: the Pub/Sub client stays out of modules that import this one
    from shared.pubsub import Message, Publisher

# Rows of all tables in one Publish call, so in any message. Each push to `load` has a fixed cost (a statement a
# table and a commit, about 10 ms in DuckDB): messages of 5,000 rows load about 1.5x faster than of 1,000
# (README, Benchmarks, session 8), and stay far below Pub/Sub's 10 MB (about 100 KB as Arrow for 5,000 page rows).
# Only requests that queue behind a Publish call share one: a message grows this large under load alone.
MAX_CALL_ROWS = 5000
MAX_CALL_BODY_BYTES = 2 * 1024 * 1024  # requests' JSON bodies; the call stays far below Pub/Sub's 10 MB
LINGER_SECONDS = 0.005  # the sender's wait for concurrent requests to join its message, when they came lately
SHARED_LATELY_SECONDS = 1.0  # a message carried several requests this recently: worth lingering for the next


@dataclass(eq=False)
class _Part:
    """One request's rows, waiting for the message that carries them."""

    site_id: str | None
    rows: dict[str, list[dict[str, Any]]]
    accepted: int
    body_bytes: int
    stored: asyncio.Future[str] = field(repr=False)  # the message id, or the call's error

    @property
    def height(self) -> int:
        return sum(len(table_rows) for table_rows in self.rows.values())


class Outbox:
    """Where a collect instance's requests leave their rows; see the module's doc."""

    def __init__(self, publisher: Publisher, *, linger_seconds: float = LINGER_SECONDS) -> None:
        self.publisher = publisher
        self._linger = linger_seconds
        self._queue: deque[_Part] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._shared_until = 0.0  # monotonic time until which lingering pays (requests came concurrently)
        self._thread: ThreadPoolExecutor | None = None
        self._thread_pid: int | None = None

    async def send(
        self, site_id: str | None, rows: dict[str, list[dict[str, Any]]], accepted: int, body_bytes: int
    ) -> str:
        """Publish these rows (with whatever else is waiting) and return the message id once it is stored."""
        part = _Part(site_id, rows, accepted, body_bytes, asyncio.get_running_loop().create_future())
        self._queue.append(part)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting(), name="outbox-sender")
        # A request cancelled meanwhile (its client went away) cancels its future; its rows still go out (_take
        # does not look), and the sender sets only futures not done.
        return await part.stored

    async def _send_waiting(self) -> None:
        """Publish what waits, a call at a time, until nothing does."""
        loop = asyncio.get_running_loop()
        taken: list[_Part] = []
        try:
            while self._queue:
                if self._linger and time.monotonic() < self._shared_until:
                    await asyncio.sleep(self._linger)  # requests are coming concurrently: let those arriving join
                taken = self._take()
                try:
                    sites, message_ids = await loop.run_in_executor(self._publishing_thread(), self._publish, taken)
                except Exception as exc:  # every request in the call gets it: none is left waiting
                    for part in taken:
                        _fail(part, exc)
                    continue
                for site_parts, message_id in zip(sites, message_ids, strict=True):
                    for part in site_parts:
                        if not part.stored.done():
                            part.stored.set_result(message_id)
        except BaseException:  # cancelled with its event loop: no request may wait forever
            for part in [*taken, *self._queue]:
                _fail(part, RuntimeError("collect stopped before these rows were published"))
            self._queue.clear()
            raise
        finally:
            self._sender = None

    def _publishing_thread(self) -> ThreadPoolExecutor:
        # Threads do not survive fork (gunicorn forks its workers): one a process.
        if self._thread is None or self._thread_pid != os.getpid():
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="outbox-publish")
            self._thread_pid = os.getpid()
        return self._thread

    def _publish(self, parts: list[_Part]) -> tuple[list[list[_Part]], list[str]]:
        """On the publishing thread: one message per site of these requests, in one Publish call."""
        by_site: dict[str | None, list[_Part]] = {}
        for part in parts:
            by_site.setdefault(part.site_id, []).append(part)
        sites = list(by_site.values())
        messages = [
            message_of(site_parts[0].site_id, [(p.rows, p.accepted) for p in site_parts]) for site_parts in sites
        ]
        answered = list(self.publisher.publish(messages))
        if len(answered) != len(sites):
            raise RuntimeError(f"the publisher answered {len(answered)} ids for {len(sites)} messages")
        return sites, answered

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


def _fail(part: _Part, error: Exception) -> None:
    if not part.stored.done():  # a request's answer is set once: the first outcome stands
        part.stored.set_exception(error)


def message_of(site_id: str | None, requests: list[tuple[dict[str, list[dict[str, Any]]], int]]) -> Message:
    """The message that one Publish call makes of these requests' (rows, accepted events), all of one site. Public
    for tools that need what collect publishes under load without the waiting (the load benchmark)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for rows, _ in requests:
        for name, table_rows in rows.items():
            tables.setdefault(name, []).extend(table_rows)
    batch_id = os.urandom(16).hex()  # as unique as a uuid4, without building one
    data = None
    if sum(len(table_rows) for table_rows in tables.values()) >= ARROW_FROM_ROWS:
        data = encode_arrow_message(batch_id, site_id, tables)
    schema = ARROW_SCHEMA if data is not None else COLUMNS_SCHEMA
    if data is None:
        columns = {name: to_columns(table_rows) for name, table_rows in tables.items()}
        data = encode_message({"schema": schema, "batch_id": batch_id, "site_id": site_id, "tables": columns})
    attributes = {
        "schema": schema,
        # Also outside the body: a dead letter published again is a new message with the same batch (load's
        # ledger key), and whoever waits for the batch (the local stack's drain) can tell without decoding it.
        "batch_id": batch_id,
        "events": str(sum(accepted for _, accepted in requests)),
        "rejected": str(len(tables.get("ops.rejected", ()))),
        "requests": str(len(requests)),
        **(CONTENT_ENCODING if is_compressed(data) else {}),
        **({"site_id": site_id} if site_id else {}),
    }
    return data, attributes
