"""The command line as a user runs it: `serve` until SIGTERM (which drains), `query`, `rejected`, `replay`, `erase`."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
import requests

from local.cli import _asker, _aware_datetime
from local.processes import free_port
from local.stack import REPO
from shared.refine.service import RefineRequest, run_refine
from shared.warehouse.duckdb import DuckDBWarehouse
from tests.refine_truth import SITE, T0, RawEvents

pytestmark = pytest.mark.integration


def kill_tree(process: subprocess.Popen[str]) -> None:
    """A `serve` the test did not stop cleanly (it failed midway) goes with everything it started, so that no
    emulator or function server outlives the test."""
    if process.poll() is not None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    process.kill()
    process.wait(timeout=30)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_drains_on_sigterm_then_query_rejected_and_replay(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CDP_STATE_DIR": str(tmp_path),
        "CDP_COLLECT_PORT": "0",
        "CDP_WRITE_KEYS": "shop=wk_cli",
        "CDP_SCHEDULER": "false",
        "PYTHONPATH": str(REPO),
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "local.cli", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        address = tmp_path / "stack.json"
        deadline = time.monotonic() + 60
        while not address.exists():
            assert serve.poll() is None and time.monotonic() < deadline, serve.stdout.read() if serve.stdout else ""
            time.sleep(0.1)
        collect = json.loads(address.read_text())["urls"]["collect"]
        children = psutil.Process(serve.pid).children(recursive=True)
        assert len(children) >= 3  # the emulator and the two function servers (and their workers)
        batch = {"batch": [{"type": "track", "anonymousId": "cli", "event": "Product Viewed"} for _ in range(300)]}
        assert requests.post(f"{collect}/v1/batch", json=batch, auth=("wk_cli", ""), timeout=30).status_code == 200
        # a rejection that a later fix makes acceptable: an event before its write key was known
        refused = requests.post(
            f"{collect}/v1/track", json={"anonymousId": "late", "event": "x"}, auth=("wk_new", ""), timeout=30
        )
        assert refused.status_code == 401
        serve.send_signal(signal.SIGTERM)  # no drain call: stopping must drain
        out, _ = serve.communicate(timeout=120)
    finally:
        kill_tree(serve)
    assert serve.returncode == 0, out
    assert "everything accepted is in the warehouse" in out
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb", read_only=True) as warehouse:
        assert warehouse.query("SELECT COUNT(*) AS n FROM raw.event") == [{"n": 300}]

    listed = cli("query", "SELECT event_name, COUNT(*) AS n FROM raw.event GROUP BY 1", env=env)
    assert listed.returncode == 0 and "Product Viewed" in listed.stdout and "300" in listed.stdout
    rejected = cli("rejected", env=env)
    assert "unknown_write_key" in rejected.stdout

    # The fix: the site's write key is added. Replay sends the kept payload again with it.
    fixed = {**env, "CDP_WRITE_KEYS": "shop=wk_cli,late-shop=wk_new"}
    serve = subprocess.Popen(
        [sys.executable, "-m", "local.cli", "serve"],
        env=fixed,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while not (tmp_path / "stack.json").exists():
            assert serve.poll() is None
            time.sleep(0.1)
        collect = json.loads((tmp_path / "stack.json").read_text())["urls"]["collect"]
        replayed = cli(
            "replay", "--reason", "unknown_write_key", "--write-key", "wk_new", "--collect-url", collect, env=fixed
        )
        assert "replayed 1 of 1 records (0 skipped: truncated, or no write key); status: 200×1" in replayed.stdout, (
            replayed.stdout + replayed.stderr
        )
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=120)
    finally:
        kill_tree(serve)
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb", read_only=True) as warehouse:
        late = warehouse.query("SELECT site_id FROM raw.event WHERE anonymous_id = 'late'")
    assert late == [{"site_id": "late-shop"}]


def test_erase_deletes_a_person_from_the_local_warehouse_and_refuses_bad_arguments(tmp_path: Path) -> None:
    env = {**os.environ, "CDP_STATE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    # Given a refined warehouse with two people (what `serve` and a refine run leave behind)
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb") as warehouse:
        warehouse.ensure_schema()
        raw = RawEvents()
        raw.page(T0, "dev-a", "U1")
        raw.identify(T0 + timedelta(minutes=1), "dev-a", "U1", email="kim@mail.co.kr", phone="010-2222-3333")
        raw.page(T0 + timedelta(minutes=2), "dev-z", "U2")
        raw.insert(warehouse)
        run_refine(warehouse, RefineRequest(mode="range", start=T0 - timedelta(days=1), end=T0 + timedelta(days=1)))

    # bad arguments: exit 2 with the reason, nothing erased
    for args, says in [
        (["--site", SITE], "one of the arguments --email --phone --user-id --anonymous-id --crm-id is required"),
        (["--site", SITE, "--email", "kim@mail.co.kr", "--user-id", "U1"], "not allowed with argument"),
        (["--site", SITE, "--anonymous-id", "undefined"], "value: 'undefined' is a junk identifier"),
        (["--site", SITE, "--email", "kim@mail"], "value: 'kim@mail' is not a usable email"),
        (["--email", "kim@mail.co.kr"], "the following arguments are required: --site"),
    ]:
        refused = cli("erase", *args, env=env)
        assert refused.returncode == 2 and says in refused.stderr, (args, refused.stderr)
        assert refused.stdout == ""

    # When erased by the phone, written another way
    erased = cli("erase", "--site", SITE, "--phone", "+82 10 2222 3333", "--requested-by", "dpo@shop.kr", env=env)

    # Then the result is JSON on stdout, the person's rows are gone, tombstoned with who asked; U2 stays
    assert erased.returncode == 0, erased.stderr
    result = json.loads(erased.stdout)
    assert result["node"] == f"{SITE}|p:+821022223333" and result["identifiers"] == 4  # dev-a, U1, email, phone
    assert result["rows_erased"] > 0 and result["customer_id"]
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb", read_only=True) as warehouse:
        for table in ("user", "page", "land"):
            left = warehouse.query(f"SELECT COUNT(*) AS n FROM raw.`{table}` WHERE anonymous_id = 'dev-a'")
            assert left == [{"n": 0}], table
        assert warehouse.query("SELECT COUNT(*) AS n FROM raw.page WHERE anonymous_id = 'dev-z'") == [{"n": 1}]
        assert warehouse.query("SELECT user_id FROM refined.profiles") == [{"user_id": "U2"}]
        tombstones = warehouse.query(
            "SELECT DISTINCT request_id, requested_by, rows_erased, caller FROM refined.erasures"
        )
    assert tombstones == [
        {
            "request_id": result["request_id"],
            "requested_by": "dpo@shop.kr",
            "rows_erased": result["rows_erased"],
            "caller": _asker(),  # who ran the command, beside whom they say asked
        }
    ]

    # Who asked defaults to the login name; an identifier nobody carries is tombstoned, with a note saying so
    unknown = cli("erase", "--site", SITE, "--user-id", "U404", env=env)
    assert unknown.returncode == 0 and json.loads(unknown.stdout)["rows_erased"] == 0
    assert "nothing of this identifier was found" in unknown.stderr
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb", read_only=True) as warehouse:
        asked = warehouse.query(
            "SELECT requested_by FROM refined.erasures WHERE node_hash = @h",
            {"h": hashlib.sha256(f"{SITE}|u:U404".encode()).hexdigest()},
        )
    assert asked[0]["requested_by"].startswith("cli")


def test_demo_end_takes_an_iso_date_or_time_and_names_a_bad_one() -> None:
    assert _aware_datetime("2026-11-23") == datetime(2026, 11, 23, tzinfo=UTC)
    assert _aware_datetime("2026-11-23T09:00:00+09:00") == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="'23/11/2026' is not an ISO 8601 date"):
        _aware_datetime("23/11/2026")


def test_query_names_bad_sql_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "CDP_STATE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb") as warehouse:
        warehouse.ensure_schema()
    for sql, named in (("SELEC 1", "Unexpected token"), ("SELECT COUNT(*) FROM raw.nope", "nope does not exist")):
        done = cli("query", sql, env=env)
        assert done.returncode == 2 and "query failed:" in done.stderr and named in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    good = cli("query", "SELECT 1 AS one", env=env)
    assert (good.returncode, good.stdout.split()) == (0, ["one", "---", "1"])


def test_a_stack_that_is_gone_is_named_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "CDP_STATE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    gone = f"http://127.0.0.1:{free_port()}"  # a stack.json left by a stack that was killed
    (tmp_path / "stack.json").write_text(json.dumps({"pid": 1, "urls": {"refine": gone}}))
    done = cli("run", "refine", env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"cannot reach {gone}/: is the stack running" in done.stderr


def test_serve_names_a_fixed_port_that_is_taken_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, "CDP_STATE_DIR": str(tmp_path), "CDP_COLLECT_PORT": str(port), "PYTHONPATH": str(REPO)}
        done = cli("serve", env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"port {port} (CDP_COLLECT_PORT) is in use by another process" in done.stderr
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_a_setting_that_does_not_parse_is_named_with_its_variable(tmp_path: Path) -> None:
    env = {**os.environ, "CDP_STATE_DIR": str(tmp_path), "CDP_COLLECT_PORT": "eighty", "PYTHONPATH": str(REPO)}
    done = cli("query", "SELECT 1", env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "bad setting CDP_COLLECT_PORT: Input should be a valid integer" in done.stderr
    assert "(got 'eighty')" in done.stderr


def test_status_says_whether_profiles_are_stale_and_exits_1_when_they_are(tmp_path: Path) -> None:
    env = {**os.environ, "CDP_STATE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb") as warehouse:
        warehouse.ensure_schema()
    empty = cli("status", env=env)
    assert empty.returncode == 1 and "stale" in empty.stdout and "True" in empty.stdout
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb") as warehouse:
        raw = RawEvents()
        raw.page(T0, "dev-a", "U1")
        raw.insert(warehouse)
        run = run_refine(warehouse, RefineRequest(mode="full", trigger="test"))
    fresh = cli("status", env=env)
    assert fresh.returncode == 0 and run.run_id in fresh.stdout
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in fresh.stdout.splitlines()[3:] if line.strip()}
    assert (rows["stale"], rows["profiles"], rows["last_run_status"]) == ("False", "1", "succeeded")
