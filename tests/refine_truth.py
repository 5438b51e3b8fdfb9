"""Raw rows for refine tests and benchmarks, and a ground-truth generator for who-is-who.

`RawEvents` builds rows of the raw tables as the loader writes them. `generate_truth` simulates customers
(devices, logins, PII in Korean formats, CRM records, aliases) together with the traps that make identity
resolution hard: shared devices used by two people, junk identifiers sent by broken trackers, test accounts
on many devices, the same email written three ways. It returns the rows and the truth: for every identifier
node the real person it belongs to, so that pairwise precision / recall of any resolution can be measured.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.refine import accuracy
from shared.timeutil import to_iso

SITE = "test-shop"
T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)

Row = dict[str, Any]


class RawEvents:
    """Rows of raw.user / page / land / conv / event, keyed by table."""

    def __init__(self, site_id: str = SITE) -> None:
        self.site_id = site_id
        self.rows: dict[str, list[Row]] = {t: [] for t in ("user", "page", "land", "conv", "event")}
        self._ids = itertools.count(1)

    def _base(self, call: str, at: datetime, anon: str | None, user: str | None, **extra: Any) -> Row:
        event_id = extra.pop("event_id", None) or f"ev-{next(self._ids)}"
        return {
            "event_id": event_id,
            "site_id": self.site_id,
            "call": call,
            "event_time": to_iso(at),
            "received_at": to_iso(at + timedelta(seconds=1)),
            "anonymous_id": anon,
            "user_id": user,
            "device_type": extra.pop("device_type", "desktop"),
            "os": extra.pop("os", "Windows"),
            "browser": extra.pop("browser", "Chrome"),
            "country": extra.pop("country", "KR"),
            "region": extra.pop("region", "11"),
            "page_url": extra.pop("page_url", None),
            "properties": extra.pop("properties", "{}"),
            "raw": "{}",
            **extra,
        }

    def identify(self, at: datetime, anon: str | None, user: str | None, **traits: Any) -> Row:
        row = self._base("identify", at, anon, user, **traits)
        self.rows["user"].append(row)
        return row

    def alias(self, at: datetime, previous_id: str, user: str) -> Row:
        row = self._base("alias", at, None, user, previous_id=previous_id)
        self.rows["user"].append(row)
        return row

    def page(
        self, at: datetime, anon: str | None, user: str | None = None, url: str = "https://shop.kr/", **extra: Any
    ) -> Row:
        row = self._base("page", at, anon, user, page_url=url, **extra)
        self.rows["page"].append(row)
        return row

    def land(
        self,
        at: datetime,
        anon: str | None,
        user: str | None = None,
        *,
        medium: str = "direct",
        url: str = "https://shop.kr/",
        **extra: Any,
    ) -> Row:
        """A landing: the page row and its land row share the event id, as collect writes them."""
        page = self.page(at, anon, user, url=url)
        row = self._base("page", at, anon, user, page_url=url, event_id=page["event_id"], medium=medium, **extra)
        self.rows["land"].append(row)
        return row

    def order(
        self,
        at: datetime,
        anon: str | None,
        user: str | None,
        order_id: str,
        revenue: float,
        products: list[str] | None = None,
        **extra: Any,
    ) -> Row:
        row = self._base(
            "track",
            at,
            anon,
            user,
            conv_type="order",
            event_name="Order Completed",
            order_id=order_id,
            revenue=revenue,
            currency="KRW",
            product_names=" | ".join(products or []) or None,
            **extra,
        )
        self.rows["conv"].append(row)
        return row

    def event(self, at: datetime, anon: str | None, user: str | None, event_type: str, **extra: Any) -> Row:
        row = self._base(
            "track", at, anon, user, event_name=extra.pop("event_name", event_type), event_type=event_type, **extra
        )
        self.rows["event"].append(row)
        return row

    def insert(self, warehouse: Any) -> None:
        for table, rows in self.rows.items():
            for i in range(0, len(rows), 20_000):
                warehouse.insert_rows(f"raw.{table}", rows[i : i + 20_000])


# -- ground truth -----------------------------------------------------------------------------------
JUNK_IDS = ["undefined", "null", "0", "-1", "guest", "[object Object]", "NaN", "00000000-0000-0000-0000-000000000000"]


@dataclass
class Truth:
    """node -> person for every identifier whose owner is known (junk and shared ids are not)."""

    owner: dict[str, str] = field(default_factory=dict)
    evidence: set[str] = field(default_factory=set)  # ids some event ties to another id of their person
    people: int = 0
    shared_devices: int = 0
    junk_events: int = 0

    def add(self, node: str, person: str, evidence: bool = True) -> None:
        self.owner.setdefault(node, person)
        if evidence:
            self.evidence.add(node)


def node(kind: str, value: str, site: str = SITE) -> str:
    return f"{site}|{kind}:{value}"


def _phone_forms(digits8: str) -> list[str]:
    a, b = digits8[:4], digits8[4:]
    return [f"010-{a}-{b}", f"010{a}{b}", f"+82 10-{a}-{b}", f"82-10-{a}-{b}", f"010.{a}.{b}", f"(010) {a} {b}"]


def generate_truth(
    people: int = 2000, seed: int = 7, site: str = SITE, second_accounts: float = 0.01
) -> tuple[RawEvents, Truth]:
    """Simulated customers and their raw events. Each person has 1-3 devices and browses anonymously; most
    log in (user id) on some of their devices, give an email / phone written in varying formats; some come
    from the CRM (crm id + PII, no device); a few alias an old user id. Traps: 3% of people share a laptop
    with another person (both log in on it), about 6% of events carry junk ids, a test account logs in on many devices,
    and `second_accounts` of known people open a second account (no alias) with the same phone."""
    rng = random.Random(seed)
    events = RawEvents(site)
    truth = Truth(people=people)
    devices_of: dict[str, list[str]] = {}
    t_start = T0
    for p in range(people):
        person = f"person-{p}"
        n_devices = rng.choice([1, 1, 1, 2, 2, 3])
        devices = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(n_devices)]
        devices_of[person] = devices
        known = rng.random() < 0.75
        user_id = f"u{p:07d}" if known else None
        email = f"user{p}@mail{p % 7}.co.kr"
        digits = f"{rng.randrange(10**7, 10**8)}"
        for d in devices:
            truth.add(node("a", d, site), person, evidence=False)
        at = t_start + timedelta(minutes=rng.randrange(0, 60 * 24 * 20))
        for d in devices:
            # anonymous browsing first, then (maybe) a login on this device
            for k in range(rng.randrange(2, 6)):
                events.page(at + timedelta(minutes=k), d, url=f"https://shop.kr/p/{rng.randrange(50)}")
            events.event(at + timedelta(minutes=6), d, None, "product_view", product_name=f"Item {rng.randrange(30)}")
            if user_id and rng.random() < 0.8:
                form = rng.choice(_phone_forms(digits))
                shown_email = rng.choice([email, email.upper(), f"  {email} "])
                events.identify(
                    at + timedelta(minutes=8),
                    d,
                    user_id,
                    email=shown_email,
                    phone=form,
                    gender=rng.choice(["M", "F", "남", "여성", None]),
                    birth_year=rng.randrange(1960, 2005),
                )
                truth.add(node("u", user_id, site), person)
                truth.add(node("a", d, site), person)
                truth.add(node("e", email, site), person)
                truth.add(node("p", "+8210" + digits, site), person)
                if rng.random() < 0.5:
                    events.order(
                        at + timedelta(minutes=12),
                        d,
                        user_id,
                        f"o-{p}-{d[:6]}",
                        10000.0 * rng.randrange(1, 9),
                        [f"Item {rng.randrange(30)}"],
                    )
            elif not user_id and rng.random() < 0.3:
                # an anonymous newsletter sign-up: device + email, no user id
                events.identify(at + timedelta(minutes=8), d, None, email=email)
                truth.add(node("a", d, site), person)
                truth.add(node("e", email, site), person)
            at += timedelta(hours=rng.randrange(1, 72))
        if user_id and rng.random() < 0.2:
            crm = f"CRM{p:06d}"
            truth.add(node("u", user_id, site), person)
            truth.add(node("p", "+8210" + digits, site), person)
            events.identify(
                at,
                None,
                user_id,
                crm_id=crm,
                name=f"고객{p}",
                phone="010" + digits,
                address=rng.choice(["서울특별시 강남구", "경기도 성남시", "부산광역시 해운대구"]),
            )
            truth.add(node("c", crm, site), person)
        if user_id and node("u", user_id, site) in truth.owner and rng.random() < 0.05:
            old = f"old-{p}"
            events.alias(at + timedelta(minutes=1), old, user_id)
            events.page(at - timedelta(days=30), None, old)  # history under the old id
            truth.add(node("u", old, site), person)
        if user_id and node("p", "+8210" + digits, site) in truth.owner and rng.random() < second_accounts:
            # a second account (no alias) on a new device, signed up with the same phone: the same person, but
            # the phone now sits on two user ids, so a precision-first resolver keeps the accounts apart
            second, device = f"{user_id}-b", uuid.UUID(int=rng.getrandbits(128)).hex
            events.page(at + timedelta(days=1), device)
            events.identify(at + timedelta(days=1, minutes=1), device, second, phone="010" + digits)
            truth.add(node("u", second, site), person)
            truth.add(node("a", device, site), person)
    persons = list(devices_of)
    # shared laptops: a second person logs in on someone's device
    for i in range(int(people * 0.03)):
        a, b = rng.sample(persons, 2)
        if not (
            truth.owner.get(node("u", f"u{int(a.split('-')[1]):07d}", site))
            and truth.owner.get(node("u", f"u{int(b.split('-')[1]):07d}", site))
        ):
            continue
        laptop = devices_of[a][0]
        events.page(t_start + timedelta(days=25, minutes=i), laptop, f"u{int(b.split('-')[1]):07d}")
        truth.owner.pop(node("a", laptop, site), None)  # belongs to nobody in particular
        truth.shared_devices += 1
    # junk ids from broken trackers: they must not join anyone
    for i in range(int(people * 0.3)):
        person = rng.choice(persons)
        uid = f"u{int(person.split('-')[1]):07d}"
        if node("u", uid, site) in truth.owner:
            events.page(t_start + timedelta(days=26, minutes=i), rng.choice(JUNK_IDS), uid)
            events.identify(t_start + timedelta(days=26, minutes=i), devices_of[person][0], rng.choice(JUNK_IDS))
            truth.junk_events += 2
    # a test account logging in on many devices of different people
    for i, person in enumerate(rng.sample(persons, min(40, len(persons)))):
        events.page(t_start + timedelta(days=27, minutes=i), devices_of[person][-1], "qa-test-account")
        truth.owner.pop(node("a", devices_of[person][-1], site), None)
    return events, truth


# -- pairwise precision / recall -------------------------------------------------------------------
def pairwise_scores(predicted: dict[str, str], truth: Truth, *, evidence_only: bool = False) -> tuple[float, float]:
    """Pairwise precision / recall over the nodes with a known owner (evidence_only: only ids that some event
    ties to another id of their person, leaving out devices that never identified, which no deterministic
    method can place)."""
    owner = {n: p for n, p in truth.owner.items() if not evidence_only or n in truth.evidence}
    return accuracy.pairwise_scores(predicted, owner)


def baseline_last_user_wins(events: RawEvents | dict[str, list[Row]], site: str = SITE) -> dict[str, str]:
    rows = events.rows if isinstance(events, RawEvents) else events
    return accuracy.baseline_last_user_wins(itertools.chain.from_iterable(rows.values()), site)
