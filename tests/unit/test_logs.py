"""Structured logs: the standard library's records become JSON entries with severity, message and fields, and
every step's entry point sets this up (without it, functions-framework drops INFO records)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.declaration import discover
from shared.logs import ENTRY_START, JsonLines, configure_logging, log_outcome

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (handlers and level)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers = [h for h in handlers if not isinstance(h, JsonLines)]
    yield root
    root.handlers, root.level = handlers, level


def entries(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_record_is_one_json_entry_with_severity_message_logger_and_its_extra_fields(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    logging.getLogger("cdp.test").info("ran %s in %.1f s", "refine", 2.5, extra={"step": "refine", "rows": 7})
    logging.getLogger("cdp.test").debug("not at INFO")
    out = capsys.readouterr().out
    assert out.encode().startswith(ENTRY_START)  # what the stack's drain looks for
    [entry] = entries(out)
    assert entry == {
        "severity": "INFO",
        "message": "ran refine in 2.5 s",
        "step": "refine",
        "rows": 7,
        "logger": "cdp.test",
    }


def test_an_exception_keeps_its_traceback_in_the_one_entry(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    try:
        raise RuntimeError("the warehouse went away")
    except RuntimeError:
        logging.getLogger("cdp.test").exception("refine r1 failed")
    [entry] = entries(capsys.readouterr().out)
    assert entry["severity"] == "ERROR"
    assert entry["message"].startswith("refine r1 failed\nTraceback (most recent call last):")
    assert entry["message"].endswith("RuntimeError: the warehouse went away")


def test_configuring_twice_keeps_one_handler_and_a_bad_level_is_named(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("info")
    monkeypatch.setenv("CDP_LOG_LEVEL", "WARNING")
    configure_logging()
    assert sum(isinstance(h, JsonLines) for h in root_logger.handlers) == 1
    assert root_logger.level == logging.WARNING
    with pytest.raises(ValueError, match="'LOUD' is not one of DEBUG, INFO"):
        configure_logging("loud")


@pytest.mark.parametrize(
    ("status", "error", "severity"),
    [(200, None, "INFO"), (400, None, "WARNING"), (409, None, "WARNING"), (503, None, "WARNING"),
     (500, None, "ERROR"), (400, True, "ERROR")],
)  # fmt: skip
def test_an_outcome_line_carries_step_and_status_and_only_a_failure_is_an_error(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str], status: int, error: bool | None, severity: str
) -> None:
    configure_logging()
    log_outcome(logging.getLogger("cdp.test"), "refine", status, f"refine: HTTP {status}", error=error, runs=1)
    [entry] = entries(capsys.readouterr().out)
    assert (entry["severity"], entry["step"], entry["status"], entry["runs"]) == (severity, "refine", status, 1)


@pytest.mark.parametrize("step", sorted(discover(REPO / "functions")))
def test_every_entry_point_writes_info_records_as_json(step: str) -> None:
    """Imported as functions-framework imports it, each step's main.py leaves INFO records on stdout as entries."""
    code = (
        "import logging, runpy, sys; "
        f"runpy.run_path({str(REPO / 'functions' / step / 'main.py')!r}); "
        "logging.getLogger('cdp.probe').info('probe', extra={'step': sys.argv[1]})"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, step], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert {"severity": "INFO", "message": "probe", "step": step, "logger": "cdp.probe"} in entries(done.stdout)
