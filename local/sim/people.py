"""People and their devices: names, contact details in the forms real forms and stores produce, behaviour groups."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from local.sim import catalog as cat

# group -> share of people, devices (weights for 1, 2, 3), sessions over 60 days (low, high)
GROUPS: dict[str, tuple[float, tuple[int, int, int], tuple[int, int]]] = {
    "loyal_big_spender": (0.10, (1, 5, 4), (16, 26)),
    "bargain_hunter": (0.15, (5, 4, 1), (8, 14)),
    "window_shopper": (0.22, (5, 3, 2), (5, 11)),
    "lapsed": (0.12, (6, 3, 1), (3, 6)),
    "new_signup": (0.13, (6, 4, 0), (3, 7)),
    "regular": (0.22, (5, 4, 1), (4, 9)),
    "store_only": (0.06, (1, 0, 0), (0, 0)),
}
# group -> chance of buying in the 30 days after the end (before recency adjustments)
FUTURE_BASE = {
    "loyal_big_spender": 0.75,
    "bargain_hunter": 0.40,
    "window_shopper": 0.04,
    "lapsed": 0.06,
    "new_signup": 0.30,
    "regular": 0.20,
    "store_only": 0.25,
}
GENDER_FORMS = {"F": ["F", "F", "female", "여", "Female", "W"], "M": ["M", "M", "male", "남", "Male"]}
REGION_CODES = {
    "Seoul": "KR11",
    "Seongnam": "KR41",
    "Suwon": "KR41",
    "Busan": "KR26",
    "Incheon": "KR28",
    "Daegu": "KR27",
    "San Francisco": "USCA",
    "Los Angeles": "USCA",
    "New York": "USNY",
    "Tokyo": "JP13",
    "Osaka": "JP27",
}


@dataclass
class Device:
    anon: str
    kind: str
    ua: str
    ip: str
    skew: float
    owner: Person
    shared_by: list[Person] = field(default_factory=list)
    junk: str | None = None
    user_id: str | None = None  # who is logged in on it now
    linked_by: list[str] = field(default_factory=list)
    sessions: int = 0
    login_at_session: int | None = None  # the session index at which its owner logs in (None: never)

    @property
    def shared(self) -> bool:
        return len(self.shared_by) > 1


@dataclass
class Person:
    pid: str
    group: str
    market: str
    city: cat.City
    name: str
    gender: str
    birth_year: int
    email: str | None
    email_local: str | None
    phone_e164: str | None
    phone_forms: list[str]
    landline_e164: str | None
    landline_forms: list[str]
    address_text: str
    address_obj: dict[str, str]
    user_id: str | None = None
    legacy_user_id: str | None = None
    crm_id: str | None = None
    crm_on_web: bool = False  # the web identify carries crmId
    member_since: datetime | None = None
    signs_up: bool = False
    web: bool = True
    devices: list[Device] = field(default_factory=list)
    interests: list[cat.Product] = field(default_factory=list)
    # what happened, for the truth
    email_sent: list[str] = field(default_factory=list)
    phone_sent: list[str] = field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    sessions: int = 0
    events: int = 0
    orders: list[dict] = field(default_factory=list)
    guest_orders: int = 0

    def seen(self, moment: datetime) -> None:
        self.events += 1
        if self.first_seen is None or moment < self.first_seen:
            self.first_seen = moment
        if self.last_seen is None or moment > self.last_seen:
            self.last_seen = moment

    @property
    def currency(self) -> str:
        return "KRW" if self.market == "KR" else "USD"

    @property
    def locale(self) -> str:
        if self.market == "KR":
            return "ko-KR"
        return "ja-JP" if self.city.country == "JP" else "en-US"


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def kr_mobile(rng: random.Random) -> tuple[str, list[str]]:
    a, b = f"{rng.randint(2000, 9999)}", _digits(rng, 4)
    forms = [
        f"010-{a}-{b}",
        f"010{a}{b}",
        f"+82 10-{a}-{b}",
        f"82-10-{a}-{b}",
        f"010.{a}.{b}",
        f"(010) {a} {b}",
        f"+8210{a}{b}",
        f"010 {a} {b}",
    ]
    return f"+8210{a}{b}", forms


def kr_landline(rng: random.Random, area: str) -> tuple[str, list[str]]:
    a = f"{rng.randint(200, 999)}" if area == "02" and rng.random() < 0.5 else f"{rng.randint(2000, 9999)}"
    b = _digits(rng, 4)
    forms = [f"{area}-{a}-{b}", f"{area}{a}{b}", f"({area}) {a}-{b}", f"+82 {area[1:]}-{a}-{b}"]
    return f"+82{area[1:]}{a}{b}", forms


def us_phone(rng: random.Random) -> tuple[str, list[str]]:
    area, line = rng.choice(["415", "212", "213", "646", "650"]), f"01{rng.randint(0, 99):02d}"
    forms = [
        f"({area}) 555-{line}",
        f"{area}-555-{line}",
        f"+1 {area}-555-{line}",
        f"{area}555{line}",
        f"+1{area}555{line}",
        f"{area}.555.{line}",
    ]
    return f"+1{area}555{line}", forms


def jp_phone(rng: random.Random) -> tuple[str, list[str]]:
    head, a, b = rng.choice(["90", "80", "70"]), _digits(rng, 4), _digits(rng, 4)
    forms = [f"0{head}-{a}-{b}", f"0{head}{a}{b}", f"+81 {head}-{a}-{b}", f"+81{head}{a}{b}"]
    return f"+81{head}{a}{b}", forms


def email_form(rng: random.Random, canonical: str) -> str:
    """How people and forms actually type it: case, stray whitespace."""
    r = rng.random()
    if r < 0.62:
        return canonical
    local, domain = canonical.split("@")
    if r < 0.74:
        return f" {local.title()}@{domain.title()}"
    if r < 0.84:
        return canonical.upper()
    if r < 0.93:
        return f"{canonical}  "
    return f"\t{local}@{domain.capitalize()}"


def assign_groups(rng: random.Random, n: int) -> list[str]:
    counts = {g: round(share * n) for g, (share, _, _) in GROUPS.items()}
    counts["regular"] += n - sum(counts.values())
    if counts["regular"] < 0:  # tiny shops: rounding took too many
        counts["window_shopper"] += counts["regular"]
        counts["regular"] = 0
    groups = [g for g, c in counts.items() for _ in range(max(c, 0))]
    groups = groups[:n]
    rng.shuffle(groups)
    return groups


class PeopleFactory:
    """Makes unique people: no two share an email, a phone or an id."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.next_member = 1_048_000 + rng.randint(0, 999)
        self.next_crm = 20_150_000 + rng.randint(0, 9999)

    def member_id(self) -> str:
        self.next_member += self.rng.randint(1, 40)
        return str(self.next_member)

    def crm_id(self) -> str:
        self.next_crm += self.rng.randint(1, 300)
        return f"C{self.next_crm:08d}"

    def _unique_email(self, local: str, domains: list[str]) -> tuple[str, str]:
        rng = self.rng
        while True:
            candidate = f"{local}@{rng.choice(domains)}"
            if candidate not in self.used_emails:
                self.used_emails.add(candidate)
                return candidate, local
            local = f"{local}{rng.randint(1, 9)}"

    def _unique_phone(self, make: object) -> tuple[str, list[str]]:
        while True:
            e164, forms = make(self.rng)  # type: ignore[operator]
            if e164 not in self.used_phones:
                self.used_phones.add(e164)
                return e164, forms

    def person(self, index: int, group: str) -> Person:
        rng = self.rng
        market = "KR" if group == "store_only" or rng.random() < 0.78 else "INTL"
        birth_year = rng.randint(1958, 2006)
        if market == "KR":
            city = rng.choice(cat.KR_CITIES)
            (sur_ko, sur_en), (given_ko, given_en, gender) = rng.choice(cat.SURNAMES), rng.choice(cat.GIVEN_NAMES)
            name = f"{sur_ko}{given_ko}"
            style = rng.random()
            if style < 0.4:
                local = f"{given_en}.{sur_en}{birth_year % 100:02d}"
            elif style < 0.7:
                local = f"{sur_en}{given_en}{rng.randint(1, 99)}"
            else:
                local = f"{given_en[:3]}{sur_en}_{rng.randint(100, 999)}"
            email, email_local = self._unique_email(local, cat.KR_EMAIL_DOMAINS)
            phone, phone_forms = self._unique_phone(kr_mobile)
            number = rng.randint(1, 400)
            unit = rng.randint(101, 1504)
            address_text = f"{city.address_ko} {number}, {unit}호"
            address_obj = {
                "country": "KR",
                "city": city.region,
                "street": f"{city.address_ko.split(' ', 1)[1]} {number}, {unit}호",  # type: ignore[union-attr]
                "postalCode": city.postal_code,
            }
        else:
            city = rng.choice(cat.INTL_CITIES)
            first, gender = rng.choice(cat.INTL_FIRST)
            last = rng.choice(cat.INTL_LAST_JP if city.country == "JP" else cat.INTL_LAST_US)
            name = f"{first} {last}"
            local = rng.choice([f"{first}.{last}", f"{first[0]}{last}{rng.randint(1, 99)}", f"{first}{birth_year}"])
            email, email_local = self._unique_email(local.lower(), cat.INTL_EMAIL_DOMAINS)
            phone, phone_forms = self._unique_phone(jp_phone if city.country == "JP" else us_phone)
            number = rng.randint(10, 2999)
            address_text = f"{number} {city.street}, {city.city}, {city.region} {city.postal_code}"
            address_obj = {
                "country": city.country,
                "state": city.region,
                "city": city.city,
                "street": f"{number} {city.street}",
                "postalCode": city.postal_code,
            }
        landline, landline_forms = (None, [])
        if market == "KR" and rng.random() < 0.25:
            landline, landline_forms = self._unique_phone(lambda r, a=city.area_code: kr_landline(r, a))
        person = Person(
            pid=f"p{index:05d}",
            group=group,
            market=market,
            city=city,
            name=name,
            gender=gender,
            birth_year=birth_year,
            email=email,
            email_local=email_local,
            phone_e164=phone,
            phone_forms=phone_forms,
            landline_e164=landline,
            landline_forms=landline_forms,
            address_text=address_text,
            address_obj=address_obj,
        )
        # Most people look at a few categories again and again.
        favourite = rng.sample(sorted({p.category.split("/")[0] for p in cat.PRODUCTS}), 2)
        pool = [p for p in cat.PRODUCTS if p.category.split("/")[0] in favourite]
        person.interests = pool + rng.sample(cat.PRODUCTS, 4)
        return person

    def device(self, person: Person, kind: str, *, skew: float | None = None) -> Device:
        rng = self.rng
        ua_kind = "desktop" if kind == "family_laptop" else kind
        ua = rng.choice(cat.USER_AGENTS[ua_kind][:1] if kind == "family_laptop" else cat.USER_AGENTS[ua_kind])
        if skew is None:
            r = rng.random()
            if r < 0.74:
                skew = round(rng.uniform(-2, 2), 3)  # a well-kept clock
            elif r < 0.9:
                skew = round(rng.choice([-1, 1]) * rng.uniform(60, 900), 3)  # minutes off
            elif r < 0.96:
                skew = round(rng.choice([-1, 1]) * rng.uniform(3600, 6 * 3600), 3)  # hours off
            else:
                skew = float(rng.choice([-9, 9]) * 3600 + rng.randint(-30, 30))  # a timezone taken for UTC
        ip = f"{person.city.ip_prefix}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        return Device(anon=new_uuid(rng), kind=kind, ua=ua, ip=ip, skew=skew, owner=person)
