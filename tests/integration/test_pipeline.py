"""The local stack end to end: real HTTP into collect, the real Pub/Sub emulator, push into load, DuckDB."""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psutil
import pytest
import requests
from google.cloud import pubsub_v1

from local.processes import free_port
from local.stack import REPO, LocalStack, StackSettings
from shared.messages import ROWS_SCHEMA
from shared.pubsub import PubSubPublisher
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import RunningStack, page_row

pytestmark = pytest.mark.integration


def post(
    stack: RunningStack, path: str, body: object, *, gzip_body: bool = False, key: str | None = None
) -> requests.Response:
    data = orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if gzip_body:
        data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
    return requests.post(
        f"{stack.collect_url}{path}", data=data, headers=headers, auth=(key or stack.write_key, ""), timeout=30
    )


def count(stack: RunningStack, table: str, anonymous_id: str) -> int:
    return stack.query(f"SELECT COUNT(*) AS n FROM {table} WHERE anonymous_id = @a", {"a": anonymous_id})[0]["n"]


def test_http_in_rows_out(local_stack: RunningStack) -> None:
    anon = f"anon-{uuid.uuid4()}"
    batch = {
        "batch": [
            {
                "type": "page",
                "anonymousId": anon,
                "properties": {"url": "https://shop.kr/?utm_source=naver&utm_medium=cpc&gclid=g1"},
            },
            {
                "type": "track",
                "anonymousId": anon,
                "event": "Product Viewed",
                "properties": {"product_id": "p1", "name": "코트"},
            },
            {
                "type": "track",
                "anonymousId": anon,
                "userId": "u-1",
                "event": "Order Completed",
                "properties": {
                    "order_id": "o-1",
                    "revenue": 59000,
                    "currency": "krw",
                    "products": [{"product_id": "p1", "name": "코트"}],
                },
            },
            {
                "type": "identify",
                "anonymousId": anon,
                "userId": "u-1",
                "traits": {"email": "kim@example.kr", "phone": "010-1234-5678"},
            },
        ]
    }
    response = post(local_stack, "/v1/batch", batch, gzip_body=True)
    assert response.status_code == 200 and response.json() == {"success": True, "accepted": 4}
    local_stack.drain()
    assert [count(local_stack, f"raw.{t}", anon) for t in ("page", "land", "event", "conv", "user")] == [1, 1, 1, 1, 1]
    land = local_stack.query("SELECT medium, source, click_id FROM raw.land WHERE anonymous_id = @a", {"a": anon})[0]
    assert land == {"medium": "ad", "source": "naver", "click_id": "g1"}
    conv = local_stack.query(
        "SELECT revenue, currency, product_names, site_id FROM raw.conv WHERE anonymous_id = @a", {"a": anon}
    )
    assert conv == [{"revenue": 59000.0, "currency": "KRW", "product_names": "코트", "site_id": local_stack.site_id}]


def test_the_segment_sdk_works_unchanged(local_stack: RunningStack) -> None:
    from segment.analytics import Client

    errors: list[object] = []
    client = Client(
        local_stack.write_key,
        host=local_stack.collect_url,
        sync_mode=True,
        gzip=True,
        on_error=lambda e, batch: errors.append(e),
    )
    anon = f"sdk-{uuid.uuid4()}"
    client.identify(anonymous_id=anon, user_id="sdk-user", traits={"email": "sdk@example.com", "plan": "gold"})
    client.track(anonymous_id=anon, event="Products Searched", properties={"query": "패딩"})
    client.page(
        anonymous_id=anon,
        name="Home",
        properties={"url": "https://shop.kr/", "referrer": "https://www.google.com/search?q=x"},
    )
    client.flush()
    assert errors == []
    local_stack.drain()
    user = local_stack.query(
        "SELECT user_id, email, properties, library FROM raw.user WHERE anonymous_id = @a", {"a": anon}
    )[0]
    assert (user["user_id"], user["email"]) == ("sdk-user", "sdk@example.com")
    assert orjson.loads(user["properties"])["plan"] == "gold"
    assert user["library"].startswith("analytics-python/")
    search = local_stack.query("SELECT search_keyword FROM raw.event WHERE anonymous_id = @a", {"a": anon})
    assert search == [{"search_keyword": "패딩"}]
    land = local_stack.query("SELECT medium, search_engine FROM raw.land WHERE anonymous_id = @a", {"a": anon})
    assert land == [{"medium": "search", "search_engine": "google"}]


def test_bad_input_is_rejected_with_reasons_and_kept(local_stack: RunningStack) -> None:
    anon = f"bad-{uuid.uuid4()}"
    mixed = post(
        local_stack,
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "anonymousId": anon, "event": "ok"},
                {"type": "track", "anonymousId": anon, "messageId": f"{anon}-m2"},
            ]
        },
    )
    assert mixed.status_code == 200 and mixed.json()["rejected"][0]["error"] == "invalid_event"
    malformed = requests.post(
        f"{local_stack.collect_url}/v1/track", data=b'{"event": ', auth=(local_stack.write_key, ""), timeout=10
    )
    assert malformed.status_code == 400 and malformed.json()["error"] == "malformed_json"
    unknown = post(local_stack, "/v1/track", {"anonymousId": anon, "event": "x"}, key="who-knows")
    assert unknown.status_code == 401 and unknown.json()["error"] == "unknown_write_key"
    local_stack.drain()
    kept = local_stack.query(
        "SELECT reason_code, reason, site_id FROM ops.rejected WHERE event_id = @e", {"e": f"{anon}-m2"}
    )
    assert kept == [
        {"reason_code": "invalid_event", "reason": "track needs an event name", "site_id": local_stack.site_id}
    ]
    assert count(local_stack, "raw.event", anon) == 1
    codes = {r["reason_code"] for r in local_stack.query("SELECT DISTINCT reason_code FROM ops.rejected")}
    assert {"malformed_json", "unknown_write_key"} <= codes


def test_concurrent_single_events_share_messages_of_their_own_site_and_all_land_once(
    local_stack: RunningStack,
) -> None:
    run = uuid.uuid4().hex[:8]
    sites = [(local_stack.write_key, local_stack.site_id), ("wk_other", "other-shop")]

    def send(i: int) -> int:
        key, _ = sites[i % 2]
        call = {"anonymousId": f"co-{run}-{i}", "event": "Product Viewed", "properties": {"product_id": f"p{i}"}}
        return requests.post(f"{local_stack.collect_url}/v1/track", json=call, auth=(key, ""), timeout=30).status_code

    started = datetime.now(UTC)
    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(send, range(240)))
    assert statuses == [200] * 240
    local_stack.drain()
    rows = local_stack.query(
        "SELECT anonymous_id, site_id FROM raw.event WHERE STARTS_WITH(anonymous_id, @p)", {"p": f"co-{run}-"}
    )
    assert sorted(r["anonymous_id"] for r in rows) == sorted(f"co-{run}-{i}" for i in range(240))
    assert all(r["site_id"] == sites[int(r["anonymous_id"].rsplit("-", 1)[1]) % 2][1] for r in rows)
    messages = local_stack.query(
        "SELECT site_id, COUNT(*) AS messages, SUM(row_count) AS rows FROM ops.load_batches"
        " WHERE loaded_at >= @t GROUP BY site_id ORDER BY site_id",
        {"t": started},
    )
    assert [(m["site_id"], m["rows"]) for m in messages] == [("other-shop", 120), (local_stack.site_id, 120)]
    assert sum(m["messages"] for m in messages) < 240  # concurrent requests of a site went out together


def test_collect_runs_a_worker_process_a_core_and_load_one(local_stack: RunningStack) -> None:
    """Collect uses the machine as Cloud Run's added instances would; load stays the DuckDB file's one writer."""

    def workers(step: str) -> int:
        return len(psutil.Process(local_stack.stack.processes[step].process.pid).children())

    assert local_stack.stack.settings.collect_workers == min(os.cpu_count() or 1, 4)
    assert workers("collect") == local_stack.stack.settings.collect_workers
    assert workers("load") == 1
    assert workers("refine") == 1


def test_a_client_retry_is_stored_twice_but_seen_once(local_stack: RunningStack) -> None:
    anon = f"retry-{uuid.uuid4()}"
    batch = {"batch": [{"type": "track", "messageId": f"{anon}-1", "anonymousId": anon, "event": "Product Added"}]}
    assert post(local_stack, "/v1/batch", batch).status_code == 200
    assert post(local_stack, "/v1/batch", batch).status_code == 200
    local_stack.drain()
    assert count(local_stack, "raw.event", anon) == 2
    assert count(local_stack, "raw.event_unique", anon) == 1


def test_a_redelivered_push_writes_nothing_twice(local_stack: RunningStack) -> None:
    anon = f"redeliver-{uuid.uuid4()}"
    rows = {"raw.page": [page_row(anon)]}
    data = orjson.dumps({"schema": ROWS_SCHEMA, "site_id": "s", "rows": rows})  # plain JSON of row objects
    envelope = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": f"{anon}-msg",
            "publishTime": "2026-11-23T10:00:01Z",
            "attributes": {},
        },
        "subscription": "projects/cdp-local/subscriptions/collected-load",
    }
    load_url = local_stack.stack.url("load")
    for _ in range(3):  # as Pub/Sub would after a lost ack
        assert requests.post(f"{load_url}/", json=envelope, timeout=30).status_code == 200
    assert count(local_stack, "raw.page", anon) == 1
    assert local_stack.query(
        "SELECT COUNT(*) AS n FROM ops.load_batches WHERE message_id = @m", {"m": f"{anon}-msg"}
    ) == [{"n": 1}]


def test_the_same_events_published_twice_are_seen_once(local_stack: RunningStack) -> None:
    anon = f"dup-{uuid.uuid4()}"
    rows = {
        "raw.event": [
            {
                "event_id": f"{anon}-e",
                "site_id": "s",
                "call": "track",
                "event_time": "2026-11-23T10:00:00Z",
                "received_at": "2026-11-23T10:00:00Z",
                "anonymous_id": anon,
                "raw": "{}",
                "event_name": "x",
                "event_type": "custom",
            }
        ]
    }
    data = orjson.dumps({"schema": ROWS_SCHEMA, "site_id": "s", "rows": rows})  # plain JSON of row objects
    os.environ["PUBSUB_EMULATOR_HOST"] = local_stack.stack.pubsub_host
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(local_stack.stack.settings.project, local_stack.stack.settings.collected_topic)
    for _ in range(2):
        publisher.publish(topic, data).result(timeout=10)
    local_stack.drain()
    assert (count(local_stack, "raw.event", anon), count(local_stack, "raw.event_unique", anon)) == (2, 1)


def test_browser_plumbing(local_stack: RunningStack) -> None:
    preflight = requests.options(
        f"{local_stack.collect_url}/v1/batch", headers={"Origin": "https://shop.kr"}, timeout=10
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "*"
    script = requests.get(f"{local_stack.collect_url}/tracker.js", timeout=10)
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("application/javascript")
    anon = f"pixel-{uuid.uuid4()}"
    data = (
        base64.urlsafe_b64encode(
            orjson.dumps({"writeKey": local_stack.write_key, "anonymousId": anon, "event": "Pixel Seen"})
        )
        .decode()
        .rstrip("=")
    )
    pixel = requests.get(f"{local_stack.collect_url}/v1/pixel/track", params={"data": data}, timeout=10)
    assert pixel.status_code == 200 and pixel.headers["Content-Type"] == "image/gif"
    local_stack.drain()
    assert count(local_stack, "raw.event", anon) == 1
    assert requests.get(f"{local_stack.collect_url}/v2/nothing", timeout=10).status_code == 404


def test_shutdown_drains_everything_accepted(tmp_path: Path) -> None:
    stack = LocalStack(StackSettings(state_dir=tmp_path, collect_port=0, write_keys="s=wk")).start()
    try:

        def send(i: int) -> int:
            body = {"batch": [{"type": "track", "anonymousId": f"drain-{i}", "event": "x"} for _ in range(50)]}
            return requests.post(f"{stack.collect_url}/v1/batch", json=body, auth=("wk", ""), timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(40)))
    finally:
        stack.stop()  # no explicit drain: stopping must drain
    assert statuses == [200] * 40
    assert not any(p.running for p in stack.processes.values())
    with DuckDBWarehouse(stack.warehouse_path, read_only=True) as warehouse:
        assert warehouse.query("SELECT COUNT(*) AS n FROM raw.event") == [{"n": 2000}]


def test_stopping_while_requests_are_in_flight_keeps_every_one_that_was_answered(tmp_path: Path) -> None:
    """SIGTERM reaches collect's worker processes mid-traffic: each request it answered 200 was published before
    the process exited (the event loop finishes its requests), and lands once; the others were refused, not lost."""
    stack = LocalStack(StackSettings(state_dir=tmp_path, collect_port=0, write_keys="s=wk")).start()
    answered: list[int] = []

    def keep_sending(sender: int) -> None:
        for i in range(10_000):
            body = {"batch": [{"type": "track", "anonymousId": f"s{sender}-{i}", "event": "x"} for _ in range(20)]}
            try:
                response = requests.post(f"{stack.collect_url}/v1/batch", json=body, auth=("wk", ""), timeout=30)
            except requests.ConnectionError:
                return  # collect has stopped taking requests
            assert response.status_code in (200, 503), response.text
            if response.status_code == 200:
                answered.append(sender * 10_000 + i)

    try:
        with ThreadPoolExecutor(8) as pool:
            senders = [pool.submit(keep_sending, n) for n in range(8)]
            time.sleep(1.5)
            stack.stop()  # SIGTERM while requests are in flight; then the drain
            for sender in senders:
                sender.result(timeout=60)
    finally:
        stack.stop()
    assert len(answered) > 50  # the traffic was real
    with DuckDBWarehouse(stack.warehouse_path, read_only=True) as warehouse:
        loaded = warehouse.query("SELECT anonymous_id, COUNT(*) AS n FROM raw.event GROUP BY 1")
    counts = {row["anonymous_id"]: row["n"] for row in loaded}
    assert all(counts.get(f"s{n // 10_000}-{n % 10_000}") == 20 for n in answered)


def test_one_publish_call_stores_every_message_and_answers_their_ids_in_order(local_stack: RunningStack) -> None:
    os.environ["PUBSUB_EMULATOR_HOST"] = local_stack.stack.pubsub_host
    project, name = local_stack.stack.settings.project, f"calls-{uuid.uuid4().hex[:8]}"
    admin, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = admin.create_topic(name=admin.topic_path(project, name)).name
    subscription = subscriber.create_subscription(name=subscriber.subscription_path(project, name), topic=topic).name
    ids = PubSubPublisher(project, name, timeout_seconds=5).publish([(b"one", {"site_id": "a"}), (b"two", {})])
    stored: dict[str, tuple[bytes, dict[str, str]]] = {}
    for _ in range(20):  # a pull may answer with part of what is there
        for m in subscriber.pull(subscription=subscription, max_messages=10, timeout=10).received_messages:
            stored[m.message.message_id] = (m.message.data, dict(m.message.attributes))
        if len(stored) >= 2:
            break
    assert len(ids) == 2 and stored == {ids[0]: (b"one", {"site_id": "a"}), ids[1]: (b"two", {})}


def test_pubsub_unreachable_means_503_so_that_sdks_retry(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
        "CDP_WRITE_KEYS": "s=wk",
        "CDP_PUBLISH_TIMEOUT_SECONDS": "2",
        "CDP_STATE_DIR": str(tmp_path),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "functions_framework",
            "--target=collect",
            f"--source={REPO / 'functions/collect/main.py'}",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

        from local.processes import port_open

        retry(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(20), wait=wait_fixed(0.1))(port_open)(
            port
        )
        response = requests.post(
            f"http://127.0.0.1:{port}/v1/track", json={"anonymousId": "a", "event": "x"}, auth=("wk", ""), timeout=30
        )
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert response.json()["error"] == "unavailable"
        bad = requests.post(f"http://127.0.0.1:{port}/v1/track", data=b"{", auth=("wk", ""), timeout=30)
        assert bad.status_code == 400  # client input still gets its 4xx, never a 5xx
    finally:
        server.terminate()
        server.wait(timeout=30)
