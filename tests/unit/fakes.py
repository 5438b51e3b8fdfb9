"""In-process stand-ins for our own ports (unit layer only; integration tests use the real emulator)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from shared.messages import decode_message, to_rows
from shared.pubsub import Message, PublishUnavailable


class RecordingPublisher:
    """Keeps what was published; can be told to be down."""

    def __init__(self, *, down: bool = False) -> None:
        self.messages: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.down = down

    def publish(self, messages: Sequence[Message]) -> list[str]:
        if self.down:
            raise PublishUnavailable("emulated outage")
        ids = []
        for data, attributes in messages:
            self.messages.append((orjson.loads(decode_message(data)), attributes))
            ids.append(str(len(self.messages)))
        return ids

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [
            row
            for message, _ in self.messages
            for row in (
                to_rows(message["tables"].get(table, {})) if "tables" in message else message["rows"].get(table, [])
            )
        ]
