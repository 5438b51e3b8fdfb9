"""The Pub/Sub adapter: a batching publisher that answers only once the message is stored."""

from __future__ import annotations

import os
import threading
from typing import Protocol

from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1


class PublishUnavailable(Exception):
    """Pub/Sub did not take the message in time; the request must fail so that the client retries."""


class Publisher(Protocol):
    def publish(self, data: bytes, attributes: dict[str, str]) -> str:
        """Store one message and return its id, or raise PublishUnavailable."""
        ...


class PubSubPublisher:
    """google-cloud-pubsub with batching: concurrent requests on one instance share batches, and each
    request waits on its own future before answering (an instance gets no CPU after the response)."""

    def __init__(self, project: str, topic: str, *, timeout_seconds: float = 10.0, max_latency: float = 0.005) -> None:
        self.topic_path = pubsub_v1.PublisherClient.topic_path(project, topic)
        self._timeout = timeout_seconds
        self._batch = pubsub_v1.types.BatchSettings(
            max_messages=100, max_bytes=8 * 1024 * 1024, max_latency=max_latency
        )
        self._client: pubsub_v1.PublisherClient | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _publisher(self) -> pubsub_v1.PublisherClient:
        # gRPC channels do not survive fork (gunicorn forks workers): one client per process.
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = pubsub_v1.PublisherClient(batch_settings=self._batch)
                self._pid = os.getpid()
            return self._client

    def publish(self, data: bytes, attributes: dict[str, str]) -> str:
        future = self._publisher().publish(self.topic_path, data, timeout=self._timeout, **attributes)
        try:
            return future.result(timeout=self._timeout)
        except (TimeoutError, api_exceptions.GoogleAPIError, OSError) as exc:
            raise PublishUnavailable(f"Pub/Sub did not accept the message: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.stop()  # sends what is batched, then stops
            self._client = None
