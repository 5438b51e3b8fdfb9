"""Replaying dead letters: only a message whose copy was accepted is acknowledged, and every count is exact."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from shared.deadletters import own_attributes, replay


class Subscriber:
    """Holds `messages`: a pull hands out up to `max_messages` of those not yet handed out; records what is
    acknowledged or handed back."""

    def __init__(self, messages: list[tuple[bytes, dict[str, str]]]) -> None:
        self.waiting = [
            SimpleNamespace(ack_id=f"ack-{i}", message=SimpleNamespace(data=data, attributes=attributes))
            for i, (data, attributes) in enumerate(messages)
        ]
        self.acked: list[str] = []
        self.handed_back: list[str] = []

    def pull(self, request: dict[str, Any], timeout: float) -> Any:
        taken, self.waiting = self.waiting[: request["max_messages"]], self.waiting[request["max_messages"] :]
        return SimpleNamespace(received_messages=taken)

    def acknowledge(self, request: dict[str, Any]) -> None:
        self.acked += request["ack_ids"]

    def modify_ack_deadline(self, request: dict[str, Any]) -> None:
        assert request["ack_deadline_seconds"] == 0
        self.handed_back += request["ack_ids"]


class Publisher:
    """Accepts every copy but those whose body is b"refused"."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **attributes: str) -> Future:
        future: Future = Future()
        if data == b"refused":
            future.set_exception(RuntimeError("the topic refused it"))
        else:
            self.published.append((topic, data, attributes))
            future.set_result("new-id")
        return future


def test_a_refused_copy_stays_held_and_the_accepted_ones_are_counted() -> None:
    dead = {"CloudPubSubDeadLetterSourceDeliveryCount": "10", "batch_id": "b"}
    subscriber = Subscriber([(b"one", dead), (b"refused", dead), (b"three", dead)])
    publisher = Publisher()
    result = replay(publisher, subscriber, "hold", "topic")  # type: ignore[arg-type]
    assert (result.replayed, result.failed) == (2, 1)
    assert subscriber.acked == ["ack-0", "ack-2"] and subscriber.handed_back == ["ack-1"]
    # each copy carries the attributes it was first published with, not those Pub/Sub added
    assert publisher.published == [("topic", b"one", {"batch_id": "b"}), ("topic", b"three", {"batch_id": "b"})]


def test_a_limit_stops_the_replay_and_the_rest_stays_held() -> None:
    subscriber = Subscriber([(b"one", {}), (b"two", {}), (b"three", {})])
    result = replay(Publisher(), subscriber, "hold", "topic", limit=2)  # type: ignore[arg-type]
    assert (result.replayed, result.failed) == (2, 0) and subscriber.acked == ["ack-0", "ack-1"]
    assert [w.ack_id for w in subscriber.waiting] == ["ack-2"]
    assert own_attributes({"CloudPubSubDeadLetterSourceSubscription": "s", "site_id": "x"}) == {"site_id": "x"}
