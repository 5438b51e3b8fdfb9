"""The tracking calls we accept: the Segment spec (identify, track, page, screen, alias, group) that
analytics SDKs and our own tracker speak. Unknown fields are kept (schemaless), known ones are checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CallType = Literal["identify", "track", "page", "screen", "alias", "group"]

# Identifier strings too long to be a real id are a sign of a broken client.
MAX_ID_LENGTH = 256


def _as_id(value: Any, field: str) -> str | None:
    """SDKs send ids as strings or numbers; anything else is a client bug worth naming."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{field} must be a string or a number, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"{field} is longer than {MAX_ID_LENGTH} characters")
    return text or None


class TrackingCall(BaseModel):
    """One call. Field names are the spec's camelCase; every other key is kept as it came."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: CallType
    message_id: str | None = Field(None, alias="messageId")
    anonymous_id: str | None = Field(None, alias="anonymousId")
    user_id: str | None = Field(None, alias="userId")
    previous_id: str | None = Field(None, alias="previousId")
    group_id: str | None = Field(None, alias="groupId")
    event: str | None = None
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime | None = None
    original_timestamp: datetime | None = Field(None, alias="originalTimestamp")
    sent_at: datetime | None = Field(None, alias="sentAt")

    @field_validator("message_id", "anonymous_id", "user_id", "previous_id", "group_id", mode="before")
    @classmethod
    def _ids(cls, value: Any, info: Any) -> str | None:
        return _as_id(value, _ID_ALIASES[info.field_name])

    @field_validator("properties", "traits", "context", mode="before")
    @classmethod
    def _objects(cls, value: Any, info: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{info.field_name} must be a JSON object, got {type(value).__name__}")
        return value

    @field_validator("event", "name", "category", mode="before")
    @classmethod
    def _texts(cls, value: Any, info: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"{info.field_name} must be a string, got {type(value).__name__}")
        return value.strip() or None

    @field_validator("timestamp", "original_timestamp", "sent_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _required_per_call(self) -> TrackingCall:
        if self.type != "alias" and not (self.user_id or self.anonymous_id):
            raise ValueError(f"{self.type} needs a userId or an anonymousId")
        if self.type == "track" and not self.event:
            raise ValueError("track needs an event name")
        if self.type == "alias" and not (self.user_id and self.previous_id):
            raise ValueError("alias needs both userId and previousId")
        if self.type == "group" and not self.group_id:
            raise ValueError("group needs a groupId")
        return self


# The spec's names of the id fields, for errors; read from the model once (`model_fields` costs µs a call).
_ID_ALIASES = {name: field.alias or name for name, field in TrackingCall.model_fields.items()}


class BatchEnvelope(BaseModel):
    """POST /v1/batch: {"batch": [...], "sentAt", "context", "writeKey"}; items are checked one by one."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    batch: list[Any]
    sent_at: datetime | None = Field(None, alias="sentAt")
    context: dict[str, Any] = Field(default_factory=dict)
    write_key: str | None = Field(None, alias="writeKey")

    @field_validator("context", mode="before")
    @classmethod
    def _context(cls, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("context must be a JSON object")
        return value


class Rejection(BaseModel):
    """Why one input was not accepted; kept in ops.rejected."""

    reason_code: str
    reason: str
    event_id: str | None = None
    payload: Any = None
