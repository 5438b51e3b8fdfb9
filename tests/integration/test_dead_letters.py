"""Dead letters on the local stack, as in the cloud: the step's push subscription gives up after its declared
attempts into a dead-letter topic whose hold subscription keeps the message; `cdp dead-letters` shows it and
`--replay` sends it again, after which it loads once and the hold is empty."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import orjson
import pytest
from google.cloud import pubsub_v1

from infra.declaration import discover
from local.cli import main as cli
from local.stack import REPO
from shared.deadletters import look, replay
from shared.messages import ROWS_SCHEMA
from tests.conftest import RunningStack, page_row

pytestmark = pytest.mark.integration

LOAD = discover(REPO / "functions")["load"].trigger


def test_the_push_subscription_dead_letters_as_declared(local_stack: RunningStack) -> None:
    os.environ["PUBSUB_EMULATOR_HOST"] = local_stack.stack.pubsub_host
    project = local_stack.stack.settings.project
    subscriber = pubsub_v1.SubscriberClient()
    try:
        push = subscriber.get_subscription(subscription=subscriber.subscription_path(project, "collected-load"))
        hold = subscriber.get_subscription(
            subscription=subscriber.subscription_path(project, "collected-load-dead-letter-hold")
        )
    finally:
        subscriber.close()
    dead_letter_topic = f"projects/{project}/topics/collected-load-dead-letter"
    assert push.dead_letter_policy.dead_letter_topic == dead_letter_topic
    assert push.dead_letter_policy.max_delivery_attempts == LOAD.max_delivery_attempts == 10
    assert push.retry_policy.minimum_backoff.total_seconds() == LOAD.min_backoff_seconds
    assert push.retry_policy.maximum_backoff.total_seconds() == LOAD.max_backoff_seconds
    assert hold.topic == dead_letter_topic


def test_a_held_message_is_shown_then_replayed_and_loads_once(
    local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a message Pub/Sub gave up on, in the hold, with the attributes Pub/Sub adds when it dead-letters
    anon = f"dead-{uuid.uuid4()}"
    data = orjson.dumps(
        {"schema": ROWS_SCHEMA, "site_id": "s", "batch_id": anon, "rows": {"raw.page": [page_row(anon)]}}
    )
    os.environ["PUBSUB_EMULATOR_HOST"] = local_stack.stack.pubsub_host
    publisher = pubsub_v1.PublisherClient()
    project = local_stack.stack.settings.project
    publisher.publish(
        publisher.topic_path(project, "collected-load-dead-letter"),
        data,
        site_id="s",
        CloudPubSubDeadLetterSourceDeliveryCount="10",
        CloudPubSubDeadLetterSourceSubscription="collected-load",
    ).result(timeout=10)
    monkeypatch.setenv("CDP_STATE_DIR", str(local_stack.stack.state_dir))

    # When ops look: it is shown with its attempts and its own attributes, and stays held
    for _ in range(2):
        assert cli(["dead-letters", "--step", "load"]) == 0
        shown = capsys.readouterr().out
        assert "load: 1 message(s) held in collected-load-dead-letter-hold" in shown
        assert '{"site_id": "s"}' in shown and "  10  " in shown

    # When they replay it: it is published again, acknowledged, and loads once
    assert cli(["dead-letters", "--step", "load", "--replay"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["replayed"], result["failed"]) == (1, 0)
    assert result["topic"] == f"projects/{project}/topics/collected"
    local_stack.drain()
    assert local_stack.query("SELECT COUNT(*) AS n FROM raw.page WHERE anonymous_id = @a", {"a": anon}) == [{"n": 1}]
    assert cli(["dead-letters", "--step", "load"]) == 0
    assert "load: 0 message(s) held" in capsys.readouterr().out


def test_dead_letters_name_a_step_that_is_not_an_event_step(
    local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit, match=r"no event step 'collect'; the event steps are \['load'\]"):
        cli(["dead-letters", "--step", "collect"])
    with pytest.raises(SystemExit, match="--cloud needs --project"):
        cli(["dead-letters", "--cloud"])
    with pytest.raises(SystemExit) as refused:
        cli(["dead-letters", "--limit", "0"])
    assert refused.value.code == 2 and "'0' is not a whole number of 1 or more" in capsys.readouterr().err
    monkeypatch.setenv("CDP_STATE_DIR", str(local_stack.stack.state_dir))
    with pytest.raises(SystemExit, match=r"dead-letter-hold: .*is the step deployed to project 'elsewhere'"):
        cli(["dead-letters", "--project", "elsewhere"])
    monkeypatch.setenv("CDP_STATE_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="no running stack"):
        cli(["dead-letters"])
    (tmp_path / "stack.json").write_text(json.dumps({"pid": 1, "urls": {}}))
    with pytest.raises(SystemExit, match="names no emulator: the stack predates dead letters"):
        cli(["dead-letters"])


def test_a_message_whose_copy_is_refused_stays_held(local_stack: RunningStack) -> None:
    os.environ["PUBSUB_EMULATOR_HOST"] = local_stack.stack.pubsub_host
    project = local_stack.stack.settings.project
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    hold = subscriber.subscription_path(project, LOAD.dead_letter_hold("load"))
    marker = f"refused-{uuid.uuid4()}"
    publisher.publish(publisher.topic_path(project, LOAD.dead_letter_topic("load")), b"{}", marker=marker).result(10)
    try:
        # When the topic refuses the copy (here: it does not exist), nothing is acknowledged
        refused = replay(publisher, subscriber, hold, publisher.topic_path(project, "no-such-topic"))
        assert (refused.replayed, refused.failed) == (0, 1)
        assert [m.attributes["marker"] for m in look(subscriber, hold)] == [marker]
    finally:
        # a body that is no message: load keeps it as a rejected record, and the hold is left empty
        replay(publisher, subscriber, hold, publisher.topic_path(project, "collected"))
        subscriber.close()
    local_stack.drain()
    assert (
        local_stack.query(
            "SELECT COUNT(*) AS n FROM ops.rejected WHERE stage = 'load' AND reason_code = 'bad_message' "
            "AND received_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)"
        )[0]["n"]
        >= 1
    )


def test_drain_waits_for_a_dead_lettered_batch_until_its_replay_loads(
    local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message dead-lettered after its attempts is published again as a new message of the same batch (collect
    puts the batch id in the attributes too): drain, which saw the original, is satisfied by the copy's batch."""
    anon = f"batch-{uuid.uuid4()}"
    batch = uuid.uuid4().hex
    data = orjson.dumps(
        {"schema": ROWS_SCHEMA, "site_id": "s", "batch_id": batch, "rows": {"raw.page": [page_row(anon)]}}
    )
    # Given the original, seen by the stack's audit of `collected` (as it sees every message) and never loaded:
    # Pub/Sub gave up on it after its attempts (10, minutes apart: too slow to wait for here) and holds it
    local_stack.stack._published[f"original-of-{batch}"] = batch
    os.environ["PUBSUB_EMULATOR_HOST"] = local_stack.stack.pubsub_host
    publisher = pubsub_v1.PublisherClient()
    dead_letters = publisher.topic_path(local_stack.stack.settings.project, LOAD.dead_letter_topic("load"))
    publisher.publish(dead_letters, data, batch_id=batch, CloudPubSubDeadLetterSourceDeliveryCount="10").result(10)
    with pytest.raises(TimeoutError, match=r"1 of .* messages not loaded .* local\.cli dead-letters"):
        local_stack.stack.drain(timeout=1)

    # When it is replayed, drain ends, and the batch loaded once
    monkeypatch.setenv("CDP_STATE_DIR", str(local_stack.stack.state_dir))
    assert cli(["dead-letters", "--step", "load", "--replay"]) == 0
    assert json.loads(capsys.readouterr().out)["replayed"] == 1
    assert local_stack.drain()["missing"] == 0
    assert local_stack.query("SELECT COUNT(*) AS n FROM raw.page WHERE anonymous_id = @a", {"a": anon}) == [{"n": 1}]
