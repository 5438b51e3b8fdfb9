"""The shop's history: people, devices, sessions and every call their browsers and the back office make."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from local.sim import catalog as cat
from local.sim.models import SimConfig
from local.sim.people import (
    FUTURE_BASE,
    GENDER_FORMS,
    GROUPS,
    Device,
    PeopleFactory,
    Person,
    assign_groups,
    email_form,
    new_uuid,
)
from shared.timeutil import to_iso

LIB_WEB = {"name": "analytics.js", "version": "npm:next-1.72.0"}
LIB_SERVER = {"name": "analytics-python", "version": "2.3.1"}
CONV_EVENTS = {"Order Completed", "Signed Up"}  # the spec's conversions; every other track name is an event
SOURCES = ("ad", "search", "social", "email", "referral", "direct")
SOURCE_MIX = {
    "loyal_big_spender": (0.10, 0.15, 0.05, 0.25, 0.05, 0.40),
    "bargain_hunter": (0.45, 0.10, 0.05, 0.25, 0.10, 0.05),
    "window_shopper": (0.15, 0.30, 0.30, 0.00, 0.10, 0.15),
    "lapsed": (0.20, 0.25, 0.10, 0.15, 0.05, 0.25),
    "new_signup": (0.30, 0.25, 0.25, 0.00, 0.10, 0.10),
    "regular": (0.20, 0.25, 0.15, 0.10, 0.10, 0.20),
}
STEPS = {  # browsing steps per session (low, high)
    "loyal_big_spender": (4, 9),
    "bargain_hunter": (3, 9),
    "window_shopper": (5, 13),
    "lapsed": (3, 8),
    "new_signup": (3, 9),
    "regular": (3, 8),
}
LOCAL_HOURS = [0, 1, 7, 8, 9, 10, 11, 12, 12, 13, 14, 15, 16, 17, 18, 19, 20, 20, 21, 21, 22, 22, 23]
CAMPAIGNS = ["winter_sale", "black_friday", "new_arrivals", "beauty_week", "gift_guide"]


@dataclass
class Ev:
    """One call as the simulator made it, and what it knows about it."""

    msg: dict[str, Any]
    time: datetime  # true time
    person: Person | None  # None: a crawler
    device: Device | None  # None: the back office (CRM, POS), or a crawler
    tables: tuple[str, ...]
    single: bool = False  # sent on its own to /v1/<call>, not in a batch


@dataclass
class Session:
    person: Person
    dev: Device
    t: datetime
    single: bool
    prev_url: str | None = None
    page: dict[str, Any] | None = None
    product: cat.Product | None = None
    cart: list[tuple[cat.Product, int]] = field(default_factory=list)


@dataclass
class Household:
    members: tuple[Person, Person]
    laptop: Device


class ShopBuilder:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.start, self.end = config.start, config.end
        self.scale = config.days / 60
        self.factory = PeopleFactory(self.rng)
        self.people: list[Person] = []
        self.households: list[Household] = []
        self.device_events: dict[str, list[Ev]] = {}
        self.devices: list[Device] = []
        self.server_events: list[Ev] = []
        self.aliases: list[tuple[str, str, str, str]] = []
        self.junk: dict[tuple[str, str], tuple[list[str], list[int]]] = {}
        self.future: dict[str, tuple[float, list[tuple[datetime, float, str, str]]]] = {}
        self.order_seq = 1_200 + self.rng.randint(0, 500)
        self.migration = self.start + timedelta(days=config.days * 0.5)

    # -- the whole history ------------------------------------------------------------------
    def build(self) -> ShopBuilder:
        rng = self.rng
        for i, group in enumerate(assign_groups(rng, self.config.customers)):
            self.people.append(self._membership(self.factory.person(i + 1, group)))
        self._households()
        for person in self.people:
            if person.web:
                self._devices(person)
        self._junk_devices()
        for person in self.people:
            if person.web:
                self._web_history(person)
            if person.crm_id:
                self._back_office(person)
        for person in self.people:
            self._future(person)
        return self

    # -- who they are -----------------------------------------------------------------------
    def _membership(self, p: Person) -> Person:
        rng = self.rng
        r = rng.random()
        existing = {
            "loyal_big_spender": 1.0,
            "bargain_hunter": 0.85,
            "window_shopper": 0.3,
            "lapsed": 0.9,
            "new_signup": 0.0,
            "regular": 0.6,
            "store_only": 0.0,
        }[p.group]
        if r < existing:
            p.user_id = self.factory.member_id()
            p.member_since = self.start - timedelta(days=rng.randint(20, 1500), seconds=rng.randint(0, 86399))
            if rng.random() < 0.07:
                p.legacy_user_id = f"{p.email_local.replace('.', '_')}{rng.randint(1, 9)}"  # type: ignore[union-attr]
        elif p.group == "new_signup" or (p.group == "regular" and r < 0.75):
            p.signs_up = True
        if p.group == "store_only":
            p.web = False
        crm_share = {"loyal_big_spender": 0.6, "regular": 0.3, "lapsed": 0.4, "bargain_hunter": 0.2, "store_only": 1.0}
        if p.market == "KR" and (p.user_id or p.group == "store_only") and rng.random() < crm_share.get(p.group, 0):
            p.crm_id = self.factory.crm_id()
            p.crm_on_web = p.web and rng.random() < 0.7
        return p

    def _households(self) -> None:
        """Families who share one laptop and both log in on it."""
        rng = self.rng
        candidates = [
            p
            for p in self.people
            if p.group in ("loyal_big_spender", "regular", "bargain_hunter")
            and p.user_id
            and p.market == "KR"
            and not p.legacy_user_id
        ]
        pairs = min(len(candidates) // 2, max(2, round(len(self.people) * 0.02)))
        chosen = rng.sample(candidates, pairs * 2)
        for a, b in zip(chosen[::2], chosen[1::2], strict=True):
            b.city, b.address_text, b.address_obj = a.city, a.address_text, dict(a.address_obj)
            laptop = self.factory.device(a, "family_laptop")
            laptop.ip = f"{a.city.ip_prefix}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            laptop.shared_by = [a, b]
            laptop.linked_by = ["login"]
            self.households.append(Household((a, b), laptop))

    def _devices(self, p: Person) -> None:
        rng = self.rng
        count = rng.choices((1, 2, 3), weights=GROUPS[p.group][1])[0]
        phones = ("android", "iphone") if p.market == "KR" else ("iphone", "android")
        first = rng.choices([*phones, "desktop"], weights=(55, 35, 10))[0]
        kinds = [first]
        for _ in range(count - 1):
            kinds.append(rng.choices(["desktop", "tablet", phones[1]], weights=(60, 20, 20))[0])
        p.devices = [self.factory.device(p, kind) for kind in kinds]
        p.devices[0].shared_by = [p]
        for device in p.devices[1:]:
            device.shared_by = [p]
        for household in self.households:
            if p in household.members:
                p.devices.append(household.laptop)

    def _junk_devices(self) -> None:
        """Broken page templates send a junk userId while nobody is logged in, on many people's devices."""
        rng = self.rng
        candidates = [
            d
            for p in self.people
            for i, d in enumerate(p.devices)
            if not d.shared and d.owner is p and not (i == 0 and p.user_id and not p.signs_up)
        ]
        rng.shuffle(candidates)
        wanted = min(
            len(candidates), max(2 * len(cat.JUNK_IDS), round(0.08 * sum(len(p.devices) for p in self.people)))
        )
        owners: list[str] = []
        picked: list[Device] = []
        for device in candidates:  # one device per person, so that each junk value spans people
            if device.owner.pid not in owners:
                owners.append(device.owner.pid)
                picked.append(device)
            if len(picked) == wanted:
                break
        for i, device in enumerate(picked):
            device.junk = cat.JUNK_IDS[i % len(cat.JUNK_IDS)]

    def _note_junk(self, value: str, where: str, person: Person) -> None:
        people, calls = self.junk.setdefault((value, where), ([], [0]))
        if person.pid not in people:
            people.append(person.pid)
        calls[0] += 1

    # -- web sessions -----------------------------------------------------------------------
    def _session_times(self, p: Person, n: int) -> list[datetime]:
        rng = self.rng
        lo, hi = self.start, self.end - timedelta(hours=4)
        if p.group == "lapsed":
            hi = self.start + timedelta(days=self.config.days * 0.4)
        elif p.group == "new_signup":
            lo = max(lo, self.end - timedelta(days=min(20.0, self.config.days * 0.35)))
        span = (hi - lo).total_seconds()
        times = []
        for _ in range(n):
            for _ in range(10):
                moment = lo + timedelta(seconds=rng.uniform(0, span))
                local = moment + timedelta(hours=p.city.utc_offset_hours)
                local = local.replace(
                    hour=rng.choice(LOCAL_HOURS), minute=rng.randint(0, 59), second=rng.randint(0, 59)
                )
                moment = local - timedelta(hours=p.city.utc_offset_hours)
                if lo <= moment <= hi:
                    break
            else:
                moment = lo + timedelta(seconds=rng.uniform(0, span))
            times.append(moment.replace(microsecond=rng.randint(0, 999) * 1000))
        times.sort()
        for i in range(1, len(times)):  # one session at a time
            if times[i] < times[i - 1] + timedelta(hours=1):
                times[i] = times[i - 1] + timedelta(hours=1, minutes=rng.randint(0, 90))
        return [t for t in times if t <= self.end - timedelta(hours=2)] or times[:1]

    def _web_history(self, p: Person) -> None:
        rng = self.rng
        lo, hi = GROUPS[p.group][2]
        times = self._session_times(p, max(1, round(rng.randint(lo, hi) * self.scale)))
        devices = p.devices
        weights = [0.55] + [0.45 / max(1, len(devices) - 1)] * (len(devices) - 1)
        plan = [rng.choices(range(len(devices)), weights=weights)[0] for _ in times]
        for d in range(len(devices)):  # every device is used at least once, when there are sessions enough
            if d not in plan and len(times) > d:
                primary = [i for i, x in enumerate(plan) if x == 0]
                slot = rng.choice(primary) if len(primary) > 1 else rng.randrange(len(plan))
                plan[slot] = d
        p.devices = [dev for d, dev in enumerate(devices) if d in plan or dev.shared]
        own = p.devices[0]
        signup_at: datetime | None = None
        if p.signs_up:
            mine = [t for t, d in zip(times, plan, strict=True) if devices[d] is own]
            k = rng.randint(1, len(mine) - 1) if len(mine) >= 2 else 0
            if p.group == "regular" and len(mine) >= 3:
                k = len(mine) // 2
            signup_at = mine[k]
        elif p.user_id and not own.shared:
            own.user_id = p.legacy_user_id or p.user_id  # logged in since before the window
            own.linked_by.append("login")
        for dev in p.devices[1:]:
            if not dev.shared and rng.random() < 0.8:
                dev.login_at_session = rng.randint(0, 2)
        group_call_done = not (p.user_id or p.signs_up) or rng.random() > 0.05
        if p.legacy_user_id:
            self.server_events.append(
                self._server_ev(
                    p,
                    self.migration,
                    "alias",
                    {"previousId": p.legacy_user_id, "userId": p.user_id},
                    behaviour=False,
                )
            )
            self.aliases.append((p.legacy_user_id, p.user_id, p.pid, "server"))  # type: ignore[arg-type]
        for t, d in zip(times, plan, strict=True):
            dev = devices[d]
            member_now = p.user_id is not None and (p.member_since is not None and p.member_since <= t)
            source = rng.choices(SOURCES, weights=SOURCE_MIX[p.group])[0]
            if source == "email" and not member_now:
                source = "direct"
            signup = signup_at == t
            order = self._will_order(p, source, member_now or signup)
            single = rng.random() < 0.015
            s = Session(person=p, dev=dev, t=t, single=single)
            p.sessions += 1
            dev.sessions += 1
            self._session(s, source, signup=signup, order=order)
            if not group_call_done and s.dev.user_id:
                self._group_call(s)
                group_call_done = True

    def _will_order(self, p: Person, source: str, member: bool) -> bool:
        rng = self.rng
        chance = {
            "loyal_big_spender": 0.40,
            "bargain_hunter": 0.40 if source in ("ad", "email") else 0.04,
            "window_shopper": 0.0,
            "lapsed": 0.35,
            "new_signup": 0.25 if member else 0.06,
            "regular": 0.18,
        }[p.group]
        return rng.random() < chance

    def _current_id(self, p: Person, t: datetime) -> str:
        return p.legacy_user_id if p.legacy_user_id and t < self.migration else p.user_id  # type: ignore[return-value]

    def _session(self, s: Session, source: str, *, signup: bool, order: bool) -> None:
        rng, p, dev = self.rng, s.person, s.dev
        if dev.shared:
            dev.user_id = None  # the family logs out when done
        if dev.user_id and p.legacy_user_id and dev.user_id == p.legacy_user_id and s.t >= self.migration:
            dev.user_id = p.user_id  # the site moved to new member numbers; the next page identifies anew
            self._identify(s, full=False)
        url, referrer, campaign, product = self._landing(p, source)
        self._page(s, url, referrer, campaign=campaign, landing=True)
        if product is not None:
            self._product_viewed(s, product)
        member_now = p.user_id is not None and p.member_since is not None and p.member_since <= s.t
        if dev.user_id and rng.random() < 0.2:
            self._identify(s, full=False)
        wants_login = (
            dev.shared
            or (dev.login_at_session is not None and dev.sessions - 1 >= dev.login_at_session)
            or (order and not signup)
        )
        if member_now and not dev.user_id and wants_login:
            self._login(s)
        lo, hi = STEPS[p.group]
        for _ in range(rng.randint(lo, hi)):
            self._browse(s)
        if signup:
            self._signup(s)
        if order:
            self._order(s, member=p.user_id is not None and p.member_since is not None and p.member_since <= s.t)

    # -- landings ---------------------------------------------------------------------------
    def _landing(self, p: Person, source: str) -> tuple[str, str, dict[str, str] | None, cat.Product | None]:
        rng = self.rng
        en = p.market != "KR"
        prefix = "/en" if en else ""
        product = rng.choice(p.interests)
        target = rng.choice(["home", "product", "product", "category", "event"])
        if target == "event" and source not in ("ad", "email"):
            target = "home"
        path = {
            "home": f"{prefix}/",
            "product": f"{prefix}/product/{product.product_id}",
            "category": f"{prefix}/category/{cat.CATEGORY_PATHS[product.category.split('/')[0]]}",
            "event": f"{prefix}/event/{rng.choice(CAMPAIGNS).replace('_', '-')}",
        }[target]
        keyword = rng.choice(cat.OUTER_KEYWORDS_EN if en else cat.OUTER_KEYWORDS_KO)
        params: list[tuple[str, str]] = []
        referrer = ""
        campaign_name = f"{rng.choice(CAMPAIGNS)}_{self.end.year}"
        if source == "ad":
            platform = rng.choice(["google", "facebook"] if en else ["google", "naver", "naver", "facebook", "kakao"])
            if platform == "google":
                params = [
                    ("utm_source", "google"),
                    ("utm_medium", "cpc"),
                    ("utm_campaign", campaign_name),
                    ("utm_term", keyword),
                    ("gclid", f"Cj0KCQiA{self._token(28)}_BwE"),
                ]
                referrer = "https://www.google.com/"
            elif platform == "naver":
                if rng.random() < 0.5:
                    params = [
                        ("n_media", "27758"),
                        ("n_query", keyword),
                        ("n_rank", str(rng.randint(1, 5))),
                        ("n_ad_group", f"grp-a001-01-{rng.randint(10**11, 10**12 - 1)}"),
                        ("n_ad", f"nad-a001-01-{rng.randint(10**11, 10**12 - 1)}"),
                        ("n_keyword_id", f"nkw-a001-01-{rng.randint(10**11, 10**12 - 1)}"),
                        ("n_keyword", keyword),
                        ("n_campaign_type", "1"),
                    ]
                else:
                    params = [
                        ("utm_source", "naver"),
                        ("utm_medium", "powerlink"),
                        ("utm_campaign", "brand_search"),
                        ("utm_term", keyword),
                    ]
                host = "m.search.naver.com" if s_mobile(p) else "search.naver.com"
                referrer = f"https://{host}/search.naver?where=nexearch&sm=top_hty&query={quote(keyword)}"
            elif platform == "facebook":
                net = rng.choice(["facebook", "instagram"])
                params = [
                    ("utm_source", net),
                    ("utm_medium", "paid_social"),
                    ("utm_campaign", campaign_name),
                    ("utm_content", rng.choice(["carousel_a", "video_15s", "story_b"])),
                    ("fbclid", f"IwAR{self._token(40)}"),
                ]
                referrer = cat.SOCIAL_REFERRERS[net]
            else:
                params = [("utm_source", "kakao"), ("utm_medium", "display"), ("utm_campaign", campaign_name)]
        elif source == "search":
            engine = rng.choice(["google", "google", "bing"] if en else ["naver", "naver", "naver", "google", "daum"])
            if engine == "naver":
                referrer = f"https://search.naver.com/search.naver?where=nexearch&sm=top_hty&fbm=0&ie=utf8&query={quote(keyword)}"
            elif engine == "google":
                domain = "www.google.com" if en else "www.google.co.kr"
                referrer = f"https://{domain}/search?q={quote(keyword)}" if rng.random() < 0.5 else f"https://{domain}/"
            elif engine == "daum":
                referrer = f"https://search.daum.net/search?w=tot&DA=YZR&q={quote(keyword)}"
            else:
                referrer = f"https://www.bing.com/search?q={quote(keyword)}"
        elif source == "social":
            net = rng.choice(["instagram", "facebook"] if en else ["instagram", "facebook", "kakaostory", "naver_blog"])
            referrer = cat.SOCIAL_REFERRERS[net]
            if net == "facebook":
                params = [("fbclid", f"IwAR{self._token(40)}")]
            elif net == "instagram" and rng.random() < 0.4:
                params = [("utm_source", "instagram"), ("utm_medium", "social"), ("utm_campaign", "bio_link")]
        elif source == "email":
            params = [
                ("utm_source", "newsletter"),
                ("utm_medium", "email"),
                ("utm_campaign", f"weekly_{self.end:%Y%m}"),
                ("utm_content", rng.choice(["hero", "product_grid", "coupon"])),
            ]
            referrer = rng.choice(["", "https://mail.naver.com/"] if not en else ["", "https://mail.google.com/"])
        elif source == "referral":
            referrer = rng.choice(cat.REFERRAL_SITES)
        url = f"{cat.SITE}{path}" + (f"?{urlencode(params)}" if params else "")
        utm = {k[4:]: v for k, v in params if k.startswith("utm_")}
        campaign = None
        if utm:
            campaign = {("name" if k == "campaign" else k): v for k, v in utm.items()}
        return url, referrer, campaign, product if target == "product" else None

    def _token(self, n: int) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    # -- calls ------------------------------------------------------------------------------
    def _message_id(self) -> str:
        return message_id(self.rng)

    def _emit(self, s: Session, call: str, body: dict[str, Any], page: dict[str, Any], **context: Any) -> Ev:
        rng, p, dev = self.rng, s.person, s.dev
        user_id: Any = dev.user_id
        if user_id is None and dev.junk is not None:
            user_id = {"0": 0, "-1": -1}.get(dev.junk, dev.junk) if rng.random() < 0.3 else dev.junk
            self._note_junk(dev.junk, "userId", p)
        width, height = cat.SCREENS["desktop" if dev.kind == "family_laptop" else dev.kind]
        msg = {
            "type": call,
            "messageId": self._message_id(),
            "anonymousId": dev.anon,
            "userId": user_id,
            **body,
            "context": {
                "library": LIB_WEB,
                "userAgent": dev.ua,
                "locale": p.locale,
                "timezone": p.city.timezone,
                "page": page,
                "screen": {"width": width, "height": height},
                **context,
            },
            "integrations": {},
            "originalTimestamp": to_iso(s.t + timedelta(seconds=dev.skew)),
        }
        ev = Ev(msg=msg, time=s.t, person=p, device=dev, tables=_tables(call, body.get("event")), single=s.single)
        self.device_events.setdefault(dev.anon, []).append(ev)
        p.seen(s.t)
        s.t += timedelta(seconds=rng.randint(1, 4), milliseconds=rng.randint(0, 999))
        return ev

    def _page_ctx(self, s: Session) -> dict[str, Any]:
        """context.page of a call: the page the browser is on (as analytics.js reads it from the document)."""
        if s.page is not None:
            return dict(s.page)
        return page_properties(s.prev_url or f"{cat.SITE}/", "")

    def _page(
        self,
        s: Session,
        url: str,
        referrer: str | None = None,
        *,
        campaign: dict[str, str] | None = None,
        landing: bool = False,
        name: str | None = None,
    ) -> None:
        """A page view; the first of a session is its landing, every other one has the previous page as referrer."""
        if not landing:
            s.t += timedelta(seconds=self.rng.randint(5, 120))
            referrer = s.prev_url
        props = page_properties(url, referrer)
        body: dict[str, Any] = {"properties": props}
        if name:
            body = {"name": name, **body}
        extra = {"campaign": campaign} if campaign else {}
        ev = self._emit(s, "page", body, dict(props), **extra)
        if landing:
            ev.tables = ("page", "land")
        s.prev_url = url
        s.page = props

    def _track(self, s: Session, event: str, properties: dict[str, Any]) -> Ev:
        return self._emit(s, "track", {"event": event, "properties": properties}, self._page_ctx(s))

    def _price(self, p: Person, product: cat.Product) -> float:
        return float(product.price_krw) if p.market == "KR" else product.price_usd

    def _product_props(self, p: Person, product: cat.Product) -> dict[str, Any]:
        return {
            "product_id": product.product_id,
            "sku": f"{product.product_id}-{'KR' if p.market == 'KR' else 'GL'}",
            "name": product.name_ko if p.market == "KR" else product.name_en,
            "category": product.category,
            "brand": product.brand,
            "price": self._price(p, product),
            "currency": p.currency,
            "url": f"{cat.SITE}{'/en' if p.market != 'KR' else ''}/product/{product.product_id}",
        }

    def _product_viewed(self, s: Session, product: cat.Product) -> None:
        s.product = product
        self._track(s, "Product Viewed", self._product_props(s.person, product))

    def _browse(self, s: Session) -> None:
        rng, p = self.rng, s.person
        prefix = "/en" if p.market != "KR" else ""
        r = rng.random()
        if p.group == "window_shopper":
            r = r * 0.95
        if r < 0.2:
            product = rng.choice(p.interests)
            self._page(s, f"{cat.SITE}{prefix}/category/{cat.CATEGORY_PATHS[product.category.split('/')[0]]}")
        elif r < 0.62:
            product = rng.choice(p.interests)
            self._page(s, f"{cat.SITE}{prefix}/product/{product.product_id}", name="Product Detail")
            self._product_viewed(s, product)
        elif r < 0.76:
            keyword = rng.choice(
                cat.INNER_KEYWORDS_EN if p.market != "KR" or rng.random() < 0.1 else cat.INNER_KEYWORDS_KO
            )
            self._page(s, f"{cat.SITE}{prefix}/search?{urlencode({'q': keyword})}", name="Search Results")
            self._track(s, "Products Searched", {"query": keyword})
        elif r < 0.88:
            if s.product is None:
                product = rng.choice(p.interests)
                self._page(s, f"{cat.SITE}{prefix}/product/{product.product_id}", name="Product Detail")
                self._product_viewed(s, product)
            quantity = rng.choice([1, 1, 1, 2])
            s.cart.append((s.product, quantity))  # type: ignore[arg-type]
            self._track(s, "Product Added", {**self._product_props(p, s.product), "quantity": quantity})  # type: ignore[arg-type]
        else:
            self._page(s, f"{cat.SITE}{prefix}/", name="Home")

    def _traits(self, s: Session, *, full: bool) -> dict[str, Any]:
        rng, p = self.rng, s.person
        traits: dict[str, Any] = {}
        if p.email and (full or rng.random() < 0.7):
            traits["email"] = email_form(rng, p.email)
            p.email_sent.append(traits["email"])
        if p.phone_e164 and (full or rng.random() < 0.4):
            phone = rng.choice(p.phone_forms)
            traits["mobile" if rng.random() < 0.15 else "phone"] = phone
            p.phone_sent.append(phone)
        if full:
            traits["name"] = p.name
            traits["gender"] = rng.choice(GENDER_FORMS[p.gender])
            traits["birthYear"] = p.birth_year if rng.random() < 0.7 else str(p.birth_year)
            traits["address"] = p.address_text if rng.random() < 0.6 else dict(p.address_obj)
        if p.crm_id and p.crm_on_web and (full or rng.random() < 0.5):
            traits["crmId"] = p.crm_id
        return traits

    def _identify(self, s: Session, *, full: bool) -> None:
        self._emit(s, "identify", {"traits": self._traits(s, full=full)}, self._page_ctx(s))

    def _login(self, s: Session) -> None:
        p, dev = s.person, s.dev
        self._page(s, f"{cat.SITE}{'/en' if p.market != 'KR' else ''}/member/login", name="Login")
        dev.user_id = self._current_id(p, s.t)
        if "login" not in dev.linked_by:
            dev.linked_by.append("login")
        self._identify(s, full=False)

    def _signup(self, s: Session) -> None:
        rng, p, dev = self.rng, s.person, s.dev
        self._page(s, f"{cat.SITE}{'/en' if p.market != 'KR' else ''}/member/join", name="Join")
        p.user_id = self.factory.member_id()
        p.member_since = s.t
        dev.user_id = p.user_id
        dev.linked_by.append("signup")
        if rng.random() < 0.3:
            self._emit(s, "alias", {"previousId": dev.anon}, self._page_ctx(s))
            self.aliases.append((dev.anon, p.user_id, p.pid, "web"))
            dev.linked_by.append("alias")
        self._identify(s, full=True)
        method = rng.choice(["email", "kakao", "naver"] if p.market == "KR" else ["email", "google", "apple"])
        self._track(s, "Signed Up", {"method": method, "type": "member"})

    def _group_call(self, s: Session) -> None:
        group_id, name, industry = self.rng.choice(cat.BUSINESS_ACCOUNTS)
        self._emit(s, "group", {"groupId": group_id, "traits": {"name": name, "industry": industry}}, self._page_ctx(s))

    def _order(self, s: Session, *, member: bool) -> None:
        rng, p = self.rng, s.person
        prefix = "/en" if p.market != "KR" else ""
        if not s.cart:
            for product in rng.sample(p.interests, rng.choice([1, 1, 2, 3])):
                self._page(s, f"{cat.SITE}{prefix}/product/{product.product_id}", name="Product Detail")
                self._product_viewed(s, product)
                quantity = rng.choice([1, 1, 2])
                s.cart.append((product, quantity))
                self._track(s, "Product Added", {**self._product_props(p, product), "quantity": quantity})
        if p.group == "loyal_big_spender" and rng.random() < 0.6:  # big baskets
            for product in rng.sample(cat.PRODUCTS, 2):
                s.cart.append((product, 1))
        # An order line is the product as viewed, less its page URL and currency (the order carries those).
        products = [
            {k: v for k, v in self._product_props(p, product).items() if k not in ("url", "currency")}
            | {"quantity": quantity}
            for product, quantity in s.cart
        ]
        subtotal = sum(item["price"] * item["quantity"] for item in products)
        coupon = None
        discount = 0.0
        if p.group == "bargain_hunter" or rng.random() < 0.1:
            coupon = rng.choice(["WELCOME10", "SALE15", "APP20", "NEWSLETTER10"])
            discount = subtotal * int(coupon[-2:]) / 100
        revenue = subtotal - discount
        revenue = float(round(revenue, -2)) if p.currency == "KRW" else round(revenue, 2)
        self._page(s, f"{cat.SITE}{prefix}/cart", name="Cart")
        self._track(s, "Checkout Started", {"value": revenue, "currency": p.currency, "products": products})
        self._page(s, f"{cat.SITE}{prefix}/order/checkout", name="Checkout")
        if not member:
            self._guest_identify(s)
        self.order_seq += rng.randint(1, 25)
        order_id = f"{s.t + timedelta(hours=9):%Y%m%d}-{self.order_seq:07d}"
        shipping = (0 if subtotal >= 50000 else 3000) if p.currency == "KRW" else (0.0 if subtotal >= 80 else 9.9)
        sent_revenue: Any = revenue
        if p.currency == "KRW" and rng.random() < 0.06:
            sent_revenue = f"{int(revenue):,}"  # some shops send formatted text; the collector must read it
        props = {
            "order_id": order_id,
            "revenue": sent_revenue,
            "shipping": shipping,
            "discount": round(discount, 2),
            "currency": p.currency,
            "products": products,
        }
        if coupon:
            props["coupon"] = coupon
        ev = self._track(s, "Order Completed", props)
        p.orders.append(
            {
                "order_id": order_id,
                "message_id": ev.msg["messageId"],
                "time": ev.time,
                "revenue": revenue,
                "currency": p.currency,
                "channel": "web",
                "products": [item["name"] for item in products],
            }
        )
        if not member:
            p.guest_orders += 1
        self._page(s, f"{cat.SITE}{prefix}/order/complete?{urlencode({'order_id': order_id})}", name="Order Complete")
        s.cart = []

    def _guest_identify(self, s: Session) -> None:
        """Guest checkout (비회원 주문): contact details without a login; some sites send a junk userId too."""
        rng, p, dev = self.rng, s.person, s.dev
        traits: dict[str, Any] = {"name": p.name}
        if rng.random() < 0.12:
            junk = rng.choice(["", "none", "null", "undefined"])
            traits["email"] = junk
            self._note_junk(junk, "email", p)
        elif p.email:
            traits["email"] = email_form(rng, p.email)
            p.email_sent.append(traits["email"])
        phone = rng.choice(p.phone_forms)
        traits["phone"] = phone
        p.phone_sent.append(phone)
        saved = dev.user_id
        if rng.random() < 0.3:
            dev.user_id = "guest"
            self._note_junk("guest", "userId", p)
        self._emit(s, "identify", {"traits": traits}, self._page_ctx(s))
        dev.user_id = saved
        if "guest_checkout" not in dev.linked_by:
            dev.linked_by.append("guest_checkout")

    # -- the back office: CRM records and store (POS) orders ---------------------------------
    def _server_ev(self, p: Person, t: datetime, call: str, body: dict[str, Any], *, behaviour: bool = True) -> Ev:
        msg = {
            "type": call,
            "messageId": new_uuid(self.rng),
            **body,
            "context": {"library": LIB_SERVER},
            "timestamp": to_iso(t),
        }
        if behaviour:  # a back-office migration is not the person being active
            p.seen(t)
        return Ev(msg=msg, time=t, person=p, device=None, tables=_tables(call, body.get("event")))

    def _back_office(self, p: Person) -> None:
        rng = self.rng
        lo, hi = self.start, self.end - timedelta(hours=3)
        if p.group == "lapsed":
            hi = self.start + timedelta(days=self.config.days * 0.4)
        span = (hi - lo).total_seconds()
        records = 2 if p.group == "store_only" and rng.random() < 0.4 else 1
        for _ in range(records):
            t = lo + timedelta(seconds=round(rng.uniform(0, span)))
            traits: dict[str, Any] = {"crmId": p.crm_id, "name": p.name}
            r = rng.random()
            if r < 0.08:
                traits["phone"] = "000-0000"
                self._note_junk("000-0000", "phone", p)
            elif r < 0.3 and p.landline_forms:
                traits["phone"] = rng.choice(p.landline_forms)
                p.phone_sent.append(traits["phone"])
            else:
                traits["phone"] = rng.choice(p.phone_forms)
                p.phone_sent.append(traits["phone"])
            r = rng.random()
            if r < 0.55 and p.email:
                traits["email"] = email_form(rng, p.email)
                p.email_sent.append(traits["email"])
            elif r < 0.75:
                junk = rng.choice(["null", "none", "", "NaN"])
                traits["email"] = junk
                self._note_junk(junk, "email", p)
            traits["gender"] = rng.choice(GENDER_FORMS[p.gender])
            traits["birthYear"] = p.birth_year
            traits["address"] = p.address_text
            traits["source"] = "crm"
            self.server_events.append(self._server_ev(p, t, "identify", {"userId": p.crm_id, "traits": traits}))
        visits = rng.randint(1, 4) if p.group == "store_only" else rng.choice([0, 0, 1, 2])
        for _ in range(visits):
            day = lo + timedelta(seconds=round(rng.uniform(0, span)))
            opening = (day + timedelta(hours=9)).replace(hour=10, minute=30, second=0, microsecond=0)
            t = opening - timedelta(hours=9) + timedelta(seconds=rng.randint(0, 10 * 3600))  # 10:30-20:30 KST
            t = min(max(t, lo), hi)
            code, store = rng.choice(cat.POS_STORES)
            basket = rng.sample(cat.PRODUCTS, rng.randint(1, 3))
            products = [
                {
                    "product_id": item.product_id,
                    "name": item.name_ko,
                    "category": item.category,
                    "price": float(item.price_krw),
                    "quantity": 1,
                }
                for item in basket
            ]
            revenue = float(sum(item.price_krw for item in basket))
            self.order_seq += rng.randint(1, 25)
            order_id = f"POS-{code}-{t + timedelta(hours=9):%Y%m%d}-{self.order_seq:05d}"
            ev = self._server_ev(
                p,
                t,
                "track",
                {
                    "userId": p.crm_id,
                    "event": "Order Completed",
                    "properties": {
                        "order_id": order_id,
                        "revenue": revenue,
                        "currency": "KRW",
                        "products": products,
                        "store": store,
                        "channel": "store",
                        "payment": rng.choice(["card", "card", "cash", "kakaopay"]),
                    },
                },
            )
            self.server_events.append(ev)
            p.orders.append(
                {
                    "order_id": order_id,
                    "message_id": ev.msg["messageId"],
                    "time": t,
                    "revenue": revenue,
                    "currency": "KRW",
                    "channel": "store",
                    "products": [item["name"] for item in products],
                }
            )

    # -- what happens next (kept in the truth only) -----------------------------------------
    def _future(self, p: Person) -> None:
        rng = self.rng
        chance = FUTURE_BASE[p.group]
        if p.last_seen is not None:
            idle = (self.end - p.last_seen).days
            chance *= 1.25 if idle <= 7 else 0.6 if idle > 30 else 1.0
        if len(p.orders) >= 3:
            chance *= 1.15
        chance = min(chance, 0.95)
        purchases = []
        if rng.random() < chance:
            n = 2 if p.group == "loyal_big_spender" and rng.random() < 0.4 else 1
            for _ in range(n):
                t = self.end + timedelta(seconds=rng.uniform(3600, self.config.future_days * 86400))
                store = p.group == "store_only" or (p.crm_id is not None and rng.random() < 0.2)
                basket = rng.sample(p.interests, rng.randint(1, 3))
                amount = float(sum(item.price_krw for item in basket))
                if p.currency == "USD" and not store:
                    amount = round(sum(item.price_usd for item in basket), 2)
                purchases.append((t, amount, "KRW" if store else p.currency, "store" if store else "web"))
        purchases.sort()
        self.future[p.pid] = (round(chance, 4), purchases)


def s_mobile(p: Person) -> bool:
    return bool(p.devices) and p.devices[0].kind in ("iphone", "android")


def _tables(call: str, event: Any) -> tuple[str, ...]:
    if call in ("identify", "alias"):
        return ("user",)
    if call == "group":
        return ("event",)
    if call in ("page", "screen"):
        return ("page",)  # a landing adds "land" where the session starts
    return ("conv",) if event in CONV_EVENTS else ("event",)


def message_id(rng: random.Random) -> str:
    """A messageId as analytics.js makes them."""
    return f"ajs-next-{rng.getrandbits(128):032x}"


def page_properties(url: str, referrer: str | None) -> dict[str, Any]:
    """A page call's properties (and context.page), as analytics.js reads them from the document."""
    path, _, query = url[len(cat.SITE) :].partition("?")
    return {
        "path": path,
        "referrer": referrer or "",
        "search": f"?{query}" if query else "",
        "title": _title(path),
        "url": url,
    }


def _title(path: str) -> str:
    en = path.startswith("/en")
    core = path[3:] if en else path
    brand = "MARU MALL" if en else "마루몰"
    if core.startswith("/product/"):
        product = next((p for p in cat.PRODUCTS if p.product_id == core.split("/")[2]), None)
        if product:
            return f"{product.name_en if en else product.name_ko} | {brand}"
    names = {
        "/": "Everyday shopping" if en else "일상을 채우는 쇼핑",
        "/cart": "Cart" if en else "장바구니",
        "/order/checkout": "Checkout" if en else "주문/결제",
        "/order/complete": "Thank you" if en else "주문 완료",
        "/member/login": "Log in" if en else "로그인",
        "/member/join": "Join" if en else "회원가입",
        "/search": "Search" if en else "검색",
    }
    if core in names:
        return f"{names[core]} | {brand}"
    return f"{core.strip('/').split('/')[-1]} | {brand}"
