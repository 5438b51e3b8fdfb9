"""The simulator's inputs and outputs: its settings, the HTTP requests it makes, the truth and the expected counts."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from shared.timeutil import to_iso

TABLES = ("user", "page", "land", "conv", "event")


class SimConfig(BaseModel):
    seed: int = 7
    customers: int = Field(300, ge=1, description="people in the shop (members, guests, store-only customers)")
    days: int = Field(60, ge=1, description="days of history, ending at `end`")
    end: datetime = Field(default_factory=lambda: datetime.now(UTC), description="aware; the last moment simulated")
    write_key: str = "wk_demo_shop"
    bad_share: float = Field(0.03, ge=0, lt=0.5, description="share of requests that carry bad input")
    future_days: int = Field(30, ge=1, description="horizon of the future purchases kept in the truth")

    @field_validator("end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        return value.astimezone(UTC)

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


class SimRequest(BaseModel):
    """One HTTP request to the collector, as an SDK (or a broken client) would make it."""

    method: str = "POST"
    path: str
    headers: dict[str, str]
    body: bytes
    label: str
    expected_status: int = 200
    bad: list[str] = Field(default_factory=list, description="the bad inputs it carries (empty: a clean request)")
    retry_of: str | None = Field(None, description="label of the request this one repeats (an SDK retry)")
    sent_at: str | None = Field(None, description="the sentAt text in the body, replaced with a fresh one at send")
    clock_skew_seconds: float = Field(0.0, description="the sending device's clock error")
    gzipped: bool = False

    def render(self, now: datetime | None = None) -> bytes:
        """The body to send now: sentAt becomes the send time on the device's (skewed) clock."""
        if self.sent_at is None:
            return self.body
        moment = (now or datetime.now(UTC)) + timedelta(seconds=self.clock_skew_seconds)
        old, new = f'"sentAt":"{self.sent_at}"'.encode(), f'"sentAt":"{to_iso(moment)}"'.encode()
        plain = gzip.decompress(self.body) if self.gzipped else self.body
        plain = plain.replace(old, new)
        return gzip.compress(plain, mtime=0) if self.gzipped else plain


class TruthDevice(BaseModel):
    anonymous_id: str
    kind: str = Field(description="iphone, android, tablet, desktop, family_laptop")
    user_agent: str
    ip: str
    clock_skew_seconds: float
    owner: str = Field(description="person id")
    shared_by: list[str] = Field(default_factory=list, description="every person who logs in on it, if shared")
    linked_by: list[str] = Field(
        default_factory=list,
        description="how the device is tied to a known identifier: signup, login, alias, guest_checkout; empty if never",
    )
    junk_user_id: str | None = Field(None, description="the junk userId its broken page template sends")
    sessions: int = 0


class TruthOrder(BaseModel):
    order_id: str
    message_id: str
    time: datetime
    revenue: float
    currency: str
    channel: str = Field(description="web or store")
    products: list[str]


class FuturePurchase(BaseModel):
    time: datetime
    revenue: float
    currency: str
    channel: str


class Identifiers(BaseModel):
    user_ids: list[str] = Field(default_factory=list, description="login ids, legacy ones included")
    anonymous_ids: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list, description="canonical: trimmed, lower case")
    phones: list[str] = Field(default_factory=list, description="E.164")
    crm_ids: list[str] = Field(default_factory=list)
    email_forms_sent: list[str] = Field(default_factory=list, description="as they were sent")
    phone_forms_sent: list[str] = Field(default_factory=list, description="as they were sent")


class TruthPerson(BaseModel):
    person_id: str
    group: str
    market: str = Field(description="KR or INTL")
    country: str
    city: str
    name: str
    gender: str = Field(description="F or M")
    birth_year: int
    email: str | None
    phone: str | None = Field(description="E.164 mobile")
    landline: str | None = Field(None, description="E.164 home phone (store records)")
    address: str
    user_id: str | None = Field(None, description="login id, if a member")
    legacy_user_id: str | None = Field(None, description="an older login id, aliased to user_id")
    crm_id: str | None = None
    member_since: datetime | None = None
    signed_up_in_window: bool = False
    guest_orders: int = 0
    store_customer: bool = False
    web_visitor: bool = True
    identifiers: Identifiers
    devices: list[str] = Field(default_factory=list, description="anonymous ids of the devices they use")
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    sessions: int = 0
    events: int = 0
    orders: list[TruthOrder] = Field(default_factory=list)
    future_purchases: list[FuturePurchase] = Field(default_factory=list)
    buys_next_30d: bool = False
    purchase_propensity: float = Field(0.0, description="the probability the future purchases were drawn with")


class SharedDevice(BaseModel):
    anonymous_id: str
    person_ids: list[str]


class JunkUse(BaseModel):
    value: str
    field: str = Field(description="userId, email or phone")
    person_ids: list[str]
    calls: int


class AliasLink(BaseModel):
    previous_id: str
    user_id: str
    person_id: str
    source: str = Field(description="web (anonymous id -> login) or server (legacy login -> new login)")


class TruthEvent(BaseModel):
    message_id: str
    person_id: str
    anonymous_id: str | None
    user_id: str | None
    call: str
    name: str | None
    time: datetime = Field(description="true time (the device clock's error removed)")
    tables: list[str]


class Truth(BaseModel):
    seed: int
    start: datetime
    end: datetime
    future_end: datetime
    write_key: str
    site: str
    people: list[TruthPerson]
    devices: list[TruthDevice]
    groups: dict[str, list[str]] = Field(description="behaviour group -> person ids")
    shared_devices: list[SharedDevice]
    junk_identifiers: list[JunkUse]
    aliases: list[AliasLink]
    events: list[TruthEvent] = Field(description="every event that must land, once (retries not repeated)")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> Truth:
        return cls.model_validate_json(Path(path).read_text())

    def person(self, person_id: str) -> TruthPerson:
        return next(p for p in self.people if p.person_id == person_id)


class Expected(BaseModel):
    """What must be in the warehouse after the shop's requests went through the stack, from the simulator's
    own knowledge of what it sent (not from the collector's code)."""

    unique: dict[str, int] = Field(description="table -> rows, one per event id")
    stored: dict[str, int] = Field(description="table -> rows as stored (SDK retries land twice)")
    rejected: dict[str, int] = Field(description="reason_code -> ops.rejected records")
    accepted_events: int = Field(description="events the collector accepts, retries counted each time")
    unique_events: int = Field(description="distinct accepted events (message ids)")
    requests: int
    bad_requests: int
    retried_requests: int
    statuses: dict[int, int] = Field(description="HTTP status -> requests")
    crawler_events: int = Field(0, description="page views of crawlers: stored in raw, never refined")


class DriveReport(BaseModel):
    sent: int
    by_status: dict[int, int]
    seconds: float
    failures: list[tuple[str, int, str]] = Field(
        default_factory=list, description="(label, status, body[:200]) of answers other than the expected one"
    )
    accepted: int = Field(0, description="sum of the collector's `accepted` counts")
    retries: int = Field(0, description="re-sends after 5xx, 429 or a connection error")

    @property
    def events_per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0
