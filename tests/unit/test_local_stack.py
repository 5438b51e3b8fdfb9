"""The local stack without starting it: what its drain reads from load's log (the message and batch ids of committed
messages), and how many processes serve collect."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from local.stack import LocalStack, StackSettings


def loaded_line(message_id: str, batch_id: str) -> bytes:
    entry = {"severity": "INFO", "message": "loaded", "step": "load", "message_id": message_id, "batch_id": batch_id}
    return orjson.dumps(entry) + b"\n"


def test_loaded_ids_are_read_even_behind_another_writers_text_and_a_half_written_line_waits(tmp_path: Path) -> None:
    stack = LocalStack(StackSettings(state_dir=tmp_path))
    log = tmp_path / "logs" / "load.log"
    log.parent.mkdir()
    # a print() on stderr wrote its text, then the entry came before its newline
    log.write_bytes(
        loaded_line("1", "b1")
        + b"some library's warning "
        + loaded_line("2", "b2")
        + b'{"severity":"INFO","message":"not loaded"}\n'
        + loaded_line("3", "b3")[:-10]
    )
    assert stack.loaded_keys() == {"1", "b1", "2", "b2"}
    with log.open("ab") as more:
        more.write(loaded_line("3", "b3")[-10:])
    assert stack.loaded_keys() == {"1", "b1", "2", "b2", "3", "b3"}


@pytest.mark.parametrize(("cores", "workers"), [(None, 1), (1, 1), (2, 2), (16, 4)])
def test_collect_gets_a_worker_process_a_core_at_most_four_unless_set(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, workers: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.delenv("CDP_COLLECT_WORKERS", raising=False)
    assert StackSettings().collect_workers == workers
    monkeypatch.setenv("CDP_COLLECT_WORKERS", "6")
    assert StackSettings().collect_workers == 6
    monkeypatch.setenv("CDP_COLLECT_WORKERS", "0")
    with pytest.raises(ValidationError, match="collect_workers"):
        StackSettings()
