"""Structured logs: one JSON object per line on stdout, which Cloud Logging reads as a structured entry
(severity, message, fields) and the local stack reads from the step's log file."""

from __future__ import annotations

import sys
import threading
from typing import Any

import orjson

_lock = threading.Lock()


def emit(severity: str, message: str, **fields: Any) -> None:
    line = orjson.dumps({"severity": severity, "message": message, **fields}, default=str) + b"\n"
    with _lock:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
