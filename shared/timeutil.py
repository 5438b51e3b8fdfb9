"""Timestamps as the pipeline carries them: timezone-aware UTC datetimes, ISO-8601 text with a Z on the wire."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

_ISO_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """ISO-8601 with microseconds and Z, the form both warehouses parse (naive times are UTC)."""
    if moment.tzinfo is not None and moment.utcoffset():
        moment = moment.astimezone(UTC)
    if type(moment) is datetime:  # orjson writes it ~5x faster than isoformat(); collect stamps three per event
        text = orjson.dumps(moment, option=_ISO_OPTIONS)[1:-1].decode()
        return text if moment.microsecond else f"{text[:-1]}.000000Z"  # orjson leaves a zero fraction out
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def iso_now() -> str:
    return to_iso(utc_now())
