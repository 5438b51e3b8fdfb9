"""Collection and loading benchmarks on the local stack.

1. single-event POST /v1/track: requests/s and p99 of collect, against a bare functions-framework handler in the
   same run (target: ratio >= 0.75): functions-framework's default (Flask under gunicorn threads), and the same
   handler served as collect is (an `aio` function: ASGI under uvicorn workers);
2. events/s through /v1/batch with 100-event batches (target >= 20,000/s on 2 cores);
3. rows/s loaded into DuckDB from the Pub/Sub emulator through push + load (target >= 50,000/s), against
   writing the same messages straight into DuckDB in-process;
4. single-event POSTs end to end through the whole local stack: events/s until the last is loaded, against what
   collect accepted meanwhile (how well loading keeps pace with beacon traffic).
Load comes from wrk (Debian package) on the same machine; rounds alternate to share the machine's noise."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import psutil
from google.cloud import pubsub_v1

from local.cli import positive_int
from local.processes import ChildProcess, free_port
from local.stack import REPO, LocalStack, StackSettings
from shared.collect.outbox import MAX_CALL_ROWS, message_of
from shared.collect.service import CollectRequest, CollectService
from shared.load.service import LoadService
from shared.pubsub import Message, PubSubPublisher
from shared.settings import platform_settings
from shared.warehouse.duckdb import DuckDBWarehouse

RESULTS = REPO / "bench" / "results"
WRITE_KEY = "wk_bench"
REQUEST_PAGE_VIEWS = 100  # events in one request of the load benchmark's, as an analytics SDK batches them
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"


def event(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": str(uuid.UUID(int=i)),
        "anonymousId": f"anon-{i % 997}",
        "event": "Product Viewed",
        "properties": {"product_id": f"p{i % 50}", "name": "겨울 코트", "price": 59000},
        "context": {
            "userAgent": UA,
            "page": {"url": f"https://shop.kr/p/{i % 50}", "referrer": "https://shop.kr/"},
            "library": {"name": "analytics.js", "version": "4.1"},
        },
        "originalTimestamp": "2026-11-23T10:00:00.000Z",
    }


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by these processes and their children (gunicorn workers, the emulator's JVM)."""
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for p in [process, *process.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def wrk(
    url: str, body: bytes, seconds: int, connections: int, watch: dict[str, list[int]] | None = None
) -> dict[str, float]:
    """requests/s and latency percentiles (ms) of POSTing `body` to `url` for `seconds`, and the CPU
    microseconds per request spent by each watched group of processes."""
    before = {name: cpu_seconds(pids) for name, pids in (watch or {}).items()}
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body"
        body_path.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f'local f = io.open("{body_path}", "rb"); wrk.body = f:read("*all"); f:close()\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Authorization"] = "Basic d2tfYmVuY2g6"\n'  # wk_bench:
        )
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} failed responses\n{out}")
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)", out, re.M)}
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    cpu = {
        f"{name}_cpu_us": (cpu_seconds(pids) - before[name]) / requests_done * 1e6
        for name, pids in (watch or {}).items()
    }
    return {
        "rps": rps,
        "requests": requests_done,
        "p50_ms": percentiles["50"],
        "p99_ms": percentiles["99"],
        **cpu,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def function_server(name: str, source: Path, target: str, env: dict[str, str], log_dir: Path) -> ChildProcess:
    port = free_port()
    child = ChildProcess(
        name,
        [
            sys.executable,
            "-m",
            "functions_framework",
            f"--target={target}",
            f"--source={source}",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        env=env,
        log_dir=log_dir,
        port=port,
        cwd=REPO,
    )
    child.start()
    return child


def warm_up_emulator(stack: LocalStack, calls: int = 4000) -> None:
    """Publish calls until the emulator's JVM has compiled its publish path: its CPU per call falls from about 4.7
    to 1.8 ms over the first 3,000 here, and Pub/Sub itself is always warm. What collect publishes meanwhile during
    the server warm-ups is a few hundred calls."""
    publisher = PubSubPublisher(stack.settings.project, stack.settings.collected_topic)
    message = [(orjson.dumps(event(0)), {"warm_up": "1"})]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: publisher.publish(message), range(calls)))


def bench_collect(
    state: Path, seconds: int, rounds: int, connections: int, threads: int, workers: int
) -> dict[str, Any]:
    """Every server with the same worker processes (and the WSGI one with `threads` gunicorn threads)."""
    stack = LocalStack(StackSettings(state_dir=state, write_keys=f"bench={WRITE_KEY}", collect_port=0))
    stack._start_emulator()
    os.environ["PUBSUB_EMULATOR_HOST"] = stack.pubsub_host
    publisher = pubsub_v1.PublisherClient()
    publisher.create_topic(name=publisher.topic_path(stack.settings.project, stack.settings.collected_topic))
    env = {**stack.function_env(workers), "THREADS": str(threads)}
    servers = {
        "bare": function_server("bare", REPO / "bench/bare/main.py", "bare", env, state / "logs"),
        "bare_async": function_server("bare_async", REPO / "bench/bare/main.py", "bare_async", env, state / "logs"),
        "collect": function_server("collect", REPO / "functions/collect/main.py", "collect", env, state / "logs"),
    }
    single = orjson.dumps(event(1))
    batch = orjson.dumps({"batch": [event(i) for i in range(100)], "sentAt": "2026-11-23T10:00:01.000Z"})
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "bare_async": [], "collect": [], "batch": []}
    try:
        for child in servers.values():  # warm up
            wrk(f"http://127.0.0.1:{child.port}/v1/track", single, 2, connections)
        warm_up_emulator(stack)
        emulator = [stack.processes["pubsub"].process.pid]
        plan = (
            ("bare", "/v1/track", single, "bare"),
            ("bare_async", "/v1/track", single, "bare_async"),
            ("collect", "/v1/track", single, "collect"),
            ("batch", "/v1/batch", batch, "collect"),
        )
        for _ in range(rounds):
            for name, path, body, server in plan:
                watch = {"server": [servers[server].process.pid], "emulator": emulator}
                runs[name].append(
                    wrk(f"http://127.0.0.1:{servers[server].port}{path}", body, seconds, connections, watch)
                )
    finally:
        for child in servers.values():
            child.stop()
        stack.stop(drain=False)
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    return {
        "workers": workers,
        "bare_rps": med["bare"]["rps"],
        "bare_p99_ms": med["bare"]["p99_ms"],
        "collect_rps": med["collect"]["rps"],
        "collect_p99_ms": med["collect"]["p99_ms"],
        "collect_ratio": med["collect"]["rps"] / med["bare"]["rps"],
        "bare_async_rps": med["bare_async"]["rps"],
        "bare_async_p99_ms": med["bare_async"]["p99_ms"],
        "collect_ratio_async": med["collect"]["rps"] / med["bare_async"]["rps"],
        "bare_cpu_us": med["bare"]["server_cpu_us"],
        "bare_async_cpu_us": med["bare_async"]["server_cpu_us"],
        "collect_cpu_us": med["collect"]["server_cpu_us"],
        "emulator_cpu_us": med["collect"]["emulator_cpu_us"],
        "batch_events_per_s": med["batch"]["rps"] * 100,
        "batch_p99_ms": med["batch"]["p99_ms"],
        "rounds": rounds,
        "seconds": seconds,
        "connections": connections,
    }


class NoPublisher:
    """For a CollectService that only accepts requests: publishing through it is a mistake."""

    def publish(self, messages: Sequence[Message]) -> list[str]:
        raise AssertionError("the load benchmark builds its messages itself")


def prepared_messages(rows: int, rows_per_message: int) -> list[bytes]:
    """What collect publishes under load: requests of REQUEST_PAGE_VIEWS page views (a page row and a landing row
    each), as many as make `rows_per_message`, put together by the outbox's own message builder."""
    request_rows = 2 * REQUEST_PAGE_VIEWS
    if rows < 1 or rows_per_message < request_rows or rows_per_message % request_rows or rows % rows_per_message:
        raise SystemExit(
            f"--rows-per-message ({rows_per_message}) must be a multiple of {request_rows} (a request's rows) and "
            f"divide --rows ({rows}), which must not be 0"
        )
    service = CollectService(NoPublisher(), {WRITE_KEY: "bench"})  # accept() only: the messages are built here
    kept: list[tuple[dict[str, list[dict[str, Any]]], int]] = []
    for r in range(rows // request_rows):
        calls = [
            {
                "type": "page",
                "messageId": f"{r}-{i}",
                "anonymousId": f"anon-{i}",
                "properties": {"url": f"https://shop.kr/p/{i}?utm_source=naver&utm_medium=cpc", "title": "상품"},
                "context": {"userAgent": UA},
            }
            for i in range(REQUEST_PAGE_VIEWS)
        ]
        accepted = service.accept(
            CollectRequest(endpoint="batch", body=orjson.dumps({"batch": calls}), write_key=WRITE_KEY)
        )
        kept.append((accepted.rows, accepted.accepted))
    per_message = rows_per_message // request_rows
    return [message_of("bench", kept[i : i + per_message])[0] for i in range(0, len(kept), per_message)]


def bench_load(state: Path, total_rows: int, rows_per_message: int) -> dict[str, Any]:
    data = prepared_messages(total_rows, rows_per_message)
    messages = len(data)

    # Baseline: the same messages through LoadService straight into DuckDB, in-process.
    # Configured as the loader's is (CDP_* settings), so that the two differ only by Pub/Sub and HTTP.
    settings = platform_settings()
    with DuckDBWarehouse(
        state / "baseline.duckdb",
        checkpoint_threshold=settings.duckdb_checkpoint_threshold,
        threads=settings.duckdb_load_threads,
        gather_seconds=settings.duckdb_gather_seconds,
    ) as warehouse:
        warehouse.ensure_schema()
        service = LoadService(warehouse)
        started = time.perf_counter()
        for i, payload in enumerate(data):
            service.handle(f"m{i}", payload)
        direct_seconds = time.perf_counter() - started

    stack = LocalStack(
        StackSettings(state_dir=state / "stack", write_keys=f"bench={WRITE_KEY}", collect_port=0)
    ).start()
    try:
        os.environ["PUBSUB_EMULATOR_HOST"] = stack.pubsub_host
        publisher = pubsub_v1.PublisherClient()
        topic = publisher.topic_path(stack.settings.project, stack.settings.collected_topic)
        started = time.perf_counter()
        for future in [publisher.publish(topic, payload) for payload in data]:
            future.result(timeout=60)
        stack.drain(timeout=600)
        pipeline_seconds = time.perf_counter() - started
    finally:
        stack.stop(drain=False)
    with DuckDBWarehouse(stack.warehouse_path, read_only=True) as warehouse:
        loaded = sum(warehouse.query(f"SELECT COUNT(*) AS n FROM raw.{t}")[0]["n"] for t in ("page", "land"))
    if loaded != total_rows:
        raise RuntimeError(f"loaded {loaded} rows, expected {total_rows}")
    return {
        "rows": total_rows,
        "messages": messages,
        "pipeline_rows_per_s": total_rows / pipeline_seconds,
        "direct_rows_per_s": total_rows / direct_seconds,
        "load_ratio": (total_rows / pipeline_seconds) / (total_rows / direct_seconds),
    }


def bench_end_to_end(state: Path, seconds: int, connections: int, threads: int) -> dict[str, Any]:
    """Single-event POSTs through the whole local stack (collect -> Pub/Sub emulator -> push -> load -> DuckDB):
    events/s from the first request until the last one is loaded, against what collect accepted meanwhile."""
    stack = LocalStack(
        StackSettings(
            state_dir=state,
            write_keys=f"bench={WRITE_KEY}",
            collect_port=0,
            scheduler=False,
            function_threads=threads,
        )
    ).start()
    try:
        url = f"{stack.collect_url}/v1/track"
        single = orjson.dumps(event(1))
        warm_up = wrk(url, single, 2, connections)
        stack.drain(timeout=600)
        loader = [stack.processes["load"].process.pid]
        cpu_before = cpu_seconds(loader)
        started = time.perf_counter()
        burst = wrk(url, single, seconds, connections)
        accepting_seconds = time.perf_counter() - started
        drained = stack.drain(timeout=1800)
        total_seconds = time.perf_counter() - started
        loader_cpu = cpu_seconds(loader) - cpu_before
    finally:
        stack.stop(drain=False)
    with DuckDBWarehouse(stack.warehouse_path, read_only=True) as warehouse:
        stored = warehouse.query("SELECT COUNT(*) AS n FROM raw.event")[0]["n"]
    answered = warm_up["requests"] + burst["requests"]
    if stored < answered:  # requests still in flight when wrk stopped may add rows, never remove them
        raise RuntimeError(f"{answered} requests answered 200, only {stored} rows stored")
    return {
        "accepted_per_s": burst["requests"] / accepting_seconds,
        "end_to_end_per_s": burst["requests"] / total_seconds,
        "end_to_end_ratio": accepting_seconds / total_seconds,
        "backlog_seconds": total_seconds - accepting_seconds,
        "loader_cpu_ms_per_event": loader_cpu / burst["requests"] * 1000,
        "events_per_message": stored / drained["published"],
        "seconds": seconds,
    }


def _processes(workers: int) -> str:
    return "1 worker process" if workers == 1 else f"{workers} worker processes"


def report(collects: list[dict[str, Any]], load: dict[str, Any] | None, end_to_end: dict[str, Any] | None) -> str:
    lines = ["| measure | result | baseline (same run) | ratio | target |", "|---|---|---|---|---|"]
    for collect in collects:
        served = _processes(collect["workers"])
        lines += [
            f"| collect, single-event POST, {served} | {collect['collect_rps']:,.0f} req/s, "
            f"p99 {collect['collect_p99_ms']:.1f} ms "
            f"| bare functions-framework handler {collect['bare_rps']:,.0f} req/s, p99 {collect['bare_p99_ms']:.1f} ms "
            f"| {collect['collect_ratio']:.2f} | ratio >= 0.75 |",
            f"| collect, single-event POST, {served} | as above "
            f"| the same bare handler served as collect is (ASGI) {collect['bare_async_rps']:,.0f} req/s, "
            f"p99 {collect['bare_async_p99_ms']:.1f} ms | {collect['collect_ratio_async']:.2f} | - |",
            f"| collect, CPU per single-event request, {served} | function {collect['collect_cpu_us']:,.0f} µs + Pub/Sub emulator "
            f"{collect['emulator_cpu_us']:,.0f} µs, on the same 2 cores | bare handler {collect['bare_cpu_us']:,.0f} µs, "
            f"as ASGI {collect['bare_async_cpu_us']:,.0f} µs | {collect['bare_cpu_us'] / collect['collect_cpu_us']:.2f} | - |",
            f"| collect, /v1/batch of 100 events, {served} | {collect['batch_events_per_s']:,.0f} events/s, p99 {collect['batch_p99_ms']:.1f} ms "
            f"| - | - | >= 20,000 events/s |",
        ]
    if load:
        lines.append(
            f"| load, emulator push -> DuckDB | {load['pipeline_rows_per_s']:,.0f} rows/s ({load['rows']:,} rows) "
            f"| LoadService straight into DuckDB {load['direct_rows_per_s']:,.0f} rows/s | {load['load_ratio']:.2f} "
            f"| >= 50,000 rows/s |"
        )
    if end_to_end:
        lines.append(
            f"| single-event POSTs end to end (collect -> Pub/Sub -> load -> DuckDB), a {end_to_end['seconds']} s burst "
            f"| {end_to_end['end_to_end_per_s']:,.0f} events/s until the last is loaded ({end_to_end['backlog_seconds']:.1f} s "
            f"after the burst; {end_to_end['events_per_message']:.1f} events per message, loader "
            f"{end_to_end['loader_cpu_ms_per_event']:.2f} ms CPU per event) "
            f"| collect accepting {end_to_end['accepted_per_s']:,.0f} events/s meanwhile "
            f"| {end_to_end['end_to_end_ratio']:.2f} | - |"
        )
    return "\n".join(lines)


def _worker_counts(text: str) -> list[int]:
    """--workers: comma-separated whole numbers of 1 or more."""
    return sorted({positive_int(part) for part in text.split(",")})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=32, help="gunicorn threads of the WSGI servers (the Flask baseline)"
    )
    parser.add_argument("--rows", type=int, default=200_000, help="rows the load benchmark loads")
    parser.add_argument(
        "--rows-per-message", type=int, default=MAX_CALL_ROWS, help="as collect's largest messages, by default"
    )
    parser.add_argument(
        "--workers",
        type=_worker_counts,
        default=f"1,{StackSettings().collect_workers}",
        help="collect's (and the bare handler's) worker processes, comma-separated: one run each. The default: one, "
        "as on a 1-vCPU Cloud Run instance, and the local stack's (one a core)",
    )
    parser.add_argument("--only", choices=["collect", "load", "end-to-end"])
    args = parser.parse_args()
    if shutil.which("wrk") is None and args.only != "load":
        raise SystemExit("wrk is missing: `apt-get install wrk` (make bench does it)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cdp-bench-") as tmp:
        collects = [
            bench_collect(
                Path(tmp) / f"collect-{workers}", args.seconds, args.rounds, args.connections, args.threads, workers
            )
            for workers in args.workers
            if args.only in (None, "collect")
        ]
        load = bench_load(Path(tmp) / "load", args.rows, args.rows_per_message) if args.only in (None, "load") else None
        end_to_end = (
            bench_end_to_end(Path(tmp) / "end-to-end", args.seconds + 2, args.connections, args.threads)
            if args.only in (None, "end-to-end")
            else None
        )
    table = report(collects, load, end_to_end)
    print(table)
    (RESULTS / "collect_load.md").write_text(table + "\n")
    (RESULTS / "collect_load.json").write_text(
        json.dumps({"collect": collects, "load": load, "end_to_end": end_to_end}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
