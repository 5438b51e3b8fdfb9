"""The Pub/Sub adapter: a publisher that answers only once the message is stored, batching concurrent
requests of one instance into one Publish call."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher import client as gapic
from google.pubsub_v1.types import PubsubMessage

MAX_BATCH_MESSAGES = 100
MAX_BATCH_BYTES = 8 * 1024 * 1024  # Pub/Sub takes 10 MB per Publish call


class PublishUnavailable(Exception):
    """Pub/Sub did not take the message in time; the request must fail so that the client retries."""


class Publisher(Protocol):
    def publish(self, data: bytes, attributes: dict[str, str]) -> str:
        """Store one message and return its id, or raise PublishUnavailable."""
        ...


@dataclass(eq=False)
class _Pending:
    message: PubsubMessage
    size: int
    done: threading.Event = field(default_factory=threading.Event)
    message_id: str | None = None
    error: Exception | None = None


class PubSubPublisher:
    """Group commit: each request queues its message and waits; a sender thread lingers a moment, then
    publishes everything queued as one Publish call, and whatever arrives meanwhile goes in the next. Batches
    grow with load; each Publish call costs far more CPU (client and server) than a message in it. The caller
    waits before answering, because an instance gets no CPU after its response (engineering note 11).

    The batching client of google-cloud-pubsub does the same with a latency timer, a thread per batch and a
    future per message, which cost more CPU per message than the request itself (see bench/)."""

    def __init__(
        self,
        project: str,
        topic: str,
        *,
        timeout_seconds: float = 10.0,
        senders: int = 2,
        linger_seconds: float = 0.002,
    ) -> None:
        self.topic_path = pubsub_v1.PublisherClient.topic_path(project, topic)
        self._timeout = timeout_seconds
        self._queue: deque[_Pending] = deque()
        self._wakeup = threading.Condition()
        self._client: pubsub_v1.PublisherClient | None = None
        self._senders = senders
        self._linger = linger_seconds
        self._pid: int | None = None

    def _ensure_sender(self) -> None:
        # gRPC channels and threads do not survive fork (gunicorn forks workers): one of each per process.
        if self._pid != os.getpid():
            self._client = pubsub_v1.PublisherClient()  # honours PUBSUB_EMULATOR_HOST
            self._queue.clear()
            self._pid = os.getpid()
            for n in range(self._senders):  # a few calls in flight: one round trip no longer paces everything
                threading.Thread(target=self._send_forever, name=f"pubsub-sender-{n}", daemon=True).start()

    def publish(self, data: bytes, attributes: dict[str, str]) -> str:
        pending = _Pending(PubsubMessage(data=data, attributes=attributes), len(data))
        with self._wakeup:
            self._ensure_sender()
            self._queue.append(pending)
            self._wakeup.notify()
        if not pending.done.wait(self._timeout + 1):
            raise PublishUnavailable(f"Pub/Sub did not answer within {self._timeout}s")
        if pending.error is not None:
            raise PublishUnavailable(f"Pub/Sub did not accept the message: {pending.error}") from pending.error
        assert pending.message_id is not None
        return pending.message_id

    def _next_batch(self) -> list[_Pending]:
        with self._wakeup:
            while not self._queue:
                self._wakeup.wait()
        if self._linger:
            time.sleep(self._linger)  # let concurrent requests join: fewer, larger Publish calls
        with self._wakeup:
            batch, size = [], 0
            while (
                self._queue
                and len(batch) < MAX_BATCH_MESSAGES
                and (not batch or size + self._queue[0].size <= MAX_BATCH_BYTES)
            ):
                item = self._queue.popleft()
                batch.append(item)
                size += item.size
            return batch

    def _send_forever(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:  # another sender took them while this one lingered
                continue
            deadline = time.monotonic() + self._timeout
            try:
                # The GAPIC call itself (with its retries on UNAVAILABLE), not the batching wrapper's.
                response = gapic.PublisherClient.publish(
                    self._client,
                    topic=self.topic_path,
                    messages=[p.message for p in batch],
                    timeout=max(deadline - time.monotonic(), 0.1),
                )
                for pending, message_id in zip(batch, response.message_ids, strict=True):
                    pending.message_id = message_id
            except (api_exceptions.GoogleAPIError, OSError, ValueError) as exc:
                for pending in batch:
                    pending.error = exc
            for pending in batch:
                pending.done.set()
