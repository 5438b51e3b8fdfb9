"""Static checks of the website tracker: it parses, stays small and self-contained, and the collect
function serves it. Its behaviour is tested in a real browser (tests/browser)."""

from __future__ import annotations

import re
import shutil
import subprocess

import functions_framework
import pytest
from starlette.testclient import TestClient

from shared.collect.http import TRACKER_FILE

SOURCE = TRACKER_FILE.read_text(encoding="utf-8")


def test_the_tracker_is_small_and_self_contained() -> None:
    assert len(SOURCE.encode()) < 24 * 1024
    # a classic script: no modules, no bundler, no third-party code
    assert not re.search(r"^\s*(import|export)\s", SOURCE, re.MULTILINE)
    assert "require(" not in SOURCE
    assert re.search(r"var VERSION = '\d+\.\d+\.\d+';", SOURCE)
    assert "var LIBRARY = 'cdp-tracker';" in SOURCE


def test_the_tracker_sends_what_the_collector_reads() -> None:
    # text/plain bodies (no CORS preflight) with the write key inside, to the batch and pixel endpoints
    assert "'/v1/batch'" in SOURCE and "'/v1/pixel/batch?data='" in SOURCE
    assert "type: 'text/plain'" in SOURCE and "'Content-Type': 'text/plain'" in SOURCE
    assert '{"writeKey":' in SOURCE
    assert "keepalive: true" in SOURCE
    assert "SameSite=Lax" in SOURCE and "'_cdp_aid'" in SOURCE


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the syntax check needs it")
def test_the_tracker_parses() -> None:
    result = subprocess.run(
        ["node", "--check", str(TRACKER_FILE)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_collect_function_serves_the_tracker() -> None:
    app = functions_framework.create_app(target="collect", source="functions/collect/main.py")
    response = TestClient(app).get("/tracker.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.content == TRACKER_FILE.read_bytes()
