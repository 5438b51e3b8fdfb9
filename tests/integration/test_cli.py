"""The command line as a user runs it: `serve` until SIGTERM (which drains), `query`, `rejected`, `replay`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from local.stack import REPO
from shared.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.integration


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
        if serve.poll() is None:
            serve.kill()
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
        if serve.poll() is None:
            serve.kill()
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb", read_only=True) as warehouse:
        late = warehouse.query("SELECT site_id FROM raw.event WHERE anonymous_id = 'late'")
    assert late == [{"site_id": "late-shop"}]
