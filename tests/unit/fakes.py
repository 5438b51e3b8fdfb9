"""In-process stand-ins for our own ports (unit layer only; integration tests use the real emulator)."""

from __future__ import annotations

from typing import Any

import orjson

from shared.messages import decode_message, to_rows
from shared.pubsub import PublishUnavailable


class RecordingPublisher:
    """Keeps what was published; can be told to be down."""

    def __init__(self, *, down: bool = False) -> None:
        self.messages: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.down = down

    def publish(self, data: bytes, attributes: dict[str, str]) -> str:
        if self.down:
            raise PublishUnavailable("emulated outage")
        self.messages.append((orjson.loads(decode_message(data)), attributes))
        return str(len(self.messages))

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [
            row
            for message, _ in self.messages
            for row in (
                to_rows(message["tables"].get(table, {})) if "tables" in message else message["rows"].get(table, [])
            )
        ]
