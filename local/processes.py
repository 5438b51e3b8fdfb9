"""Child processes of the local stack: started in their own process group, always stopped by it."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_HANDED_OUT: set[int] = set()  # never the same port twice in one process: its first taker may not have bound it yet


def free_port() -> int:
    """A port free now, chosen below the ephemeral range: a port the kernel hands out for outgoing connections
    (the emulator's pushes, gRPC clients) may be taken again before the server that was given it binds it."""
    low, high = _ephemeral_range()
    lowest = 20000 if low > 21000 else 1024
    for _ in range(50):
        port = random.randint(lowest, low - 1) if low - 1 > lowest else random.randint(high + 1, 65535)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as sock:  # a crowded machine: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ChildExited(RuntimeError):
    """A server the stack started exited before it was ready (its log's tail is in the message)."""


class ChildProcess:
    """A server the stack owns. Its log goes to a file in the state folder."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path, port: int, cwd: Path | None = None
    ) -> None:
        self.name, self.argv, self.env, self.port, self.cwd = name, argv, env, port, cwd
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: its children (java, gunicorn workers) stop with it
        )
        log.close()

        @retry(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(ready_timeout), wait=wait_fixed(0.1))
        def wait_ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise ChildExited(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n{self.tail()}"
                )
            return port_open(self.port) and self._listening_is_ours()

        try:
            wait_ready()
        except Exception:
            self.stop()
            raise

    def _listening_is_ours(self) -> bool:
        """The open port is this child's (or its workers'), not another process's that holds it."""
        assert self.process is not None
        try:
            parent = psutil.Process(self.process.pid)
            for proc in [parent, *parent.children(recursive=True)]:
                for conn in proc.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == self.port:
                        return True
        except psutil.Error:
            return False
        return False

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_seconds: float = 30.0) -> None:
        """SIGTERM to the group (gunicorn finishes in-flight requests), SIGKILL after the grace period."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            while self.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever of the group is left
        self.process.wait()
        self.process = None
