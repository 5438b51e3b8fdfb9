"""A validated, enriched call becomes rows of the raw tables: user, page, land, conv, event."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson

from shared.collect.attribution import attribute
from shared.collect.enrich import corrected_time, geo_from, parse_user_agent
from shared.collect.models import TrackingCall
from shared.timeutil import to_iso

Row = dict[str, Any]


class RowError(ValueError):
    """A call that passed the spec but cannot be a row (a revenue that is not a number, ...)."""


def _normalise_event_name(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.lower())


# normalised event name -> (table, type)
_TRACK_KINDS: dict[str, tuple[str, str]] = {
    **{
        n: ("conv", "order")
        for n in (
            "ordercompleted",
            "order",
            "purchase",
            "purchased",
            "checkoutcompleted",
            "completedorder",
            "orderplaced",
            "completepurchase",
        )
    },
    **{
        n: ("conv", "signup")
        for n in (
            "signedup",
            "signup",
            "registration",
            "registered",
            "completeregistration",
            "accountcreated",
            "userregistered",
        )
    },
    **{n: ("conv", "refund") for n in ("orderrefunded", "refund", "refunded")},
    **{
        n: ("event", "product_view") for n in ("productviewed", "viewitem", "productview", "viewproduct", "viewcontent")
    },
    **{n: ("event", "search") for n in ("productssearched", "search", "searched", "sitesearch")},
    **{n: ("event", "add_to_cart") for n in ("productadded", "addtocart", "addedtocart")},
    **{n: ("event", "remove_from_cart") for n in ("productremoved", "removefromcart")},
    **{n: ("event", "checkout") for n in ("checkoutstarted", "begincheckout", "initiatecheckout")},
}


@lru_cache(maxsize=4096)
def track_kind(event_name: str) -> tuple[str, str]:
    """(table, type) of a track call by its event name; unknown names are custom events."""
    return _TRACK_KINDS.get(_normalise_event_name(event_name), ("event", "custom"))


def _text(value: Any, limit: int = 1024) -> str | None:
    if type(value) is str:  # nearly always: no str() copy, no isinstance checks
        text = value.strip()
    elif value is None or isinstance(value, dict | list):
        return None
    else:
        text = str(value).strip()
    return text[:limit] or None


def _number(value: Any, field: str, *, strict: bool) -> float | None:
    """Numbers, and numeric text such as "12,000" that shops send; other text is an error if strict."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RowError(f"{field} must be a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").strip())
        except ValueError:
            pass
    if strict:
        raise RowError(f"{field} must be a number, got {value!r}")
    return None


def _birth_year(traits: dict[str, Any]) -> int | None:
    for key in ("birthYear", "birth_year", "birthyear"):
        value = traits.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
    birthday = traits.get("birthday") or traits.get("birthdate") or traits.get("birth_date")
    if isinstance(birthday, str) and re.match(r"^\s*(19|20)\d\d", birthday):
        return int(birthday.strip()[:4])
    return None


def _address(value: Any) -> str | None:
    if isinstance(value, dict):
        parts = [value.get(k) for k in ("country", "state", "city", "street", "postalCode", "postal_code")]
        return " ".join(str(p) for p in parts if p) or None
    return _text(value)


def _products(properties: dict[str, Any]) -> list[dict[str, Any]]:
    items = properties.get("products") or properties.get("items")
    if not isinstance(items, list):
        # One product described by the event's own properties (Segment's single-product events).
        items = [properties] if any(k in properties for k in ("product_id", "productId", "sku")) else []
    products = []
    for item in items:
        if not isinstance(item, dict):
            continue
        products.append(
            {
                "product_id": _text(
                    item.get("product_id") or item.get("productId") or item.get("id") or item.get("sku")
                ),
                "name": _text(item.get("name") or item.get("product_name")),
                "price": _number(item.get("price"), "products[].price", strict=False),
                "quantity": _number(item.get("quantity"), "products[].quantity", strict=False),
                "category": _text(item.get("category")),
            }
        )
    return products


@lru_cache(maxsize=16384)
def _device_fields(user_agent: str | None) -> dict[str, Any]:
    """The device columns of a user agent (callers unpack the dict, never change it)."""
    return parse_user_agent(user_agent).model_dump()


_NO_GEO_COLUMNS = geo_from({}, {}).model_dump()  # shared by every row without geo (callers never change it)


class RowBuilder:
    """Builds the rows of one request's calls; everything request-wide is computed once."""

    def __init__(
        self,
        *,
        site_id: str,
        received_at: datetime,
        ip: str | None,
        user_agent: str | None,
        headers: dict[str, str],
        batch_sent_at: datetime | None,
        batch_context: dict[str, Any],
    ) -> None:
        self.site_id = site_id
        self.received_at = received_at
        self.received_iso = to_iso(received_at)
        self.ip = ip
        self.user_agent = user_agent
        self.headers = headers
        self.batch_sent_at = batch_sent_at
        self.batch_context = batch_context
        # Request-wide values that most calls of a batch share: computed once, not per call.
        self._batch_sent_iso = to_iso(batch_sent_at) if batch_sent_at else None
        self._geo_without_location: dict[str, Any] | None = None

    def rows(self, call: TrackingCall, raw_json: str, event_id: str) -> list[tuple[str, Row]]:
        """[(table, row)] for one call: a page view may also be a landing."""
        context = {**self.batch_context, **call.context} if self.batch_context else call.context
        base = self._common(call, raw_json, context, event_id)
        if call.type in ("identify", "alias"):
            return [("user", self._user(call, base, context))]
        if call.type == "group":
            return [
                (
                    "event",
                    {
                        **base,
                        "event_name": "group",
                        "event_type": "group",
                        "product_id": None,
                        "product_name": None,
                        "category": None,
                        "price": None,
                        "search_keyword": None,
                    },
                )
            ]
        if call.type in ("page", "screen"):
            return self._page(call, base, context)
        table, kind = track_kind(call.event or "")
        if table == "conv":
            return [("conv", self._conv(call, base, kind))]
        return [("event", self._event(call, base, kind))]

    def _common(self, call: TrackingCall, raw_json: str, context: dict[str, Any], event_id: str) -> Row:
        sent_at = call.sent_at or self.batch_sent_at
        client_time = call.original_timestamp or call.timestamp
        user_agent = _text(context.get("userAgent"), 1024) or self.user_agent
        page = context.get("page") if isinstance(context.get("page"), dict) else {}
        props = call.properties if call.type in ("page", "screen") else {}
        page_url = _text(props.get("url") or page.get("url"), 2048)
        page_path = _text(props.get("path") or page.get("path"), 2048)
        library = context.get("library") if isinstance(context.get("library"), dict) else {}
        return {
            "event_id": event_id,
            "site_id": self.site_id,
            "call": call.type,
            "event_time": to_iso(corrected_time(self.received_at, sent_at, client_time)),
            "received_at": self.received_iso,
            "sent_at": self._batch_sent_iso if sent_at is self.batch_sent_at else to_iso(sent_at) if sent_at else None,
            "original_timestamp": to_iso(client_time) if client_time else None,
            "anonymous_id": call.anonymous_id,
            "user_id": call.user_id,
            "ip": _text(context.get("ip"), 64) or self.ip,
            "user_agent": user_agent,
            **_device_fields(user_agent),
            "locale": _text(context.get("locale"), 32),
            "timezone": _text(context.get("timezone"), 64),
            **self._geo(context),
            "page_url": page_url,
            "page_path": page_path,
            "library": _version_of(library),
            "properties": orjson.dumps(call.traits if call.type in ("identify", "group") else call.properties).decode(),
            "raw": raw_json,
        }

    def _geo(self, context: dict[str, Any]) -> dict[str, Any]:
        """Geo columns: from the request's headers alone unless the call carries a location of its own."""
        if isinstance(context.get("location"), dict):
            return geo_from(self.headers, context).model_dump()
        if self._geo_without_location is None:
            self._geo_without_location = geo_from(self.headers, {}).model_dump() if self.headers else _NO_GEO_COLUMNS
        return self._geo_without_location

    def _user(self, call: TrackingCall, base: Row, context: dict[str, Any]) -> Row:
        traits = (
            {**(context.get("traits") or {}), **call.traits} if isinstance(context.get("traits"), dict) else call.traits
        )
        return {
            **base,
            "previous_id": call.previous_id,
            "group_id": None,
            "email": _text(traits.get("email"), 320),
            "phone": _text(traits.get("phone") or traits.get("mobile") or traits.get("phoneNumber"), 64),
            "name": _text(traits.get("name"), 256),
            "first_name": _text(traits.get("firstName") or traits.get("first_name"), 128),
            "last_name": _text(traits.get("lastName") or traits.get("last_name"), 128),
            "gender": _text(traits.get("gender") or traits.get("sex"), 32),
            "birth_year": _birth_year(traits),
            "crm_id": _text(traits.get("crmId") or traits.get("crm_id") or traits.get("customerId"), 256),
            "address": _address(traits.get("address")),
        }

    def _page(self, call: TrackingCall, base: Row, context: dict[str, Any]) -> list[tuple[str, Row]]:
        page = context.get("page") if isinstance(context.get("page"), dict) else {}
        props = call.properties
        referrer = _text(props.get("referrer") or page.get("referrer"), 2048)
        rows: list[tuple[str, Row]] = [
            (
                "page",
                {
                    **base,
                    "name": call.name,
                    "category": call.category,
                    "title": _text(props.get("title") or page.get("title"), 512),
                    "referrer": referrer,
                    "search": _text(props.get("search") or page.get("search"), 2048),
                },
            )
        ]
        campaign = context.get("campaign") if isinstance(context.get("campaign"), dict) else {}
        campaign_key = tuple(sorted((k, str(v)) for k, v in campaign.items() if isinstance(v, str | int | float)))
        landing = attribute(base["page_url"], referrer, campaign_key)
        if landing.is_landing:
            rows.append(("land", {**base, "referrer": referrer, **landing.model_dump(exclude={"is_landing"})}))
        return rows

    def _conv(self, call: TrackingCall, base: Row, kind: str) -> Row:
        props = call.properties
        revenue_key = next((k for k in ("revenue", "total", "value") if props.get(k) not in (None, "")), None)
        revenue = _number(props.get(revenue_key), f"properties.{revenue_key}", strict=True) if revenue_key else None
        products = _products(props)
        if revenue is None and products and kind == "order":
            revenue = sum((p["price"] or 0) * (p["quantity"] or 1) for p in products) or None
        return {
            **base,
            "conv_type": kind,
            "event_name": call.event,
            "order_id": _text(props.get("order_id") or props.get("orderId") or props.get("transaction_id"), 256),
            "revenue": revenue,
            "currency": currency.upper() if (currency := _text(props.get("currency"), 8)) else None,
            "products": orjson.dumps(products).decode() if products else None,
            "product_names": " | ".join(p["name"] for p in products if p["name"]) or None,
        }

    def _event(self, call: TrackingCall, base: Row, kind: str) -> Row:
        props = call.properties
        return {
            **base,
            "event_name": call.event,
            "event_type": kind,
            "product_id": _text(props.get("product_id") or props.get("productId") or props.get("sku"), 256),
            "product_name": _text(props.get("name") or props.get("product_name"), 512) if kind != "search" else None,
            "category": _text(props.get("category"), 256),
            "price": _number(props.get("price"), "properties.price", strict=False),
            "search_keyword": _text(props.get("query") or props.get("keyword") or props.get("search_term"), 512),
        }


def _version_of(library: dict[str, Any]) -> str | None:
    name = _text(library.get("name"), 64)
    version = _text(library.get("version"), 32)
    return f"{name}/{version}" if name and version else name
