"""Start and stop the BigQuery emulator (PyPI `bqemulator`) as a subprocess on a free loopback port.

bqemulator runs `INSTALL spatial; LOAD spatial` in DuckDB at start and refuses to start without it.
Offline that works only once the extension from the `duckdb-extension-spatial` wheel is installed into
DuckDB's extension folder (~/.duckdb/extensions/<version>/<platform>/): `ensure_spatial_extension` does
that once; after that DuckDB's own `INSTALL spatial` finds the file and does not go to the network.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

START_TIMEOUT_SECONDS = 60.0


class EmulatorNotStarted(RuntimeError):
    pass


def spatial_extension_file() -> Path:
    """The spatial.duckdb_extension shipped by the duckdb-extension-spatial wheel."""
    import duckdb_extension_spatial

    root = Path(duckdb_extension_spatial.__file__).resolve().parent
    wanted = root / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if wanted.is_file():
        return wanted
    found = sorted(root.rglob("spatial.duckdb_extension"))
    if not found:
        raise EmulatorNotStarted(f"duckdb-extension-spatial at {root} has no spatial.duckdb_extension")
    return found[-1]


def ensure_spatial_extension() -> str:
    """Install DuckDB's spatial extension from the local wheel unless it is installed already.
    Idempotent; returns the path DuckDB installed it to."""
    with duckdb.connect() as con:

        def installed() -> tuple[bool, str]:
            row = con.execute(
                "SELECT installed, install_path FROM duckdb_extensions() WHERE extension_name = 'spatial'"
            ).fetchone()
            return (bool(row and row[0]), row[1] if row else "")

        done, path = installed()
        if not done:
            con.execute(f"INSTALL '{spatial_extension_file()}'")
            done, path = installed()
            if not done:
                raise EmulatorNotStarted("INSTALL of the spatial extension from the local wheel did not take")
        try:
            con.execute("LOAD spatial")
        except duckdb.Error:
            # An unloadable file from elsewhere (another build): replace it with the wheel's.
            con.execute(f"FORCE INSTALL '{spatial_extension_file()}'")
            con.execute("LOAD spatial")  # fails here, with DuckDB's reason, rather than inside the emulator
        return path


def _stop_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the emulator gets SIGTERM if the process that started it dies without stopping it
    (a killed test run), so that no emulator is left behind."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningEmulator:
    url: str
    project: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _ready(url: str, project: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/bigquery/v2/projects/{project}/datasets", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(project: str = "cdp-test") -> RunningEmulator:
    """A fresh, in-memory emulator; raises EmulatorNotStarted (with its log) if it does not answer."""
    ensure_spatial_extension()
    rest_port, grpc_port = free_port(), free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="bqemulator-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        "bqemulator",
        "start",
        "--rest-host=127.0.0.1",
        f"--rest-port={rest_port}",
        "--grpc-host=127.0.0.1",
        f"--grpc-port={grpc_port}",
        "--ephemeral",
        f"--project={project}",
        "--log-level=warning",
    ]
    process = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=os.environ.copy(),
        preexec_fn=_stop_with_parent,  # only prctl: safe between fork and exec
    )
    log_file.close()
    emulator = RunningEmulator(f"http://127.0.0.1:{rest_port}", project, process, Path(log_file.name))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop(emulator)
            raise EmulatorNotStarted(f"bqemulator exited with {process.returncode}:\n{emulator.log_tail()}")
        if _ready(emulator.url, project):
            return emulator
        time.sleep(0.1)
    stop(emulator)
    raise EmulatorNotStarted(f"bqemulator did not answer within {START_TIMEOUT_SECONDS}s:\n{emulator.log_tail()}")


def stop(emulator: RunningEmulator) -> None:
    """Stop the emulator by its own pid (terminate, then kill) and remove its log."""
    process = emulator.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    with contextlib.suppress(OSError):
        emulator.log_path.unlink()


@contextlib.contextmanager
def running(project: str = "cdp-test") -> Iterator[RunningEmulator]:
    emulator = start(project)
    try:
        yield emulator
    finally:
        stop(emulator)
