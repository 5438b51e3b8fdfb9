"""In-process stand-ins for our own ports (unit layer only; integration tests use the real emulator), and the
identity tokens Cloud Run would have checked."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from shared.messages import decode_arrow_message, decode_message, is_arrow, to_rows
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
            self.messages.append((document_of(data), attributes))
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


def document_of(data: bytes) -> dict[str, Any]:
    """A message body as the JSON document it is, or would be for an Arrow one (its tables as columns)."""
    if not is_arrow(data):
        return orjson.loads(decode_message(data))
    header, tables = decode_arrow_message(data)
    columns = {name: arrow.to_pydict() for name, arrow in tables.items()}
    return {"schema": header["schema"], "batch_id": header["batch_id"], "site_id": header["site_id"], "tables": columns}


def identity_token(claims: dict[str, Any], signed: bool = True) -> str:
    """A JWT with these claims, as a caller's Google identity token (signature not real: Cloud Run checked it
    before the step runs); unsigned, as Cloud Run passes X-Serverless-Authorization on."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")

    token = f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}"
    return f"{token}.c2lnbmF0dXJl" if signed else token
