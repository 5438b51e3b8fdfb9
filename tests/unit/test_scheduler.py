"""The local scheduler reads the same cron and time zone as Cloud Scheduler."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest

from local.scheduler import ScheduledCall
from local.stack import EmulatorMissing, find_emulator


def test_next_time_is_in_the_schedule_time_zone() -> None:
    call = ScheduledCall(step="refine", url="http://127.0.0.1:1/", cron="0 3 * * *", time_zone="Asia/Seoul")
    nxt = call.next_after(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # 21:00 in Seoul
    assert nxt.astimezone(UTC) == datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # 03:00 the next day in Seoul


def test_every_fifteen_minutes() -> None:
    call = ScheduledCall(step="score", url="http://127.0.0.1:1/", cron="*/15 * * * *", time_zone="UTC")
    assert call.next_after(datetime(2026, 11, 23, 12, 7, tzinfo=UTC)) == datetime(2026, 11, 23, 12, 15, tzinfo=UTC)


def test_a_missing_emulator_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EmulatorMissing, match="gcloud components install pubsub-emulator"):
        find_emulator(None)
