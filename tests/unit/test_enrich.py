"""Enrichment: user agents, clock skew, geo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.collect.enrich import corrected_time, geo_from, parse_user_agent

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ua", "device_type", "os", "browser"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "desktop",
            "Windows",
            "Chrome",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
            "mobile",
            "Android",
            "Chrome",
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "tablet",
            "Android",
            "Chrome",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0 Mobile Safari/537.36",
            "mobile",
            "Android",
            "Samsung Internet",
        ),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", None, "Googlebot"),
    ],
)
def test_user_agents(ua: str, device_type: str, os: str | None, browser: str) -> None:
    device = parse_user_agent(ua)
    assert (device.device_type, device.os, device.browser) == (device_type, os, browser)


def test_no_user_agent_is_empty() -> None:
    assert parse_user_agent(None).device_type is None


def test_skew_correction() -> None:
    client_behind = NOW - timedelta(hours=3)
    assert corrected_time(NOW, client_behind + timedelta(seconds=10), client_behind) == NOW - timedelta(seconds=10)
    assert corrected_time(NOW, None, NOW - timedelta(days=2)) == NOW - timedelta(days=2)
    assert corrected_time(NOW, None, None) == NOW
    assert corrected_time(NOW, None, NOW + timedelta(days=1)) == NOW


def test_geo_ignores_unknown_country_markers() -> None:
    assert geo_from({"X-Appengine-Country": "ZZ"}, {}).country is None
    assert geo_from({"CF-IPCountry": "kr"}, {"location": {"country": "US"}}).country == "KR"


def test_phones_named_like_bots_are_phones() -> None:
    cubot = "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"
    assert parse_user_agent(cubot).device_type == "mobile"
    assert (
        parse_user_agent("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)").device_type == "bot"
    )
