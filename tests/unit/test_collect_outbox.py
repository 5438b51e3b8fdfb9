"""The outbox: concurrent requests' rows go out together, each request answers with the message holding its rows,
and a failed publish fails exactly the requests whose rows it carried. Requests are tasks on one event loop, as the
ASGI server runs them; the publisher runs on the outbox's publishing thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from shared.collect import outbox as outbox_module
from shared.collect.outbox import Outbox, message_of
from shared.messages import GZIP_FROM_BYTES, decode_message, is_compressed
from shared.pubsub import Message, PublishUnavailable
from tests.unit.fakes import RecordingPublisher

WAIT = 10.0
Send = tuple[str | None, dict[str, list[dict[str, Any]]], int]


def rows(*event_ids: str) -> dict[str, list[dict[str, Any]]]:
    return {"raw.event": [{"event_id": e, "site_id": "shop"} for e in event_ids]}


class GatedPublisher(RecordingPublisher):
    """Holds its first publish until released, so that other requests queue up behind it."""

    def __init__(self, *, fail_on: set[int] | None = None) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on or set()
        self.calls = 0
        self.threads: set[str] = set()

    def publish(self, messages: Sequence[Message]) -> list[str]:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(WAIT)
        if self.calls in self.fail_on:
            raise PublishUnavailable(f"emulated outage on call {self.calls}")
        return super().publish(messages)


async def queued_up(box: Outbox, count: int) -> None:
    """Until `count` requests wait in the outbox."""
    async with asyncio.timeout(WAIT):
        while len(box._queue) < count:
            await asyncio.sleep(0.001)


async def first_held_then(box: Outbox, publisher: GatedPublisher, sends: list[Send]) -> list[Any]:
    """The first send publishes alone and is held; the others queue meanwhile; each one's outcome (an id or the
    exception it raised)."""
    first = asyncio.create_task(box.send(*sends[0], 100))
    assert await asyncio.to_thread(publisher.entered.wait, WAIT)
    rest = [asyncio.create_task(box.send(*send, 100)) for send in sends[1:]]
    await queued_up(box, len(rest))
    publisher.release.set()
    async with asyncio.timeout(WAIT):
        return await asyncio.gather(first, *rest, return_exceptions=True)


def send_behind_a_slow_publish(publisher: GatedPublisher, sends: list[Send]) -> list[Any]:
    return asyncio.run(first_held_then(Outbox(publisher), publisher, sends))


def sent_alone(box: Outbox, *send: Any) -> str:
    """One request alone on an event loop of its own."""
    return asyncio.run(box.send(*send))


def test_requests_waiting_behind_a_publish_share_the_next_message() -> None:
    publisher = GatedPublisher()
    outcomes = send_behind_a_slow_publish(
        publisher, [("shop", rows("e0"), 1), ("shop", rows("e1"), 1), ("shop", rows("e2", "e3"), 2)]
    )
    assert outcomes == ["1", "2", "2"]  # each request's answer is the id of the message holding its rows
    assert [m["tables"]["raw.event"]["event_id"] for m, _ in publisher.messages] == [["e0"], ["e1", "e2", "e3"]]
    second_attributes = publisher.messages[1][1]
    assert (second_attributes["events"], second_attributes["requests"], second_attributes["site_id"]) == (
        "3",
        "2",
        "shop",
    )


def test_message_of_builds_what_a_publish_call_of_those_requests_sends() -> None:
    publisher = GatedPublisher()
    send_behind_a_slow_publish(publisher, [("shop", rows("e0"), 1), ("shop", rows("e1"), 1), ("shop", rows("e2"), 1)])
    data, attributes = message_of("shop", [(rows("e1"), 1), (rows("e2"), 1)])
    document = orjson.loads(decode_message(data))
    sent, sent_attributes = publisher.messages[1]
    # the same message but for its batch id, which is new for every message
    assert {**document, "batch_id": None} == {**sent, "batch_id": None}
    assert {**attributes, "batch_id": None} == {**sent_attributes, "batch_id": None}
    assert attributes["batch_id"] == document["batch_id"] != sent["batch_id"]


def test_only_a_message_large_enough_is_compressed_and_says_so() -> None:
    class BodyKeeping(RecordingPublisher):
        def publish(self, messages: Sequence[Message]) -> list[str]:
            sent.extend(data for data, _ in messages)
            return super().publish(messages)

    sent: list[bytes] = []
    publisher = BodyKeeping()
    box = Outbox(publisher)
    sent_alone(box, "shop", rows("small"), 1, 100)
    sent_alone(box, "shop", {"raw.event": [{"event_id": "large", "raw": "{}" * GZIP_FROM_BYTES}]}, 1, 100)
    assert [is_compressed(data) for data in sent] == [False, True]
    assert [attributes.get("content_encoding") for _, attributes in publisher.messages] == [None, "gzip"]
    assert publisher.messages[1][0]["tables"]["raw.event"]["event_id"] == ["large"]


def test_sites_never_share_a_message_but_do_share_a_publish_call() -> None:
    publisher = GatedPublisher()
    outcomes = send_behind_a_slow_publish(
        publisher,
        [("a", rows("a0"), 1), ("b", rows("b1"), 1), ("a", rows("a2"), 1), (None, rows("r3"), 0), ("b", rows("b4"), 1)],
    )
    by_message = [(m["site_id"], m["tables"]["raw.event"]["event_id"]) for m, _ in publisher.messages]
    assert by_message == [("a", ["a0"]), ("b", ["b1", "b4"]), ("a", ["a2"]), (None, ["r3"])]
    assert outcomes == ["1", "2", "3", "4", "2"]
    assert publisher.calls == 2  # the three sites waiting did not wait for one another: one call carried them


def test_a_failed_publish_fails_only_the_requests_it_carried() -> None:
    publisher = GatedPublisher(fail_on={2})
    box = Outbox(publisher)
    outcomes = asyncio.run(
        first_held_then(
            box, publisher, [("a", rows("a0"), 1), ("b", rows("b1"), 1), ("b", rows("b2"), 1), ("a", rows("a3"), 1)]
        )
    )
    assert outcomes[0] == "1"
    assert [type(outcome) for outcome in outcomes[1:]] == [PublishUnavailable] * 3
    assert sent_alone(box, "a", rows("a4"), 1, 100) == "2"  # the next call is a new chance
    assert [m["tables"]["raw.event"]["event_id"] for m, _ in publisher.messages] == [["a0"], ["a4"]]


def test_an_unexpected_error_reaches_every_waiting_request_instead_of_hanging_them() -> None:
    class Broken(GatedPublisher):
        def publish(self, messages: Sequence[Message]) -> list[str]:
            if self.calls == 1:
                raise RuntimeError("bug in the adapter")
            return super().publish(messages)

    publisher = Broken()
    outcomes = send_behind_a_slow_publish(publisher, [("a", rows("a0"), 1), ("a", rows("a1"), 1), ("a", rows("a2"), 1)])
    assert outcomes[0] == "1"
    assert [type(o) for o in outcomes[1:]] == [RuntimeError, RuntimeError]


def test_a_message_stops_at_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "MAX_CALL_ROWS", 3)
    publisher = GatedPublisher()
    send_behind_a_slow_publish(
        publisher,
        [("a", rows("x"), 1), ("a", rows("p", "q"), 2), ("a", rows("r"), 1), ("a", rows("s"), 1), ("a", rows("t"), 1)],
    )
    heights = [len(m["tables"]["raw.event"]["event_id"]) for m, _ in publisher.messages]
    assert heights == [1, 3, 2]


def test_many_concurrent_requests_all_finish_and_every_row_is_published_once() -> None:
    publisher = RecordingPublisher()
    box = Outbox(publisher)
    sites = ["a", "b", "c", None]

    async def all_at_once() -> list[str]:
        async with asyncio.timeout(60):
            return await asyncio.gather(*(box.send(sites[n % 4], rows(f"e{n}"), 1, 100) for n in range(2000)))

    ids = asyncio.run(all_at_once())
    published = [(m["site_id"], e) for m, _ in publisher.messages for e in m["tables"]["raw.event"]["event_id"]]
    assert sorted(e for _, e in published) == sorted(f"e{n}" for n in range(2000))
    assert all(site == sites[int(e[1:]) % 4] for site, e in published)
    holder = {
        e: str(i + 1) for i, (m, _) in enumerate(publisher.messages) for e in m["tables"]["raw.event"]["event_id"]
    }
    assert ids == [holder[f"e{n}"] for n in range(2000)]
    assert len(publisher.messages) < 2000  # they shared messages
    assert box._sender is None and not box._queue  # the sender stopped when nothing was left


def test_while_requests_come_concurrently_the_sender_lingers_for_more_and_for_a_lone_one_never() -> None:
    publisher = GatedPublisher()
    box = Outbox(publisher, linger_seconds=30.0)
    sends: list[Send] = [("shop", rows("alone"), 1), ("shop", rows("q0"), 1), ("shop", rows("q1"), 1)]
    # published at once, without lingering (nothing came concurrently yet); the second call carried two requests
    assert asyncio.run(first_held_then(box, publisher, sends)) == ["1", "2", "2"]
    box._linger = 1.0  # from now on the sender lingers: a request arriving meanwhile rides in its message

    async def one_then_another() -> list[str]:
        leader = asyncio.create_task(box.send("shop", rows("leader"), 1, 100))
        await asyncio.sleep(0.05)
        joining = asyncio.create_task(box.send("shop", rows("joining"), 1, 100))
        return await asyncio.gather(leader, joining)

    assert asyncio.run(one_then_another()) == ["3", "3"]
    assert publisher.messages[2][0]["tables"]["raw.event"]["event_id"] == ["leader", "joining"]


def test_a_publisher_answering_the_wrong_number_of_ids_fails_the_call_instead_of_hanging_it() -> None:
    class Short(RecordingPublisher):
        def publish(self, messages: Sequence[Message]) -> list[str]:
            return super().publish(messages)[:-1]

    box = Outbox(Short())
    with pytest.raises(RuntimeError, match="answered 0 ids for 1 messages"):
        sent_alone(box, "shop", rows("e0"), 1, 100)
    assert box._sender is None and not box._queue


def test_a_request_whose_client_went_away_still_has_its_rows_published_and_the_others_their_answers() -> None:
    publisher = GatedPublisher()
    box = Outbox(publisher)

    async def one_cancelled() -> list[Any]:
        first = asyncio.create_task(box.send("shop", rows("e0"), 1, 100))
        assert await asyncio.to_thread(publisher.entered.wait, WAIT)
        gone = asyncio.create_task(box.send("shop", rows("gone"), 1, 100))
        staying = asyncio.create_task(box.send("shop", rows("staying"), 1, 100))
        await queued_up(box, 2)
        gone.cancel()  # as the server cancels a request whose client disconnected
        publisher.release.set()
        return await asyncio.gather(first, gone, staying, return_exceptions=True)

    first, gone, staying = asyncio.run(one_cancelled())
    assert (first, type(gone), staying) == ("1", asyncio.CancelledError, "2")
    assert publisher.messages[1][0]["tables"]["raw.event"]["event_id"] == ["gone", "staying"]  # at least once


def test_publish_calls_run_on_the_publishing_thread_not_the_event_loops() -> None:
    publisher = GatedPublisher()
    send_behind_a_slow_publish(publisher, [("shop", rows("e0"), 1), ("shop", rows("e1"), 1)])
    assert len(publisher.threads) == 1 and next(iter(publisher.threads)).startswith("outbox-publish")


def test_a_large_message_goes_as_arrow_a_small_one_as_json_and_arrow_gives_way_to_json_for_mixed_values() -> None:
    publisher = RecordingPublisher()
    box = Outbox(publisher)
    many = [f"e{n}" for n in range(outbox_module.ARROW_FROM_ROWS)]
    sent_alone(box, "shop", rows(*many[:-1]), 1, 100)
    sent_alone(box, "shop", rows(*many), 1, 100)
    mixed = {"raw.event": [{"event_id": e, "price": 1.5 if n else "free"} for n, e in enumerate(many)]}
    sent_alone(box, "shop", mixed, 1, 100)
    schemas = [attributes["schema"] for _, attributes in publisher.messages]
    assert schemas == ["raw-columns/1", "raw-arrow/1", "raw-columns/1"]
    assert [m["tables"]["raw.event"]["event_id"] for m, _ in publisher.messages] == [many[:-1], many, many]
    assert publisher.messages[2][0]["tables"]["raw.event"]["price"][:2] == ["free", 1.5]
