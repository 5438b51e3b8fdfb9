"""From calls to HTTP requests as SDKs send them (batches, single calls, gzip, retries), plus the bad input
broken clients send; and, from the simulator's own knowledge, what the warehouse must hold afterwards."""

from __future__ import annotations

import base64
import gzip
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from local.sim import catalog as cat
from local.sim.models import (
    TABLES,
    Expected,
    SimConfig,
    SimRequest,
)
from local.sim.people import REGION_CODES, new_uuid
from local.sim.shop import LIB_WEB, Ev, ShopBuilder, message_id, page_properties
from shared.timeutil import to_iso

# The limits the SDKs assume (the Segment spec): 32 KB a message, about 500 KB a request.
EVENT_LIMIT = 32 * 1024
REQUEST_LIMIT = 500 * 1024
SERVER_IP = "34.64.121.7"
SERVER_UA = "analytics-python/2.3.1"
# Crawlers run the site's JavaScript too (Googlebot renders pages); each visit comes without cookies.
CRAWLER_UAS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; Yeti/1.1; +https://naver.me/spd)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
]
CRAWLER_IP = "66.249.66.1"
CRAWLER_VISITS_PER_CUSTOMER = 1 / 30
RETRY_SHARE = 0.03
GZIP_SHARE = 0.2
BODY_KEY_SHARE = 0.1  # write key in the body instead of Basic auth (older analytics.js builds)

# bad input: kind -> (reason code, HTTP status of its request); standalone kinds are requests of their own,
# the others are one bad event inside an otherwise good batch (which is still answered 200).
STANDALONE = {
    "malformed_json": ("malformed_json", 400),
    "invalid_body": ("invalid_body", 400),
    "missing_write_key": ("missing_write_key", 401),
    "unknown_write_key": ("unknown_write_key", 401),
    "invalid_batch": ("invalid_batch", 400),
    "bad_gzip": ("bad_gzip", 400),
    "payload_too_large": ("payload_too_large", 413),
    "single_properties_string": ("invalid_event", 400),
    "single_user_id_object": ("invalid_event", 400),
    "single_track_without_event": ("invalid_event", 400),
    "single_revenue_abc": ("invalid_value", 400),
}
INJECTED = {
    "properties_string": "invalid_event",
    "user_id_object": "invalid_event",
    "track_without_event": "invalid_event",
    "revenue_abc": "invalid_value",
    "oversize_event": "event_too_large",
    "non_object_item": "invalid_event",
}


@dataclass(eq=False)
class Draft:
    label: str
    path: str
    events: list[Ev]
    send_time: datetime
    device_key: str  # anonymous id, or "server"
    skew: float = 0.0
    gzipped: bool = False
    key_in_body: bool = False
    single: bool = False
    retry_of: Draft | None = None
    bad: list[str] = field(default_factory=list)
    injected: list[tuple[int, Any, str]] = field(default_factory=list)  # (position, item, reason code)
    raw: bytes | None = None  # standalone bad input: the body as it is
    raw_headers: dict[str, str] | None = None
    status: int = 200
    rejected: list[str] = field(default_factory=list)
    user_agent: str | None = None  # a crawler's: it has no device of the shop's people


@dataclass
class Plan:
    """What the simulator knows each request will do."""

    accepted: list[tuple[str, tuple[str, ...]]]  # (message id, tables)
    rejected: list[str]
    status: int


class Wire:
    def __init__(self, shop: ShopBuilder) -> None:
        self.shop = shop
        self.config: SimConfig = shop.config
        self.rng = random.Random(shop.config.seed * 7919 + 1)
        self.end = shop.end
        self.drafts: list[Draft] = []
        self.crawler_events = 0
        self.requests: list[SimRequest] = []
        self.plans: list[Plan] = []

    def build(self) -> Wire:
        self._clean_drafts()
        retries = self._retries()
        bad = self._bad(retries)
        ordered = sorted(self.drafts, key=lambda d: d.send_time)
        for retry in retries:  # an SDK retry goes out a little after the original
            at = next(i for i, d in enumerate(ordered) if d is retry.retry_of) + 1 + self.rng.randint(0, 15)
            ordered.insert(min(at, len(ordered)), retry)
        for draft in bad:
            ordered.insert(self.rng.randint(0, len(ordered)), draft)
        # Crawlers last, on their own random stream: the shop's own requests stay what they were.
        crawler_rng = random.Random(self.config.seed * 7919 + 2)
        crawlers = self._crawlers(crawler_rng)
        self.crawler_events = sum(len(d.events) for d in crawlers)
        for draft in crawlers:
            ordered.insert(crawler_rng.randint(0, len(ordered)), draft)
        for draft in ordered:
            request, plan = self._serialise(draft)
            self.requests.append(request)
            self.plans.append(plan)
        return self

    # -- good traffic -----------------------------------------------------------------------
    def _clean_drafts(self) -> None:
        rng = self.rng
        for anon, events in self.shop.device_events.items():
            events = sorted(events, key=lambda e: e.time)
            device = events[0].device
            assert device is not None
            chunk: list[Ev] = []
            limit = rng.randint(50, 100)
            count = 0

            for ev in events:
                if ev.single:
                    call = ev.msg["type"]
                    self.drafts.append(
                        Draft(
                            label=f"single:{call}:{ev.msg['messageId'][-8:]}",
                            path=f"/v1/{call}",
                            events=[ev],
                            send_time=ev.time + timedelta(milliseconds=rng.randint(50, 900)),
                            device_key=anon,
                            skew=device.skew,
                            single=True,
                        )
                    )
                    continue
                chunk.append(ev)
                if len(chunk) >= limit:
                    self._flush(anon, device.skew, chunk, count)
                    chunk, count, limit = [], count + 1, rng.randint(50, 100)
            if chunk:
                self._flush(anon, device.skew, chunk, count)
        server = sorted(self.shop.server_events, key=lambda e: e.time)
        i = count = 0
        while i < len(server):
            size = rng.randint(50, 100)
            chunk = server[i : i + size]
            self.drafts.append(
                Draft(
                    label=f"server:{count}",
                    path="/v1/batch",
                    events=chunk,
                    send_time=chunk[-1].time + timedelta(seconds=rng.uniform(1, 30)),
                    device_key="server",
                    gzipped=rng.random() < 0.5,
                )
            )
            i, count = i + size, count + 1

    def _crawlers(self, rng: random.Random) -> list[Draft]:
        """Crawler visits: a few page views each, in one batch, a fresh anonymous id per visit (no cookies)."""
        drafts = []
        for n in range(max(1, round(self.config.customers * CRAWLER_VISITS_PER_CUSTOMER))):
            anon = new_uuid(rng)
            t = self.end - timedelta(seconds=rng.uniform(3600, self.config.days * 86400))
            events, referrer = [], ""
            for _ in range(rng.randint(2, 5)):
                url = f"{cat.SITE}/product/{rng.choice(cat.PRODUCTS).product_id}"
                page = page_properties(url, referrer)
                msg = {
                    "type": "page",
                    "messageId": message_id(rng),
                    "anonymousId": anon,
                    "userId": None,
                    "properties": page,
                    "context": {"library": LIB_WEB, "page": page},
                    "originalTimestamp": to_iso(t),
                }
                tables = ("page", "land") if not referrer else ("page",)  # no referrer: a landing
                events.append(Ev(msg=msg, time=t, person=None, device=None, tables=tables))
                referrer, t = url, t + timedelta(seconds=rng.uniform(1, 20))
            drafts.append(
                Draft(
                    label=f"crawler:{n}",
                    path="/v1/batch",
                    events=events,
                    send_time=t,
                    device_key=anon,
                    user_agent=rng.choice(CRAWLER_UAS),
                )
            )
        return drafts

    def _flush(self, anon: str, skew: float, chunk: list[Ev], count: int) -> None:
        rng = self.rng
        self.drafts.append(
            Draft(
                label=f"batch:{anon[:8]}:{count}",
                path="/v1/batch",
                events=chunk,
                send_time=chunk[-1].time + timedelta(seconds=rng.uniform(1, 30)),
                device_key=anon,
                skew=skew,
                gzipped=rng.random() < GZIP_SHARE,
                key_in_body=rng.random() < BODY_KEY_SHARE,
            )
        )

    def _retries(self) -> list[Draft]:
        rng = self.rng
        batches = [d for d in self.drafts if not d.single]
        n = round(len(batches) * RETRY_SHARE) if len(batches) >= 10 else min(1, len(batches))
        retries = []
        for original in rng.sample(batches, n):
            retries.append(
                Draft(
                    label=f"retry:{original.label}",
                    path=original.path,
                    events=original.events,
                    send_time=original.send_time,
                    device_key=original.device_key,
                    skew=original.skew,
                    gzipped=original.gzipped,
                    key_in_body=original.key_in_body,
                    retry_of=original,
                )
            )
        return retries

    # -- bad input --------------------------------------------------------------------------
    def _bad(self, retries: list[Draft]) -> list[Draft]:
        """`bad_share` of all requests carry bad input; every kind shows up once before any repeats."""
        rng = self.rng
        share = self.config.bad_share
        every = [*STANDALONE, *INJECTED]
        sequence: list[str] = []
        kinds: list[str] = []
        clean = len(self.drafts) + len(retries)
        while share > 0:
            standalone = sum(1 for k in kinds if k in STANDALONE)
            if len(kinds) >= share * (clean + standalone) - 0.5:
                break
            if len(kinds) == len(sequence):
                cycle = list(every)
                rng.shuffle(cycle)
                sequence.extend(cycle)
            kinds.append(sequence[len(kinds)])
        retried = {id(r.retry_of) for r in retries}
        targets = [
            d for d in self.drafts if not d.single and d.device_key != "server" and d.events and id(d) not in retried
        ]
        rng.shuffle(targets)
        made: list[Draft] = []
        for n, kind in enumerate(kinds):
            if kind in INJECTED and targets:
                draft = targets.pop()
                position = rng.randint(0, len(draft.events))
                item = self._bad_item(kind, draft.events[rng.randrange(len(draft.events))].msg)
                draft.injected.append((position, item, INJECTED[kind]))
                draft.bad.append(kind)
                draft.label = f"{draft.label}+bad:{kind}"
            else:
                if kind in INJECTED:  # no batch to hide it in: send it alone
                    kind = "single_properties_string"
                made.append(self._standalone(kind, n))
        return made

    def _ghost_items(self, n: int, *, padding: int = 0) -> list[dict[str, Any]]:
        """Calls of a visitor who is not part of the shop (another site, a test page): never to land."""
        rng = self.rng
        anon = new_uuid(rng)
        t = self.end - timedelta(minutes=rng.randint(30, 600))
        items = []
        for i in range(n):
            product = rng.choice(cat.PRODUCTS)
            props: dict[str, Any] = {
                "product_id": product.product_id,
                "name": product.name_ko,
                "price": product.price_krw,
                "currency": "KRW",
            }
            if padding:
                props["description"] = "상세 설명 " * padding
            items.append(
                {
                    "type": "track",
                    "messageId": message_id(rng),
                    "anonymousId": anon,
                    "userId": None,
                    "event": "Product Viewed",
                    "properties": props,
                    "context": {"library": LIB_WEB, "userAgent": cat.USER_AGENTS["android"][0], "locale": "ko-KR"},
                    "integrations": {},
                    "originalTimestamp": to_iso(t + timedelta(seconds=20 * i)),
                }
            )
        return items

    def _bad_item(self, kind: str, base: dict[str, Any]) -> Any:
        """One broken call, made from a real neighbour's context (same device, same clock)."""
        rng = self.rng
        common = {
            "messageId": f"ajs-next-{rng.getrandbits(128):032x}",
            "anonymousId": base.get("anonymousId") or new_uuid(rng),
            "userId": base.get("userId"),
            "context": base.get("context", {}),
            "integrations": {},
            "originalTimestamp": base.get("originalTimestamp") or base.get("timestamp"),
        }
        product = rng.choice(cat.PRODUCTS)
        if kind in ("properties_string", "single_properties_string"):
            return {
                **common,
                "type": "track",
                "event": "Product Viewed",
                "properties": f"product_id={product.product_id}",
            }
        if kind in ("user_id_object", "single_user_id_object"):
            return {
                **common,
                "type": "identify",
                "userId": {"id": rng.randint(10**6, 10**7), "provider": "kakao"},
                "traits": {"name": "[object Object]"},
            }
        if kind in ("track_without_event", "single_track_without_event"):
            item = {**common, "type": "track", "properties": {"product_id": product.product_id}}
            if rng.random() < 0.5:
                item["event"] = ""
            return item
        if kind in ("revenue_abc", "single_revenue_abc"):
            return {
                **common,
                "type": "track",
                "event": "Order Completed",
                "properties": {
                    "order_id": f"TEST-{rng.randint(10**5, 10**6)}",
                    "revenue": "abc",
                    "currency": "KRW",
                    "products": [{"product_id": product.product_id, "name": product.name_ko, "quantity": 1}],
                },
            }
        if kind == "oversize_event":
            description = "<p>" + "제품 상세 설명입니다. 소재와 사이즈를 확인하세요. " * 900 + "</p>"
            return {
                **common,
                "type": "track",
                "event": "Product Viewed",
                "properties": {"product_id": product.product_id, "name": product.name_ko, "description": description},
            }
        if kind == "non_object_item":
            return rng.choice(["[object Object]", 0, None, ["track"]])
        raise ValueError(kind)

    def _standalone(self, kind: str, n: int) -> Draft:
        rng = self.rng
        code, status = STANDALONE[kind]
        key = self.config.write_key
        path = "/v1/batch"
        headers = _headers(
            key, ua=cat.USER_AGENTS["desktop"][0], ip=f"211.36.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        )
        sent_at = to_iso(self.end)
        ghost = self._ghost_items(rng.randint(3, 12))
        if kind == "malformed_json":
            whole = orjson.dumps({"batch": ghost, "sentAt": sent_at})
            body = whole[: rng.randint(len(whole) // 3, len(whole) - 5)] if rng.random() < 0.6 else whole + b","
        elif kind == "invalid_body":
            body = orjson.dumps(ghost)  # a bare array
        elif kind == "missing_write_key":
            headers.pop("Authorization")
            body = orjson.dumps({"batch": ghost, "sentAt": sent_at})
        elif kind == "unknown_write_key":
            headers = _headers(
                rng.choice(["wk_staging_shop", "wk_demo_shop_old", "WK_DEMO_SHOP"]), ua=headers["User-Agent"]
            )
            body = orjson.dumps({"batch": ghost, "sentAt": sent_at})
        elif kind == "invalid_batch":
            body = b"{}" if rng.random() < 0.7 else orjson.dumps({"batch": ghost[0], "sentAt": sent_at})
        elif kind == "bad_gzip":
            headers["Content-Encoding"] = "gzip"
            plain = orjson.dumps({"batch": ghost, "sentAt": sent_at})
            if rng.random() < 0.5:
                body = plain  # the header says gzip, the body is not
            else:
                packed = gzip.compress(plain, mtime=0)
                body = packed[: len(packed) // 2]  # cut off in transit
        elif kind == "payload_too_large":
            items: list[dict[str, Any]] = []
            while len(orjson.dumps(items)) <= REQUEST_LIMIT + 20_000:
                items.extend(self._ghost_items(50, padding=30))
            headers["Content-Encoding"] = "gzip"
            body = gzip.compress(orjson.dumps({"batch": items, "sentAt": sent_at}), mtime=0)
        else:  # a single call with a bad event
            item = self._bad_item(kind, ghost[0])
            call = item["type"]
            path = f"/v1/{call}"
            body = orjson.dumps({**item, "sentAt": sent_at})
        return Draft(
            label=f"bad:{kind}:{n}",
            path=path,
            events=[],
            send_time=self.end,
            device_key="ghost",
            bad=[kind],
            raw=body,
            raw_headers=headers,
            status=status,
            rejected=[code],
        )

    # -- bytes ------------------------------------------------------------------------------
    def _serialise(self, draft: Draft) -> tuple[SimRequest, Plan]:
        if draft.raw is not None:
            request = SimRequest(
                path=draft.path,
                headers=draft.raw_headers or {},
                body=draft.raw,
                label=draft.label,
                expected_status=draft.status,
                bad=draft.bad,
            )
            return request, Plan(accepted=[], rejected=list(draft.rejected), status=draft.status)
        sent_at = to_iso(self.end + timedelta(seconds=draft.skew))
        first = draft.events[0]
        if draft.user_agent is not None:
            headers = _headers(self.config.write_key, ua=draft.user_agent, ip=CRAWLER_IP)
        elif first.device is not None:
            person = first.device.owner
            headers = _headers(
                self.config.write_key,
                ua=first.device.ua,
                ip=first.device.ip,
                geo=(person.city.country, REGION_CODES.get(person.city.city, ""), person.city.city),
            )
        else:
            headers = _headers(self.config.write_key, ua=SERVER_UA, ip=SERVER_IP)
        if draft.single:
            document: dict[str, Any] = {**first.msg, "sentAt": sent_at}
        else:
            items: list[Any] = [ev.msg for ev in draft.events]
            for position, item, _ in sorted(draft.injected, key=lambda x: -x[0]):
                items.insert(position, item)
            document = {"batch": items, "sentAt": sent_at}
        if draft.key_in_body:
            headers.pop("Authorization")
            document["writeKey"] = self.config.write_key
        body = orjson.dumps(document)
        if draft.gzipped:
            headers["Content-Encoding"] = "gzip"
            body = gzip.compress(body, mtime=0)
        request = SimRequest(
            path=draft.path,
            headers=headers,
            body=body,
            label=draft.label,
            expected_status=200,
            bad=draft.bad,
            retry_of=draft.retry_of.label if draft.retry_of else None,
            sent_at=sent_at,
            clock_skew_seconds=draft.skew,
            gzipped=draft.gzipped,
        )
        plan = Plan(
            accepted=[(ev.msg["messageId"], ev.tables) for ev in draft.events],
            rejected=[code for _, _, code in draft.injected],
            status=200,
        )
        return request, plan

    # -- what must land ---------------------------------------------------------------------
    def expected(self) -> Expected:
        stored: Counter[str] = Counter()
        unique: dict[str, set[str]] = {t: set() for t in TABLES}
        rejected: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        accepted = 0
        ids: set[str] = set()
        for plan in self.plans:
            statuses[plan.status] += 1
            rejected.update(plan.rejected)
            for event_id, tables in plan.accepted:
                accepted += 1
                ids.add(event_id)
                for table in tables:
                    stored[table] += 1
                    unique[table].add(event_id)
        return Expected(
            unique={t: len(unique[t]) for t in TABLES},
            stored={t: stored[t] for t in TABLES},
            rejected=dict(sorted(rejected.items())),
            accepted_events=accepted,
            unique_events=len(ids),
            requests=len(self.requests),
            bad_requests=sum(1 for r in self.requests if r.bad),
            retried_requests=sum(1 for r in self.requests if r.retry_of),
            statuses=dict(sorted(statuses.items())),
            crawler_events=self.crawler_events,
        )


def _headers(
    write_key: str, *, ua: str, ip: str | None = None, geo: tuple[str, str, str] | None = None
) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}", "User-Agent": ua}
    if ip:
        headers["X-Forwarded-For"] = ip  # what the load balancer in front adds
    if geo:
        headers["X-Client-Geo-Country"], headers["X-Client-Geo-Region"], headers["X-Client-Geo-City"] = geo
    return headers
