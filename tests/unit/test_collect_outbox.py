"""The outbox: concurrent requests' rows go out together, each request answers with the message holding its rows,
and a failed publish fails exactly the requests whose rows it carried."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from shared.collect import outbox as outbox_module
from shared.collect.outbox import Outbox, message_of
from shared.messages import GZIP_FROM_BYTES, decode_message, is_compressed
from shared.pubsub import Message, PublishUnavailable
from tests.unit.fakes import RecordingPublisher

WAIT = 10.0


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

    def publish(self, messages: Sequence[Message]) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(WAIT)
        if self.calls in self.fail_on:
            raise PublishUnavailable(f"emulated outage on call {self.calls}")
        return super().publish(messages)


def queued(box: Outbox) -> int:
    with box._lock:
        return len(box._queue)


def send_behind_a_slow_publish(
    publisher: GatedPublisher, sends: list[tuple[str | None, dict[str, list[dict[str, Any]]], int]]
) -> list[Any]:
    """The first send publishes alone and is held; the others queue meanwhile; returns each one's outcome."""
    box = Outbox(publisher, max_leaders=1)
    with ThreadPoolExecutor(len(sends)) as pool:
        first = pool.submit(box.send, *sends[0], 100)
        assert publisher.entered.wait(WAIT)
        rest = [pool.submit(box.send, *s, 100) for s in sends[1:]]
        while queued(box) < len(rest):
            threading.Event().wait(0.001)
        publisher.release.set()
        futures = [first, *rest]
        return [f.exception(WAIT) or f.result(WAIT) for f in futures]


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
    box.send("shop", rows("small"), 1, 100)
    box.send("shop", {"raw.event": [{"event_id": "large", "raw": "{}" * GZIP_FROM_BYTES}]}, 1, 100)
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
    box = Outbox(publisher, max_leaders=1)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(box.send, "a", rows("a0"), 1, 100)
        assert publisher.entered.wait(WAIT)
        failing = [pool.submit(box.send, site, rows(e), 1, 100) for site, e in (("b", "b1"), ("b", "b2"), ("a", "a3"))]
        while queued(box) < 3:
            threading.Event().wait(0.001)
        publisher.release.set()
        assert first.result(WAIT) == "1"
        assert all(isinstance(f.exception(WAIT), PublishUnavailable) for f in failing)
    assert box.send("a", rows("a4"), 1, 100) == "2"  # the next call is a new chance
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


@pytest.mark.parametrize("leaders", [1, 2])
def test_many_concurrent_requests_all_finish_and_every_row_is_published_once(leaders: int) -> None:
    publisher = RecordingPublisher()
    box = Outbox(publisher, max_leaders=leaders)
    sites = ["a", "b", "c", None]
    with ThreadPoolExecutor(48) as pool:
        ids = list(pool.map(lambda n: box.send(sites[n % 4], rows(f"e{n}"), 1, 100), range(2000), timeout=60))
    published = [(m["site_id"], e) for m, _ in publisher.messages for e in m["tables"]["raw.event"]["event_id"]]
    assert sorted(e for _, e in published) == sorted(f"e{n}" for n in range(2000))
    assert all(site == sites[int(e[1:]) % 4] for site, e in published)
    holder = {
        e: str(i + 1) for i, (m, _) in enumerate(publisher.messages) for e in m["tables"]["raw.event"]["event_id"]
    }
    assert ids == [holder[f"e{n}"] for n in range(2000)]
    assert box._leaders == 0 and not box._queue  # every lead handed back


def test_while_requests_come_concurrently_a_leader_lingers_for_more_and_a_lone_one_never_does() -> None:
    publisher = GatedPublisher()
    box = Outbox(publisher, max_leaders=1, linger_seconds=30.0)
    with ThreadPoolExecutor(4) as pool:
        alone = pool.submit(box.send, "shop", rows("alone"), 1, 100)
        assert publisher.entered.wait(WAIT)  # published at once, without lingering: nothing came concurrently yet
        queued_up = [pool.submit(box.send, "shop", rows(f"q{n}"), 1, 100) for n in range(2)]
        while queued(box) < 2:
            threading.Event().wait(0.001)
        publisher.release.set()
        assert [f.result(WAIT) for f in (alone, *queued_up)] == ["1", "2", "2"]  # the second carried two requests
    box._linger = 1.0  # from now on a leader lingers: a request arriving meanwhile rides in its message
    with ThreadPoolExecutor(2) as pool:
        leader = pool.submit(box.send, "shop", rows("leader"), 1, 100)
        threading.Event().wait(0.05)
        joining = pool.submit(box.send, "shop", rows("joining"), 1, 100)
        assert leader.result(WAIT) == joining.result(WAIT) == "3"
    assert publisher.messages[2][0]["tables"]["raw.event"]["event_id"] == ["leader", "joining"]


def test_a_publisher_answering_the_wrong_number_of_ids_fails_the_call_instead_of_hanging_it() -> None:
    class Short(RecordingPublisher):
        def publish(self, messages: Sequence[Message]) -> list[str]:
            return super().publish(messages)[:-1]

    box = Outbox(Short())
    with pytest.raises(RuntimeError, match="answered 0 ids for 1 messages"):
        box.send("shop", rows("e0"), 1, 100)
    assert box._leaders == 0 and not box._queue


def _waiting(wakeup: Any) -> threading.Thread:
    """A thread in wakeup.wait(), as the request that owns it would be (one waiter at a time)."""
    thread = threading.Thread(target=wakeup.wait, daemon=True)
    thread.start()
    return thread


def test_a_wakeup_ends_a_wait_once_per_signal_and_never_releases_twice() -> None:
    wakeup = outbox_module._Wakeup()
    wakeup.arm()
    waiter = _waiting(wakeup)
    waiter.join(0.2)
    assert waiter.is_alive()  # nothing signalled: the request waits
    wakeup.signal()
    waiter.join(2)
    assert not waiter.is_alive()
    wakeup.arm()
    wakeup.signal()
    wakeup.signal()  # a second signal before the wait is the same wake-up, not a second release (an error)
    waiter = _waiting(wakeup)
    waiter.join(2)
    assert not waiter.is_alive()
    # Armed and signalled but never waited for, then armed again: that signal is dropped (the wait blocks), and
    # two new ones are still one release.
    wakeup.arm()
    wakeup.signal()
    wakeup.arm()
    waiter = _waiting(wakeup)
    waiter.join(0.2)
    assert waiter.is_alive()
    wakeup.signal()
    wakeup.signal()
    waiter.join(2)
    assert not waiter.is_alive()
