"""Timestamps on the wire: ISO-8601, UTC, microseconds always written, Z."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.timeutil import to_iso


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2026-01-02T03:04:05.000006Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000000Z"),  # a zero fraction is kept
        (datetime(2026, 1, 2, 3, 4, 5, 120000), "2026-01-02T03:04:05.120000Z"),  # naive is UTC
        (datetime(2026, 1, 2, 9, 4, 5, 7, tzinfo=ZoneInfo("Asia/Seoul")), "2026-01-02T00:04:05.000007Z"),
        (datetime(2026, 1, 1, 23, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))), "2026-01-02T04:30:00.000000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=ZoneInfo("UTC")), "2026-01-02T03:04:05.000006Z"),
        (datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "0005-01-02T03:04:05.000006Z"),
    ],
)
def test_to_iso_writes_utc_with_microseconds_and_z(moment: datetime, text: str) -> None:
    assert to_iso(moment) == text


def test_to_iso_agrees_with_isoformat_on_random_times_and_subclasses() -> None:
    """The fast path (orjson) writes exactly what datetime.isoformat() would."""

    class Stamp(datetime):
        pass

    draw = random.Random(7)
    zones = [None, UTC, timezone(timedelta(hours=9)), ZoneInfo("Asia/Seoul"), ZoneInfo("America/New_York")]
    for _ in range(5000):
        moment = datetime(
            draw.randint(1900, 2100), draw.randint(1, 12), draw.randint(1, 28), draw.randint(0, 23),
            draw.randint(0, 59), draw.randint(0, 59), draw.choice([0, draw.randint(0, 999_999)]),
            tzinfo=draw.choice(zones),
        )  # fmt: skip
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        expected = utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        assert to_iso(moment) == expected
        assert to_iso(Stamp.fromisoformat(moment.isoformat())) == expected
