"""Dead letters: the messages Pub/Sub gave up pushing to an event step after its `max_delivery_attempts`.

They wait in the step's hold subscription (`<topic>-<step>-dead-letter-hold`, kept 31 days; the Pulumi program
and the local stack both make it, and an alert fires while it is not empty). `look` shows them without taking
them; `replay` publishes each again to the step's topic with its own attributes, then acknowledges it. A message
is acknowledged only once its copy is published, so a replay cut short loses nothing; one replayed twice is
harmless, since the step is idempotent (load keeps a ledger of the batches it wrote).

The same code runs against the emulator and Pub/Sub itself: the client library decides by PUBSUB_EMULATOR_HOST.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1
from pydantic import BaseModel

# Attributes Pub/Sub adds when it dead-letters a message (source subscription, delivery count, ...).
DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"
DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
PULL_BATCH = 100
# A pull of an empty subscription waits about this long before it answers nothing (one with messages answers at
# once): the price of knowing the hold is empty, paid once per step looked at or replayed.
PULL_TIMEOUT_SECONDS = 5.0
PUBLISH_TIMEOUT_SECONDS = 60.0


class HeldMessage(BaseModel):
    message_id: str
    publish_time: datetime | None
    delivery_attempts: int | None
    size: int
    attributes: dict[str, str]


class ReplayResult(BaseModel):
    hold: str
    topic: str
    replayed: int
    failed: int


def own_attributes(attributes: Any) -> dict[str, str]:
    """The message's attributes as it was first published (without those Pub/Sub added on dead-lettering)."""
    return {k: v for k, v in dict(attributes).items() if not k.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)}


def _held(received: Any) -> HeldMessage:
    message = received.message
    count = dict(message.attributes).get(DELIVERY_COUNT)
    return HeldMessage(
        message_id=message.message_id,
        publish_time=message.publish_time or None,
        delivery_attempts=int(count) if count and count.isdigit() else None,
        size=len(message.data),
        attributes=own_attributes(message.attributes),
    )


def _pull(subscriber: pubsub_v1.SubscriberClient, hold: str, count: int) -> list[Any]:
    try:
        response = subscriber.pull(request={"subscription": hold, "max_messages": count}, timeout=PULL_TIMEOUT_SECONDS)
    except api_exceptions.DeadlineExceeded:  # nothing came within the wait
        return []
    return list(response.received_messages)


def look(subscriber: pubsub_v1.SubscriberClient, hold: str, limit: int = PULL_BATCH) -> list[HeldMessage]:
    """Up to `limit` held messages, left held: each is handed back at once (ack deadline 0)."""
    received = _pull(subscriber, hold, min(limit, PULL_BATCH))
    if received:
        subscriber.modify_ack_deadline(
            request={"subscription": hold, "ack_ids": [r.ack_id for r in received], "ack_deadline_seconds": 0}
        )
    return [_held(r) for r in received]


def replay(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    hold: str,
    topic: str,
    limit: int | None = None,
) -> ReplayResult:
    """Publish the held messages again to `topic`, then acknowledge each one whose copy Pub/Sub accepted (the
    others are handed back and counted as failed). Stops at `limit`, or when a pull comes back empty."""
    replayed = failed = 0
    while limit is None or replayed < limit:
        wanted = PULL_BATCH if limit is None else min(PULL_BATCH, limit - replayed)
        received = _pull(subscriber, hold, wanted)
        if not received:
            break
        futures = [
            (r.ack_id, publisher.publish(topic, r.message.data, **own_attributes(r.message.attributes)))
            for r in received
        ]
        published, refused = [], []
        for ack_id, future in futures:
            try:
                future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
                published.append(ack_id)
            except Exception:  # any failure keeps the message held, for the next replay
                refused.append(ack_id)
        if published:
            subscriber.acknowledge(request={"subscription": hold, "ack_ids": published})
            replayed += len(published)
        if refused:
            subscriber.modify_ack_deadline(
                request={"subscription": hold, "ack_ids": refused, "ack_deadline_seconds": 0}
            )
            failed += len(refused)
            break  # the topic refuses now: retrying at once would only loop
    return ReplayResult(hold=hold, topic=topic, replayed=replayed, failed=failed)
