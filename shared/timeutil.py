"""Timestamps as the pipeline carries them: timezone-aware UTC datetimes, ISO-8601 text with a Z on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """ISO-8601 with microseconds and Z, the form both warehouses parse."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def iso_now() -> str:
    return to_iso(utc_now())
