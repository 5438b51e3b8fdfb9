"""Structured logs: one JSON object per line on stdout, which Cloud Logging reads as a structured entry
(severity, message, fields) and the local stack reads from the step's log file.

Every function's entry point calls `configure_logging()`: without it the standard library's records of the
steps (`logging.getLogger("cdp.refine")`, ...) would be lost below WARNING, since functions-framework sets up no
logging on today's runtimes, and the rest would reach Cloud Logging as unstructured text, a traceback split
into one entry per line. Alerts (infra/components/alerts.py) match on the fields written here: `severity`, and
`step` with `status` on the line each scheduled run ends with (`log_outcome`)."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import orjson
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_lock = threading.Lock()
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Cloud Logging's names for the standard library's levels.
SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
# What every LogRecord has; anything else on a record came from `extra=` and is written as a field.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


ENTRY_START = b'{"severity":'  # how every entry's line begins: readers find an entry by it (the stack's drain)


def emit(severity: str, message: str, **fields: Any) -> None:
    line = orjson.dumps({"severity": severity, "message": message, **fields}, default=str) + b"\n"
    with _lock:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()


class JsonLines(logging.Handler):
    """Standard-library records as structured entries. A traceback stays in its record's message, where Error
    Reporting finds it."""

    _formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{self._formatter.formatException(record.exc_info)}"
            fields = {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES}
            fields.setdefault("logger", record.name)
            emit(SEVERITY.get(record.levelno, "DEFAULT"), message, **fields)
        except Exception:  # a log line must never fail the request it describes
            self.handleError(record)


class LogSettings(BaseSettings):
    """CDP_LOG_LEVEL: how much the functions log. Apart from PlatformSettings, which an entry point must not have
    to build (and validate) at import only to set up its logging."""

    model_config = SettingsConfigDict(env_prefix="CDP_", extra="ignore")

    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _known(cls, value: str) -> str:
        if value.upper() not in LEVELS:
            raise ValueError(f"log level {value.upper()!r} is not one of {', '.join(LEVELS)}")
        return value.upper()


def configure_logging(level: str | None = None) -> None:
    """The root logger writes JSON lines at `level` (default: CDP_LOG_LEVEL, else INFO). Calling it again only
    changes the level: there is one handler."""
    chosen = LogSettings(log_level=level).log_level if level else LogSettings().log_level
    root = logging.getLogger()
    if not any(isinstance(h, JsonLines) for h in root.handlers):
        root.addHandler(JsonLines())
    root.setLevel(chosen)


def log_outcome(
    logger: logging.Logger, step: str, status: int, message: str, *, error: bool | None = None, **fields: Any
) -> None:
    """The one line a step's run or request ends with: `step` and its HTTP-like `status` are fields, so that a
    log-based metric can count the successful runs of a scheduled step (an alert fires when they stop). By
    default only a 500 (the step failed) is an error; a refusal or a transient 503 is a warning (the caller
    retries)."""
    if error is None:
        error = status == 500
    level = logging.ERROR if error else logging.INFO if status < 400 else logging.WARNING
    logger.log(level, message, extra={"step": step, "status": status, **fields})
