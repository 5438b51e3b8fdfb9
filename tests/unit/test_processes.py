"""The local stack's child processes: ports out of the kernel's way, and readiness that is the child's own."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from local.processes import ChildProcess, _ephemeral_range, free_port


def http_server(port: int, log_dir: Path) -> ChildProcess:
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    return ChildProcess("server", argv, env={}, log_dir=log_dir, port=port)


def test_a_port_is_never_handed_out_twice_even_before_its_server_binds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([20500, 20500, 20501])  # the same random port twice, nothing bound meanwhile
    monkeypatch.setattr("local.processes.random.randint", lambda low, high: next(draws))
    monkeypatch.setattr("local.processes._HANDED_OUT", set())
    monkeypatch.setattr("local.processes._ephemeral_range", lambda: (32768, 60999))
    assert (free_port(), free_port()) == (20500, 20501)


def test_free_ports_are_below_the_ephemeral_range_and_bindable() -> None:
    low, _ = _ephemeral_range()
    for _ in range(20):
        port = free_port()
        assert port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_child_that_cannot_bind_its_port_is_not_taken_for_ready(tmp_path: Path) -> None:
    """Another process listens on the port: the port answers, but not from the child, which exits."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        child = http_server(port, tmp_path)
        with pytest.raises(RuntimeError, match="server exited"):
            child.start(ready_timeout=20)
        assert not child.running


def test_a_child_that_binds_its_port_is_ready(tmp_path: Path) -> None:
    port = free_port()
    child = http_server(port, tmp_path)
    child.start(ready_timeout=20)
    try:
        assert child.running
    finally:
        child.stop()
    assert not child.running
