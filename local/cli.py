"""`cdp`: the local platform from the command line: serve, demo, query the warehouse, see and replay rejections
and dead letters, erase a person on request.

Settings are environment variables (prefix CDP_), see `cdp --help` and the README."""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import requests
import sqlglot.errors
from google.api_core import exceptions as api_exceptions
from google.auth.exceptions import DefaultCredentialsError
from pydantic import ValidationError

from infra.declaration import PubSubTrigger, discover
from local.processes import ChildExited
from local.stack import REPO, EmulatorMissing, LocalStack, PortInUse, StackSettings, emulator_clients
from shared.refine.service import STALE_AFTER_HOURS, RefineRequest, refine_status, run_refine
from shared.warehouse import WarehouseUnavailable, open_warehouse
from shared.warehouse.duckdb import DuckDBWarehouse

EPOCH = "2000-01-01T00:00:00Z"


def print_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    if title:
        print(f"\n{title}")
    if not rows:
        print("  (no rows)")
        return
    names = list(rows[0])
    cells = [[_cell(r.get(n)) for n in names] for r in rows]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    print("  " + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _aware_datetime(text: str) -> datetime:
    """An ISO 8601 date or time for the command line; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-23)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more, else a usage error that names the text."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _warehouse(settings: StackSettings) -> Any:
    if settings.warehouse == "duckdb":
        return DuckDBWarehouse(settings.duckdb_file, read_only=True)
    return open_warehouse(settings)


# -- serve ----------------------------------------------------------------------------------
def _until_signalled() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_serve(settings: StackSettings, _: argparse.Namespace) -> int:
    stack = LocalStack(settings).start()
    try:
        site, key = next(iter(settings.sites_by_write_key.items()))[::-1]
        print(f"collect      {stack.collect_url}  (tracking API /v1/*, tracker {stack.collect_url}/tracker.js)")
        print(f"pubsub       {stack.pubsub_host} (emulator)")
        print(f"warehouse    {stack.warehouse_path}")
        print(f"logs         {stack.state_dir / 'logs'}")
        print(
            f'snippet      <script async src="{stack.collect_url}/tracker.js" data-site-key="{key}"></script>  ({site})'
        )
        print("Ctrl-C stops taking events, loads everything accepted, then stops every process.")
        _until_signalled()
    finally:
        print("draining ...", flush=True)
        stack.stop()
        print("stopped: everything accepted is in the warehouse.")
    return 0


# -- demo -----------------------------------------------------------------------------------
def cmd_demo(settings: StackSettings, args: argparse.Namespace) -> int:
    from local.sim import SimConfig, drive, simulate

    # The demo owns a state folder of its own, new each run, so that its counts are its own.
    demo_dir = settings.state_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    # No scheduled runs in the middle of it, and a free port so that it runs beside `make serve`.
    settings = settings.model_copy(
        update={"state_dir": demo_dir, "duckdb_path": None, "scheduler": False, "collect_port": 0}
    )

    write_key = next(iter(settings.sites_by_write_key))
    # History ends at a midnight (UTC): the same seed makes the same shop all day, and the same counts any day
    # (the simulation draws times relative to its end, so only a whole-day shift keeps every draw).
    end = args.end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    shop = simulate(SimConfig(seed=args.seed, customers=args.customers, days=args.days, end=end, write_key=write_key))
    truth_path = settings.state_dir / "sim_truth.json"
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    shop.truth.save(truth_path)
    events = shop.expected.accepted_events
    print(
        f"simulated shop: seed {args.seed}, {args.customers} customers, {args.days} days to {end:%Y-%m-%d %H:%M} UTC, "
        f"{len(shop.requests)} requests carrying {events} valid events (truth: {truth_path})"
    )

    stack = LocalStack(settings).start()
    try:
        print(f"local stack up: collect {stack.collect_url}, Pub/Sub emulator {stack.pubsub_host}")
        report = drive(stack.collect_url, shop.requests, concurrency=args.concurrency)
        print(
            f"sent {report.sent} requests in {report.seconds:.1f}s; HTTP status: "
            + ", ".join(f"{status}×{n}" for status, n in sorted(report.by_status.items()))
        )
    finally:
        started = time.monotonic()
        stack.stop()
        print(f"drained and stopped in {time.monotonic() - started:.1f}s")

    with DuckDBWarehouse(stack.warehouse_path, read_only=True) as warehouse:
        counts = {r["table_name"]: r for r in warehouse.query_file("table_counts", {"since": EPOCH})}
        loaded = [
            {
                "table": name,
                "expected": shop.expected.unique[name],
                "loaded (unique)": counts[name]["unique_events"],
                "stored": counts[name]["stored"],
                "ok": "yes" if counts[name]["unique_events"] == shop.expected.unique[name] else "NO",
            }
            for name in ("user", "page", "land", "conv", "event")
        ]
        (ledger,) = warehouse.query("SELECT COUNT(*) AS messages, SUM(row_count) AS rows FROM ops.load_batches")
        print_table(
            loaded,
            "collected and loaded, per raw table (stored includes SDK retries; later stages see unique); "
            f"{ledger['rows'] or 0:,} rows came in {ledger['messages']:,} Pub/Sub messages "
            f"(concurrent requests of a site share one)",
        )
        rejected = {r["reason_code"]: r for r in warehouse.query_file("rejected_by_reason", {"since": EPOCH})}
        reasons = sorted(set(rejected) | set(shop.expected.rejected))
        print_table(
            [
                {
                    "stage": rejected[c]["stage"] if c in rejected else "",
                    "reason": c,
                    "expected": shop.expected.rejected.get(c, 0),
                    "kept": rejected[c]["records"] if c in rejected else 0,
                    "example": rejected[c]["example_reason"] if c in rejected else "",
                }
                for c in reasons
            ],
            "rejected, kept in ops.rejected with the reason",
        )
    refined_ok = _demo_refine(
        stack.warehouse_path, truth_path, settings.sites_by_write_key[write_key], shop.expected.crawler_events
    )
    ok = (
        refined_ok
        and all(row["ok"] == "yes" for row in loaded)
        and all((rejected[c]["records"] if c in rejected else 0) == shop.expected.rejected.get(c, 0) for c in reasons)
    )
    print("\nall counts match the simulator's ground truth" if ok else "\nCOUNTS DIFFER from the ground truth")
    return 0 if ok else 1


def _demo_refine(warehouse_path: Path, truth_path: Path, site_id: str, crawler_events: int) -> bool:
    """Stage 3 on what was loaded: one full refine, then who-is-who against the simulator's truth."""
    from local.sim.models import Truth
    from local.sim.score import who_is_who

    with DuckDBWarehouse(warehouse_path) as warehouse:
        run = run_refine(warehouse, RefineRequest(mode="full", trigger="demo"))
        print(
            f"\nrefined: run {run.run_id} {run.status} in {run.duration_seconds:.1f}s: {run.events_read:,} events, "
            f"{run.identifiers:,} identifiers, {run.customers:,} customers ({run.merges} merges), "
            f"{run.dropped_links} links dropped by the guards, {run.passes} propagation passes"
        )
        (crawl,) = warehouse.query(
            "SELECT COUNT(*) AS kept, COUNTIF(e.event_id IS NOT NULL) AS refined FROM raw.page_unique AS p "
            "LEFT JOIN refined.events AS e ON e.event_id = p.event_id AND e.source_table = 'page' "
            "WHERE p.device_type = 'bot'"
        )
        crawlers_ok = (crawl["kept"], crawl["refined"]) == (crawler_events, 0)
        print(
            f"crawler page views: {crawl['kept']} kept in raw (the simulator sent {crawler_events}), "
            f"{crawl['refined']} refined {'(as it should be)' if crawlers_ok else '(EXPECTED 0 refined)'}"
        )
        print_table(
            warehouse.query(
                "SELECT reason, COUNT(*) AS links FROM refined.dropped_links GROUP BY reason ORDER BY links DESC"
            ),
            "links the guards dropped, and why",
        )
        print_table(
            warehouse.query(
                "SELECT customer_id, sex, age, device, region, ref_media_fst, ref_media_lst, odr_ltv, rvn_ltv, pn_odr "
                "FROM refined.profiles ORDER BY rvn_ltv DESC NULLS LAST, customer_id LIMIT 5"
            ),
            "a few golden profiles (top lifetime revenue)",
        )
        scores = who_is_who(warehouse, Truth.load(truth_path), site_id)
    print_table(
        [
            {
                "method": m.method,
                "precision": f"{m.precision:.4f}",
                "recall (linkable pairs)": f"{m.recall:.4f}",
                "recall (all pairs)": f"{m.recall_all_pairs:.4f}",
            }
            for m in (scores.refine, scores.baseline)
        ],
        f"who is who, pairwise over {scores.identifiers:,} identifiers of {scores.people} people (shared devices "
        "excluded); linkable pairs: ids a chain of the person's own rows ties",
    )
    return run.status == "succeeded" and crawlers_ok


# -- warehouse ------------------------------------------------------------------------------
def cmd_query(settings: StackSettings, args: argparse.Namespace) -> int:
    if args.sql.startswith("@") and not Path(args.sql[1:]).is_file():
        raise SystemExit(f"no SQL file {args.sql[1:]}")
    sql = Path(args.sql[1:]).read_text() if args.sql.startswith("@") else args.sql
    with _warehouse(settings) as warehouse:
        try:
            rows = warehouse.query(sql)
        except (sqlglot.errors.SqlglotError, duckdb.Error, api_exceptions.GoogleAPICallError) as exc:
            # The user's SQL is wrong (syntax, an unknown table or column): say so, without a traceback.
            print(f"query failed: {exc}", file=sys.stderr)
            return 2
    print_table(rows)
    return 0


def cmd_status(settings: StackSettings, args: argparse.Namespace) -> int:
    """The refined tables' freshness; exit 1 while stale, so that a cron or a monitor can act on it."""
    with _warehouse(settings) as warehouse:
        status = refine_status(warehouse, stale_after_hours=args.stale_after_hours)
    print_table([{"field": k, "value": v} for k, v in status.model_dump().items()], "refine status")
    return 1 if status.stale else 0


def cmd_rejected(settings: StackSettings, args: argparse.Namespace) -> int:
    since = (datetime.now(UTC) - timedelta(days=args.days)).isoformat()
    with _warehouse(settings) as warehouse:
        print_table(
            warehouse.query_file("rejected_by_reason", {"since": since}), f"rejected in the last {args.days} days"
        )
    return 0


def cmd_replay(settings: StackSettings, args: argparse.Namespace) -> int:
    """Send collect-stage rejections again (after a fix: a write key added, a limit raised, a bug mended)."""
    since = (datetime.now(UTC) - timedelta(days=args.days)).isoformat()
    with _warehouse(settings) as warehouse:
        records = warehouse.query_file("rejected_for_replay", {"since": since, "reason_code": args.reason or ""})
    keys = {site: key for key, site in settings.sites_by_write_key.items()}
    sent: dict[int, int] = {}
    skipped = 0
    for record in records:
        key = args.write_key or keys.get(record["site_id"] or "")
        if record["payload_truncated"] or not key or not record["endpoint"]:
            skipped += 1
            continue
        path = f"/v1/{record['endpoint']}"
        response = requests.post(
            f"{args.collect_url}{path}",
            data=record["payload"].encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
                "Content-Type": "application/json",
            },
            timeout=30,
        )
        sent[response.status_code] = sent.get(response.status_code, 0) + 1
    print(
        f"replayed {sum(sent.values())} of {len(records)} records ({skipped} skipped: truncated, or no write key); "
        "status: " + (", ".join(f"{s}×{n}" for s, n in sorted(sent.items())) or "none")
    )
    return 0


def cmd_run(settings: StackSettings, args: argparse.Namespace) -> int:
    """Call a step of the running stack (`serve`) as its trigger would: e.g. `run refine` now."""
    address = settings.state_dir / "stack.json"
    if not address.exists():
        raise SystemExit(f"no running stack ({address} is missing): start one with `make serve`")
    urls = json.loads(address.read_text())["urls"]
    if args.step not in urls:
        raise SystemExit(f"no step {args.step!r}; the steps are {sorted(urls)}")
    try:
        body = json.loads(args.body)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--body is not JSON: {exc}") from None
    response = requests.post(f"{urls[args.step]}/", json=body, timeout=args.timeout)
    print(f"{args.step}: HTTP {response.status_code}\n{response.text}")
    return 0 if response.ok else 1


# -- dead letters ---------------------------------------------------------------------------
def cmd_dead_letters(settings: StackSettings, args: argparse.Namespace) -> int:
    """Messages Pub/Sub gave up pushing to an event step, held in its dead-letter subscription: shown, or with
    `--replay` published again to the step's topic (shared/deadletters.py). The running local stack's emulator,
    or with `--cloud --project P` Pub/Sub itself (application default credentials)."""
    from google.cloud import pubsub_v1

    from shared.deadletters import look, replay

    triggers = {n: d.trigger for n, d in discover(REPO / "functions").items() if isinstance(d.trigger, PubSubTrigger)}
    if args.step and args.step not in triggers:
        raise SystemExit(f"no event step {args.step!r}; the event steps are {sorted(triggers)}")
    if args.cloud:
        if not args.project:
            raise SystemExit("--cloud needs --project: the project the platform is deployed in")
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        project = args.project
        try:
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        except DefaultCredentialsError:
            raise SystemExit("no Google credentials: run `gcloud auth application-default login`") from None
    else:
        address = settings.state_dir / "stack.json"
        if not address.exists():
            raise SystemExit(f"no running stack ({address} is missing): start one with `make serve`, or use --cloud")
        running = json.loads(address.read_text())
        if "pubsub" not in running:
            raise SystemExit(f"{address} names no emulator: the stack predates dead letters; restart it")
        project = args.project or running.get("project", settings.project)
        publisher, subscriber = emulator_clients(running["pubsub"])
    failed = 0
    try:
        for step in [args.step] if args.step else sorted(triggers):
            trigger = triggers[step]
            hold = subscriber.subscription_path(project, trigger.dead_letter_hold(step))
            try:
                if args.replay:
                    topic = publisher.topic_path(project, trigger.topic)
                    result = replay(publisher, subscriber, hold, topic, args.limit)
                    print(result.model_dump_json())
                    failed += result.failed
                    continue
                held = look(subscriber, hold, args.limit or 100)
            except (api_exceptions.NotFound, api_exceptions.PermissionDenied) as exc:
                raise SystemExit(f"{hold}: {exc.message} (is the step deployed to project {project!r}?)") from None
            rows = [
                {
                    "message_id": m.message_id,
                    "published": m.publish_time,
                    "attempts": m.delivery_attempts,
                    "bytes": m.size,
                    "attributes": json.dumps(m.attributes, ensure_ascii=False),
                }
                for m in held
            ]
            print_table(rows, f"{step}: {len(held)} message(s) held in {trigger.dead_letter_hold(step)}")
    finally:
        subscriber.close()
    return 1 if failed else 0


# -- deletion on request ------------------------------------------------------------------
# One option per identifier type (--user-id is identifier_type user_id, ...); exactly one is given.
ERASE_BY = ("email", "phone", "user_id", "anonymous_id", "crm_id")


def _asker() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


def cmd_erase(settings: StackSettings, args: argparse.Namespace) -> int:
    """Erase a person from the warehouse (erase_person, as the erase step does); the result as JSON on stdout."""
    from shared.refine.erase import ErasureBusy, ErasureRequest, describe, erase_person

    kind = next(k for k in ERASE_BY if getattr(args, k) is not None)
    try:
        request = ErasureRequest(
            site_id=args.site,
            identifier_type=kind,
            value=getattr(args, kind),
            requested_by=args.requested_by or _asker(),
        )
    except ValidationError as exc:
        print(f"cdp erase: error: {describe(exc)}", file=sys.stderr)
        return 2
    if settings.warehouse == "duckdb" and not settings.duckdb_file.exists():
        # Opening it for writing would create an empty warehouse and "erase" from that.
        raise SystemExit(f"no warehouse at {settings.duckdb_file}: run the stack (or `cdp demo`) first")
    warehouse = DuckDBWarehouse(settings.duckdb_file) if settings.warehouse == "duckdb" else open_warehouse(settings)
    try:
        result = erase_person(warehouse, request, caller=_asker())
    except (ErasureBusy, WarehouseUnavailable) as exc:
        raise SystemExit(f"cdp erase: not now: {exc}") from None
    finally:
        warehouse.close()
    print(result.model_dump_json(indent=2))
    if result.customer_id is None and result.rows_erased == 0:
        print(
            f"note: nothing of this identifier was found at site {args.site!r}; it is tombstoned all the same",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cdp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the local stack until Ctrl-C (drains on exit)")
    demo = sub.add_parser("demo", help="run the synthetic shop through the local stack and report what landed")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--customers", type=int, default=300)
    demo.add_argument("--days", type=int, default=60)
    demo.add_argument(
        "--end",
        type=_aware_datetime,
        default=None,
        help="last moment simulated, ISO 8601 (default: today's 00:00 UTC)",
    )
    demo.add_argument("--concurrency", type=int, default=8)
    query = sub.add_parser("query", help="run GoogleSQL against the warehouse (`@file.sql` reads a file)")
    query.add_argument("sql")
    status = sub.add_parser("status", help="refine's freshness: last run, last success, profiles; exit 1 if stale")
    status.add_argument("--stale-after-hours", type=int, default=STALE_AFTER_HOURS)
    rejected = sub.add_parser("rejected", help="rejected records by stage and reason")
    rejected.add_argument("--days", type=int, default=30)
    replay = sub.add_parser("replay", help="send collect-stage rejections to collect again")
    replay.add_argument("--reason", help="only this reason_code")
    replay.add_argument("--days", type=int, default=30)
    replay.add_argument("--write-key", help="write key to use (default: the site's own from CDP_WRITE_KEYS)")
    replay.add_argument("--collect-url", default="http://127.0.0.1:8080")
    dead = sub.add_parser(
        "dead-letters", help="messages Pub/Sub gave up pushing to an event step; --replay sends them again"
    )
    dead.add_argument("--step", help="one event step (default: every one)")
    dead.add_argument("--replay", action="store_true", help="publish them again to the step's topic, then ack them")
    dead.add_argument("--limit", type=positive_int, default=None, help="at most this many (default: all; 100 shown)")
    dead.add_argument("--cloud", action="store_true", help="Pub/Sub itself rather than the running stack's emulator")
    dead.add_argument("--project", help="the project (required with --cloud)")
    run = sub.add_parser("run", help="call a step of the running stack now, as its schedule would")
    run.add_argument("step")
    run.add_argument("--body", default="{}", help="JSON body")
    run.add_argument("--timeout", type=float, default=1800)
    erase = sub.add_parser(
        "erase",
        help="delete a person on request (GDPR / PIPA), found by one identifier; tombstones their ids",
        description="Erase a person, found by one identifier, from the raw and refined tables of the warehouse "
        "and tombstone every id of theirs (docs/refine.md). Prints the result as JSON.",
    )
    erase.add_argument("--site", required=True, help="site id")
    who = erase.add_mutually_exclusive_group(required=True)
    for kind in ERASE_BY:
        who.add_argument(f"--{kind.replace('_', '-')}", dest=kind, metavar="VALUE")
    erase.add_argument("--requested-by", metavar="WHO", help="who asked (a person, a ticket); default cli:<login name>")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = StackSettings()
    except ValidationError as exc:  # a CDP_* variable that does not parse: name it, no traceback
        for error in exc.errors():
            names = ", ".join(f"CDP_{str(part).upper()}" for part in error["loc"]) or "settings"
            print(f"bad setting {names}: {error['msg']} (got {error.get('input')!r})", file=sys.stderr)
        return 2
    commands = {
        "serve": cmd_serve,
        "demo": cmd_demo,
        "query": cmd_query,
        "status": cmd_status,
        "rejected": cmd_rejected,
        "replay": cmd_replay,
        "run": cmd_run,
        "dead-letters": cmd_dead_letters,
        "erase": cmd_erase,
    }
    try:
        return commands[args.command](settings, args)
    except requests.ConnectionError as exc:  # replay, run: the stack (or the given URL) is not there
        url = exc.request.url if exc.request is not None else "the stack"
        print(f"cannot reach {url}: is the stack running (`make serve`)?", file=sys.stderr)
        return 2
    except (EmulatorMissing, PortInUse, ChildExited) as exc:  # serve, demo: the stack cannot start here
        print(f"the local stack cannot start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
