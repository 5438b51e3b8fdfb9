"""Shared fixtures. The local stack is started once per test session (about 2 s) and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack, StackSettings
from shared.warehouse.duckdb import DuckDBWarehouse

WRITE_KEY = "wk_test_shop"
SITE_ID = "test-shop"


class RunningStack:
    """The started stack plus the helpers tests need: its URL, the write key, and warehouse reads."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.collect_url = stack.collect_url
        self.write_key = WRITE_KEY
        self.site_id = SITE_ID

    def drain(self) -> dict[str, Any]:
        return self.stack.drain()

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """GoogleSQL against the stack's warehouse (waits while the loader holds the file)."""
        with DuckDBWarehouse(self.stack.warehouse_path, read_only=True) as warehouse:
            return warehouse.query(sql, params)


def page_row(anonymous_id: str, site_id: str = "s") -> dict[str, Any]:
    """A raw.page row as collect would write it, for messages a test publishes or pushes itself."""
    return {
        "event_id": f"{anonymous_id}-e",
        "site_id": site_id,
        "call": "page",
        "event_time": "2026-11-23T10:00:00Z",
        "received_at": "2026-11-23T10:00:00Z",
        "anonymous_id": anonymous_id,
        "raw": "{}",
    }


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state: Path = tmp_path_factory.mktemp("stack")
    settings = StackSettings(
        state_dir=state, collect_port=0, scheduler=False, write_keys=f"{SITE_ID}={WRITE_KEY},other-shop=wk_other"
    )
    stack = LocalStack(settings).start()
    try:
        yield RunningStack(stack)
    finally:
        stack.stop()
