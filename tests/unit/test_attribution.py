"""Landing attribution: given a page URL and referrer, then the medium, source and keyword are right."""

from __future__ import annotations

import pytest

from shared.collect.attribution import attribute

NAVER_SEARCH = "https://search.naver.com/search.naver?where=nexearch&query=%EA%B2%A8%EC%9A%B8+%EC%BD%94%ED%8A%B8"


@pytest.mark.parametrize(
    ("url", "referrer", "medium", "source", "keyword"),
    [
        ("https://shop.kr/?gclid=abc", "https://www.google.com/", "ad", "google", None),
        ("https://shop.kr/?utm_source=naver&utm_medium=cpc&n_query=x", NAVER_SEARCH, "ad", "naver", "겨울 코트"),
        ("https://shop.kr/", NAVER_SEARCH, "search", "naver", "겨울 코트"),
        ("https://shop.kr/", "https://www.google.co.kr/search?q=shoes", "search", "google", "shoes"),
        ("https://shop.kr/", "https://search.daum.net/search?q=%EB%B0%94%EC%A7%80", "search", "daum", "바지"),
        ("https://shop.kr/", "https://www.bing.com/search?q=coat", "search", "bing", "coat"),
        ("https://shop.kr/?fbclid=xyz", "https://l.facebook.com/", "social", "facebook", None),
        (
            "https://shop.kr/?fbclid=xyz&utm_medium=paid_social&utm_source=meta",
            "https://l.facebook.com/",
            "ad",
            "meta",
            None,
        ),
        ("https://shop.kr/", "https://www.instagram.com/", "social", "instagram", None),
        ("https://shop.kr/", "https://blog.naver.com/someone/123", "social", "naver_blog", None),
        ("https://shop.kr/?utm_source=newsletter&utm_medium=email&utm_campaign=nov", None, "email", "newsletter", None),
        ("https://shop.kr/?utm_source=partner&utm_campaign=collab", None, "campaign", "partner", None),
        ("https://shop.kr/", "https://news.example.com/a", "referral", "news.example.com", None),
        ("https://shop.kr/", None, "direct", None, None),
        ("https://www.shop.kr/", "", "direct", None, None),
    ],
)
def test_landings(url: str, referrer: str | None, medium: str, source: str | None, keyword: str | None) -> None:
    result = attribute(url, referrer)
    assert result.is_landing
    assert (result.medium, result.source, result.search_keyword) == (medium, source, keyword)


def test_internal_navigation_is_not_a_landing() -> None:
    assert not attribute("https://shop.kr/p/2", "https://www.shop.kr/p/1").is_landing


def test_internal_navigation_with_campaign_parameters_is_a_landing() -> None:
    result = attribute("https://shop.kr/p/2?utm_campaign=banner&utm_source=home", "https://shop.kr/")
    assert result.is_landing and result.campaign == "banner"


def test_sdk_campaign_context_wins_over_the_url() -> None:
    result = attribute(
        "https://shop.kr/?utm_campaign=url", None, (("medium", "cpc"), ("name", "ctx"), ("source", "kakao"))
    )
    assert (result.medium, result.campaign, result.utm_source) == ("ad", "ctx", "kakao")


def test_click_id_is_kept() -> None:
    result = attribute("https://shop.kr/?msclkid=m1", "https://www.bing.com/")
    assert (result.click_id_type, result.click_id, result.medium, result.source) == ("msclkid", "m1", "ad", "bing")
