"""The Pub/Sub adapter: a publisher that answers only once the message is stored."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Protocol

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher import client as gapic
from google.pubsub_v1.types import PubsubMessage

# What the GAPIC default retries, but within our timeout: its own deadline is 600 s, and a request waits on it.
_RETRYABLE = api_retry.if_exception_type(
    api_exceptions.Aborted,
    api_exceptions.Cancelled,
    api_exceptions.DeadlineExceeded,
    api_exceptions.InternalServerError,
    api_exceptions.ResourceExhausted,
    api_exceptions.ServiceUnavailable,
    api_exceptions.Unknown,
)


class PublishUnavailable(Exception):
    """Pub/Sub did not take the message in time; the request must fail so that the client retries."""


Message = tuple[bytes, dict[str, str]]  # a body and its attributes


class Publisher(Protocol):
    def publish(self, messages: Sequence[Message]) -> list[str]:
        """Store these messages in one call and return their ids in order, or raise PublishUnavailable."""
        ...


class PubSubPublisher:
    """One Publish call per batch of messages, made by the calling thread, which waits for it: the request answers
    only once its rows are stored, because an instance gets no CPU after its response (engineering note 11).

    Collect's outbox already gathers concurrent requests into one call, so this calls the GAPIC method directly:
    the library's batching client would add a latency timer, a thread per batch and a future per message, and
    handing each call to a sender thread costs two thread switches (measured in bench/)."""

    def __init__(self, project: str, topic: str, *, timeout_seconds: float = 10.0) -> None:
        self.topic_path = pubsub_v1.PublisherClient.topic_path(project, topic)
        self._timeout = timeout_seconds
        self._retry = api_retry.Retry(
            initial=0.05, maximum=1.0, multiplier=2, predicate=_RETRYABLE, timeout=timeout_seconds
        )
        self._client: pubsub_v1.PublisherClient | None = None
        self._pid: int | None = None
        self._client_lock = threading.Lock()

    def _gapic_client(self) -> pubsub_v1.PublisherClient:
        # gRPC channels do not survive fork (gunicorn forks workers): one client per process.
        with self._client_lock:
            if self._client is None or self._pid != os.getpid():
                self._client = pubsub_v1.PublisherClient()  # honours PUBSUB_EMULATOR_HOST
                self._pid = os.getpid()
            return self._client

    def publish(self, messages: Sequence[Message]) -> list[str]:
        try:
            response = gapic.PublisherClient.publish(
                self._gapic_client(),
                topic=self.topic_path,
                messages=[PubsubMessage(data=data, attributes=attributes) for data, attributes in messages],
                retry=self._retry,
                timeout=self._timeout,  # each attempt gets what is left of it
            )
        except (api_exceptions.GoogleAPIError, OSError, ValueError) as exc:
            raise PublishUnavailable(f"Pub/Sub did not accept the messages: {exc}") from exc
        return list(response.message_ids)
