"""Refine benchmark: 1M, 3M and 10M synthetic raw events (about 100k, 300k and 1M customers) on DuckDB.

Each size runs in its own process (so that its peak memory is its own): synthetic rows are generated inside
DuckDB straight into the raw tables, a bare group-by of the same events is timed as the yardstick, then a
full refine runs. Reported: refine seconds, bare group-by seconds, their ratio (target <= 15x, and 10M in
<= 30 s), events/s, growth between sizes, peak RSS, the three slowest steps against the group-by, and the
floor: the least work any refine of these events has to do, timed after the run on the same file.

    .venv/bin/python -m bench.refine_bench --sizes 1000000
    .venv/bin/python -m bench.refine_bench                    # 1M, 3M, 10M
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90

# Common columns of every raw table, from the synthetic index i, customer c and time t (seconds from T0: a
# customer's events fall into two visits three days apart, each within 25 minutes). Customers are keyed by c;
# a third of them use two devices; 75% are known (user id u<c>); 1 event in 97 carries a junk anonymous id;
# customers with c % 500 = 1 share their first device with customer c + 1 (both log in on it).
_COMMON = """
    'e' || CAST(i AS VARCHAR) AS event_id,
    'bench-shop' AS site_id,
    {call} AS call,
    TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(CAST(t AS BIGINT)) AS event_time,
    TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(CAST(t AS BIGINT) + 1) AS received_at,
    NULL::TIMESTAMPTZ AS sent_at, NULL::TIMESTAMPTZ AS original_timestamp,
    CASE WHEN i % 97 = 0 THEN 'undefined'
         ELSE 'a' || CAST(c * 2 + (CASE WHEN c % 3 = 0 THEN i % 2 ELSE 0 END) AS VARCHAR) END AS anonymous_id,
    CASE WHEN c % 4 <> 0 AND ({known}) THEN 'u' || CAST(
           CASE WHEN c % 500 = 1 AND i % 2 = 0 THEN c - 1 ELSE c END AS VARCHAR) END AS user_id,
    NULL AS ip, NULL AS user_agent,
    CASE i % 3 WHEN 0 THEN 'mobile' WHEN 1 THEN 'desktop' ELSE 'tablet' END AS device_type,
    NULL AS device,
    CASE i % 3 WHEN 0 THEN 'iOS' WHEN 1 THEN 'Windows' ELSE 'Android' END AS os, NULL AS os_version,
    CASE i % 2 WHEN 0 THEN 'Chrome' ELSE 'Safari' END AS browser, NULL AS browser_version,
    'ko-KR' AS locale, NULL AS timezone, 'KR' AS country,
    CASE c % 4 WHEN 0 THEN '11' WHEN 1 THEN '41' WHEN 2 THEN '26' ELSE '28' END AS region, NULL AS city,
    'https://shop.kr/p/' || CAST(i % 500 AS VARCHAR) AS page_url, NULL AS page_path, NULL AS library,
    '{{}}' AS properties, '{{}}' AS raw
"""

# table -> (share of events in per-mille buckets [lo, hi), call, when the user id is sent, own columns)
_TABLES: dict[str, tuple[int, int, str, str, str]] = {
    "user": (
        0,
        50,
        "'identify'",
        "TRUE",
        """
        NULL AS previous_id, NULL AS group_id,
        CASE WHEN c % 4 <> 0 THEN CASE c % 3 WHEN 0 THEN 'User' || CAST(c AS VARCHAR) || '@Mail.co.kr'
             ELSE ' user' || CAST(c AS VARCHAR) || '@mail.co.kr' END END AS email,
        CASE WHEN c % 4 <> 0 THEN CASE c % 3
             WHEN 0 THEN '010-' || lpad(CAST(c % 10000 AS VARCHAR), 4, '0') || '-' || lpad(CAST((c // 10000) % 10000 + 1 AS VARCHAR), 4, '0')
             WHEN 1 THEN '+82 10 ' || lpad(CAST(c % 10000 AS VARCHAR), 4, '0') || ' ' || lpad(CAST((c // 10000) % 10000 + 1 AS VARCHAR), 4, '0')
             ELSE '010' || lpad(CAST(c % 10000 AS VARCHAR), 4, '0') || lpad(CAST((c // 10000) % 10000 + 1 AS VARCHAR), 4, '0') END
             END AS phone,
        NULL AS name, NULL AS first_name, NULL AS last_name,
        CASE c % 3 WHEN 0 THEN 'M' WHEN 1 THEN '여' END AS gender,
        CAST(1950 + c % 55 AS BIGINT) AS birth_year,
        CASE WHEN c % 10 = 0 THEN 'CRM' || CAST(c AS VARCHAR) END AS crm_id,
        CASE c % 4 WHEN 1 THEN '서울특별시 강남구' WHEN 2 THEN '경기도 성남시' END AS address""",
    ),
    "land": (
        50,
        150,
        "'page'",
        "i % 3 = 0",
        """
        NULL AS referrer, NULL AS referrer_host,
        CASE i % 5 WHEN 0 THEN 'ad' WHEN 1 THEN 'search' WHEN 2 THEN 'social' WHEN 3 THEN 'campaign' ELSE 'direct' END AS medium,
        'google' AS source, CASE WHEN i % 5 IN (0, 3) THEN 'spring' || CAST(i % 4 AS VARCHAR) END AS campaign,
        NULL AS utm_source, NULL AS utm_medium, NULL AS utm_campaign, NULL AS utm_term, NULL AS utm_content,
        NULL AS click_id_type, CASE WHEN i % 5 = 0 THEN 'gclid' || CAST(i AS VARCHAR) END AS click_id,
        NULL AS search_engine, CASE WHEN i % 5 = 1 THEN 'keyword' || CAST(i % 300 AS VARCHAR) END AS search_keyword""",
    ),
    "page": (
        150,
        750,
        "'page'",
        "i % 3 = 0",
        """
        NULL AS name, NULL AS category, NULL AS title, NULL AS referrer, NULL AS search""",
    ),
    "conv": (
        750,
        780,
        "'track'",
        "TRUE",
        """
        CASE WHEN i % 10 = 0 THEN 'signup' ELSE 'order' END AS conv_type, 'Order Completed' AS event_name,
        'o' || CAST(i AS VARCHAR) AS order_id, CAST(1000 * (1 + i % 90) AS DOUBLE) AS revenue, 'KRW' AS currency,
        NULL AS products, 'Item ' || CAST(i % 200 AS VARCHAR) AS product_names""",
    ),
    "event": (
        780,
        1000,
        "'track'",
        "i % 3 = 0",
        """
        'Product Viewed' AS event_name,
        CASE WHEN i % 4 = 0 THEN 'search' WHEN i % 4 = 1 THEN 'add_to_cart' ELSE 'product_view' END AS event_type,
        NULL AS product_id, 'Item ' || CAST(i % 200 AS VARCHAR) AS product_name, NULL AS category,
        CAST(1000 * (1 + i % 90) AS DOUBLE) AS price,
        CASE WHEN i % 4 = 0 THEN 'query' || CAST(i % 150 AS VARCHAR) END AS search_keyword""",
    ),
}


def generate(con: Any, events: int) -> None:
    """`events` raw rows over the five tables, about events / 10 customers, generated inside DuckDB."""
    customers = max(events // 10, 1)
    for table, (lo, hi, call, known, own) in _TABLES.items():
        common = _COMMON.format(call=call, known=known)
        span = (DAYS - 4) * 86400
        con.execute(
            f"""INSERT INTO raw."{table}" BY NAME
            SELECT {common}, {own}
            FROM (SELECT i, c, hash(c * 11 + 1) % {span} + (hash(i * 3 + 1) % 2) * 259200 + hash(i * 5 + 7) % 1500 AS t
                  FROM (SELECT range AS i, hash(range * 13 + 5) % {customers} AS c FROM range({events})))
            WHERE i % 1000 >= {lo} AND i % 1000 < {hi}"""
        )


BARE_GROUP_BY = """
SELECT anonymous_id, COUNT(*) AS events, MIN(event_time) AS first_seen, MAX(event_time) AS last_seen
FROM (SELECT anonymous_id, event_time FROM raw."user" UNION ALL SELECT anonymous_id, event_time FROM raw.page
      UNION ALL SELECT anonymous_id, event_time FROM raw.land UNION ALL SELECT anonymous_id, event_time FROM raw.conv
      UNION ALL SELECT anonymous_id, event_time FROM raw.event)
GROUP BY anonymous_id
"""


# The floor: work that every shape of refine has to do at least, none of its logic. Storing the run's
# deduplicated events once more (the same rows, columns and compression as refined.events), one window over
# the devices (sessions take three over the same order, then group the sessions), and one group-by per
# identity node with eight aggregates (profiles take about twenty, then group per customer). Dedupe, the
# identity graph, PII and the other tables come on top.
FLOOR_STEPS = {
    "store_events": "INSERT INTO bench_floor.events SELECT * FROM refined.events",
    "one_window": """
        CREATE TEMP TABLE floor_window AS
        SELECT site_id, device_key, epoch_us(event_time)
            - LAG(epoch_us(event_time)) OVER (PARTITION BY site_id, device_key ORDER BY event_time) AS gap_us
        FROM refined.events""",
    "one_group_by": """
        CREATE TEMP TABLE floor_group_by AS
        SELECT node, MIN(event_time), MAX(event_time), MAX_BY(device_type, event_time), MAX_BY(os, event_time),
            MAX_BY(browser, event_time), MAX_BY(region, event_time), COUNT_IF(source_table = 'page'),
            COUNT_IF(source_table = 'event')
        FROM refined.events GROUP BY node""",
}


def measure_floor(con: Any) -> dict[str, float]:
    """Seconds of each FLOOR_STEPS step on a refined file; what they made is dropped again."""
    from shared.schema import table

    floor_events = table("refined.events").model_copy(update={"dataset": "bench_floor"})
    con.execute("CREATE SCHEMA bench_floor")
    seconds = {}
    try:  # a step that fails leaves no copy of the events in a kept file (run_one(keep=...))
        con.execute(floor_events.duckdb_ddl())
        for step, sql in FLOOR_STEPS.items():
            started = time.perf_counter()
            con.execute(sql)
            seconds[step] = round(time.perf_counter() - started, 3)
    finally:
        con.execute("DROP SCHEMA bench_floor CASCADE")
        con.execute("DROP TABLE IF EXISTS floor_window")
        con.execute("DROP TABLE IF EXISTS floor_group_by")
    return seconds


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_one(events: int, keep: Path | None = None) -> dict[str, Any]:
    from shared.refine.service import RefineRequest, run_refine
    from shared.warehouse.duckdb import DuckDBWarehouse

    folder = Path(tempfile.mkdtemp(prefix="refine-bench-")) if keep is None else keep
    warehouse = DuckDBWarehouse(folder / "bench.duckdb")
    warehouse.ensure_schema()
    con = warehouse._connect()
    started = time.perf_counter()
    generate(con, events)
    generate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE bare AS {BARE_GROUP_BY}")
    bare_seconds = time.perf_counter() - started
    con.execute("DROP TABLE bare")
    now = T0 + timedelta(days=DAYS + 1)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    run = run_refine(warehouse, RefineRequest(mode="full", now=now, trigger="bench"))
    refine_seconds = time.perf_counter() - started
    refine_cpu_seconds = _cpu_seconds() - cpu_started
    started = time.perf_counter()
    rerun = run_refine(warehouse, RefineRequest(mode="incremental", overlap_hours=48, now=now, trigger="bench"))
    incremental_seconds = time.perf_counter() - started
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # the runs', not the floor's
    floor = measure_floor(warehouse._connect())
    warehouse.close()
    if keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "events": events,
        "events_read": run.events_read,
        "customers": run.customers,
        "profiles": run.profiles,
        "identifiers": run.identifiers,
        "dropped_links": run.dropped_links,
        "passes": run.passes,
        "generate_seconds": round(generate_seconds, 2),
        "bare_group_by_seconds": round(bare_seconds, 3),
        "refine_seconds": round(refine_seconds, 2),
        # CPU of every DuckDB thread: divided by the cores, the least wall time this shape of run can take here
        "refine_cpu_seconds": round(refine_cpu_seconds, 2),
        "ratio": round(refine_seconds / bare_seconds, 1),
        "events_per_second": round(events / refine_seconds),
        "incremental_2d_seconds": round(incremental_seconds, 2),
        "incremental_events": rerun.events_read,
        "peak_rss_mb": peak_rss_mb,
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews the timings
        "floor_seconds": floor,
        "floor_ratio": round(sum(floor.values()) / bare_seconds, 1),
        "slowest_steps": dict(sorted(run.step_seconds.items(), key=lambda kv: -kv[1])[:8]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,3000000,10000000", help="comma separated event counts")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size, JSON out
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one)))
        return 0
    results = []
    for size in (int(s.replace("_", "")) for s in args.sizes.split(",")):
        child = subprocess.run(
            [sys.executable, "-m", "bench.refine_bench", "--one", str(size)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return child.returncode
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(result)
        print(
            f"{size:>11,} events  {result['customers']:>9,} customers  refine {result['refine_seconds']:7.2f} s  "
            f"(CPU {result['refine_cpu_seconds']:7.2f} s)  "
            f"bare group-by {result['bare_group_by_seconds']:6.3f} s  ratio {result['ratio']:5.1f}x  "
            f"incremental(2d) {result['incremental_2d_seconds']:6.2f} s  peak {result['peak_rss_mb']:,} MB  "
            f"load {result['load_average_1m']}",
            flush=True,
        )
        # A step alone past 15x the group-by shows what the target asks of the run's shape, not of tuning.
        bare = result["bare_group_by_seconds"]
        steps = list(result["slowest_steps"].items())[:3]
        print("    slowest steps: " + ", ".join(f"{name} {sec:.2f} s ({sec / bare:.1f}x)" for name, sec in steps))
        floor = result["floor_seconds"]
        print(
            f"    floor {sum(floor.values()):.2f} s ({result['floor_ratio']:.1f}x): "
            + ", ".join(f"{name} {sec:.2f} s ({sec / bare:.1f}x)" for name, sec in floor.items())
        )
    for before, after in itertools.pairwise(results):
        growth = (after["refine_seconds"] / before["refine_seconds"]) / (after["events"] / before["events"])
        print(
            f"growth {before['events']:,} -> {after['events']:,}: time ratio / size ratio = {growth:.2f} (1.0 is linear)"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
