"""What the collector adds to every call: server time and skew-corrected time, parsed user agent, geo."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import ua_parser
from pydantic import BaseModel

# A client clock claiming a time this far past the server's is pulled back to the server's.
FUTURE_TOLERANCE = timedelta(seconds=5)


class Device(BaseModel):
    device_type: str | None = None
    device: str | None = None
    os: str | None = None
    os_version: str | None = None
    browser: str | None = None
    browser_version: str | None = None


def _version(*parts: str | None) -> str | None:
    taken = [p for p in parts if p]
    return ".".join(taken) or None


_TABLET_HINTS = ("ipad", "tablet", "kindle", "silk", "playbook", "sm-t", "sm-x", "tab")
# "bot" only as a word's end before a separator (Googlebot/2.1, bingbot;) so that phones such as
# CUBOT_X30 stay phones; a contact URL (+http://...) is what crawlers add.
_BOT_PATTERN = re.compile(r"(bot|spider|crawler)(/|;|\)|\s|$)|\+https?://|headlesschrome|lighthouse|slurp")


@lru_cache(maxsize=16384)
def parse_user_agent(user_agent: str | None) -> Device:
    """Device, os and browser from a user-agent string (ua-parser); cached, browsers repeat."""
    if not user_agent:
        return Device()
    result = ua_parser.parse(user_agent)
    ua = result.user_agent
    os = result.os
    device = result.device
    lowered = user_agent.lower()
    device_family = device.family if device and device.family != "Other" else None
    if device_family == "Spider" or _BOT_PATTERN.search(lowered):
        device_type = "bot"
    elif any(h in lowered for h in _TABLET_HINTS) or (os and os.family == "Android" and "mobile" not in lowered):
        device_type = "tablet"
    elif "mobi" in lowered or (os and os.family in ("iOS", "Android")):
        device_type = "mobile"
    elif os and os.family in ("Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD"):
        device_type = "desktop"
    else:
        device_type = "other"
    return Device(
        device_type=device_type,
        device=device_family or ("Desktop" if device_type == "desktop" else None),
        os=os.family if os and os.family != "Other" else None,
        os_version=_version(os.major, os.minor) if os else None,
        browser=ua.family if ua and ua.family != "Other" else None,
        browser_version=_version(ua.major, ua.minor) if ua else None,
    )


def corrected_time(received_at: datetime, sent_at: datetime | None, client_time: datetime | None) -> datetime:
    """received_at - (sent_at - client_time): the client's clock error cancels out. Never in the future."""
    if client_time is None:
        return received_at
    moment = received_at - (sent_at - client_time) if sent_at is not None else client_time
    return received_at if moment > received_at + FUTURE_TOLERANCE else moment


class Geo(BaseModel):
    country: str | None = None
    region: str | None = None
    city: str | None = None


# Headers an edge in front of the function can add. On Google Cloud: an external Application Load
# Balancer with custom request headers X-Client-Geo-Country: {client_region},
# X-Client-Geo-Region: {client_region_subdivision}, X-Client-Geo-City: {client_city}.
# App Engine style X-Appengine-* and Cloudflare's CF-IPCountry are read as well.
_GEO_HEADERS = {
    "country": ("X-Client-Geo-Country", "X-Appengine-Country", "CF-IPCountry"),
    "region": ("X-Client-Geo-Region", "X-Appengine-Region"),
    "city": ("X-Client-Geo-City", "X-Appengine-City"),
}


GEO_HEADER_NAMES = tuple(name for names in _GEO_HEADERS.values() for name in names)
_NO_GEO = Geo()


def geo_from(headers: dict[str, str], context: dict[str, Any]) -> Geo:
    """The edge's geo headers first (the platform measured them), then the SDK's context.location."""
    location = context.get("location") if isinstance(context.get("location"), dict) else {}
    if not headers and not location:
        return _NO_GEO
    found: dict[str, str | None] = {}
    for field, names in _GEO_HEADERS.items():
        value = next((headers[n] for n in names if headers.get(n) and headers[n] not in ("ZZ", "XX")), None)
        if value is None and isinstance(location.get(field), str):
            value = location[field]
        found[field] = value.strip()[:64] if value else None
    if found["country"] and len(found["country"]) == 2:
        found["country"] = found["country"].upper()
    return Geo(**found)
