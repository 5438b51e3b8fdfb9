"""Where a visit came from: UTM parameters, ad click ids, search engines and their keywords, social networks."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel

# Click ids that only paid ad clicks carry, by the platform that adds them.
PAID_CLICK_IDS = {
    "gclid": "google",
    "gbraid": "google",
    "wbraid": "google",
    "dclid": "google",
    "msclkid": "bing",
    "ttclid": "tiktok",
    "twclid": "twitter",
    "li_fat_id": "linkedin",
    "yclid": "yandex",
    "sccid": "snapchat",
    "n_ad": "naver",
    "n_query": "naver",
    "kclid": "kakao",
}
# fbclid is added to every outbound Facebook link, paid or not: it is social unless utm says paid.
SOCIAL_CLICK_IDS = {"fbclid": "facebook", "igshid": "instagram"}
PAID_MEDIUMS = {
    "cpc",
    "ppc",
    "paid",
    "paidsearch",
    "paid_search",
    "paid-search",
    "paidsocial",
    "paid_social",
    "paid-social",
    "cpm",
    "cpv",
    "cpa",
    "display",
    "banner",
    "retargeting",
    "remarketing",
    "ad",
    "ads",
    "sa",
    "da",
    "powerlink",
    "brandsearch",
}
EMAIL_MEDIUMS = {"email", "e-mail", "e_mail", "newsletter", "mail"}
SOCIAL_MEDIUMS = {"social", "social-network", "social_network", "sns", "social-media", "sm"}

# host suffix -> (engine, keyword parameters)
SEARCH_ENGINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "search.naver.com": ("naver", ("query",)),
    "m.search.naver.com": ("naver", ("query",)),
    "search.daum.net": ("daum", ("q",)),
    "m.search.daum.net": ("daum", ("q",)),
    "search.zum.com": ("zum", ("query",)),
    "search.nate.com": ("nate", ("q",)),
    "bing.com": ("bing", ("q",)),
    "duckduckgo.com": ("duckduckgo", ("q",)),
    "baidu.com": ("baidu", ("wd", "word")),
    "ecosia.org": ("ecosia", ("q",)),
    "search.yahoo.com": ("yahoo", ("p",)),
    "search.yahoo.co.jp": ("yahoo", ("p",)),
}
SOCIAL_NETWORKS = {
    "facebook.com": "facebook",
    "fb.com": "facebook",
    "instagram.com": "instagram",
    "t.co": "twitter",
    "twitter.com": "twitter",
    "x.com": "twitter",
    "youtube.com": "youtube",
    "youtu.be": "youtube",
    "linkedin.com": "linkedin",
    "lnkd.in": "linkedin",
    "pinterest.com": "pinterest",
    "tiktok.com": "tiktok",
    "reddit.com": "reddit",
    "threads.net": "threads",
    "story.kakao.com": "kakaostory",
    "pf.kakao.com": "kakao",
    "band.us": "band",
    "blog.naver.com": "naver_blog",
    "m.blog.naver.com": "naver_blog",
    "cafe.naver.com": "naver_cafe",
    "m.cafe.naver.com": "naver_cafe",
}


class Attribution(BaseModel):
    is_landing: bool
    referrer_host: str | None = None
    medium: str = "direct"
    source: str | None = None
    campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    click_id_type: str | None = None
    click_id: str | None = None
    search_engine: str | None = None
    search_keyword: str | None = None


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return None
    return host.lower() if host else None


def _site_domain(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


def _match_suffix(host: str, table: dict[str, str] | dict[str, tuple[str, tuple[str, ...]]]) -> str | None:
    parts = host.split(".")
    for i in range(len(parts) - 1):
        candidate = ".".join(parts[i:])
        if candidate in table:
            return candidate
    return None


def _google_like(host: str) -> bool:
    """google.com, google.co.kr, www.google.de ..."""
    parts = host.split(".")
    return "google" in parts[:-1] and not host.startswith(("mail.", "docs.", "drive."))


def _search_engine(host: str, query: dict[str, list[str]]) -> tuple[str, str | None] | None:
    if _google_like(host):
        return "google", (query.get("q") or [None])[0]
    if (host.startswith("yandex.") or ".yandex." in host) and "text" in query:
        return "yandex", query["text"][0]
    key = _match_suffix(host, SEARCH_ENGINES)
    if key is None:
        return None
    engine, params = SEARCH_ENGINES[key]
    keyword = next((query[p][0] for p in params if query.get(p)), None)
    return engine, keyword


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0].strip() or None if values else None


@lru_cache(maxsize=8192)
def attribute(
    page_url: str | None, referrer: str | None, campaign_key: tuple[tuple[str, str], ...] = ()
) -> Attribution:
    """Attribution of a page view. `campaign_key` is the SDK's context.campaign as sorted pairs."""
    page_query = parse_qs(urlsplit(page_url).query) if page_url else {}
    lowered = {k.lower(): v for k, v in page_query.items()}
    campaign = dict(campaign_key)
    # The SDK's context.campaign wins over the URL; Segment names utm_campaign "name".
    utm = {
        f"utm_{part}": campaign.get("name" if part == "campaign" else part) or _first(lowered, f"utm_{part}")
        for part in ("source", "medium", "campaign", "term", "content")
    }
    click = next(((k, _first(lowered, k)) for k in (*PAID_CLICK_IDS, *SOCIAL_CLICK_IDS) if _first(lowered, k)), None)

    page_host = _host(page_url)
    ref_host = _host(referrer)
    internal = bool(ref_host and page_host and _site_domain(ref_host) == _site_domain(page_host))
    external = bool(ref_host) and not internal
    has_campaign = any(utm.values()) or click is not None
    if internal and not has_campaign:
        return Attribution(is_landing=False, referrer_host=ref_host, medium="internal")

    result = Attribution(
        is_landing=True, referrer_host=ref_host if external else None, **utm, campaign=utm["utm_campaign"]
    )
    medium = (utm["utm_medium"] or "").lower()
    engine = _search_engine(ref_host, parse_qs(urlsplit(referrer).query)) if external and ref_host else None
    if engine:
        result.search_engine, result.search_keyword = engine
    if not result.search_keyword and utm["utm_term"]:
        result.search_keyword = utm["utm_term"]
    if click:
        result.click_id_type, result.click_id = click
    social_host = _match_suffix(ref_host, SOCIAL_NETWORKS) if external and ref_host else None

    if (click and click[0] in PAID_CLICK_IDS) or medium in PAID_MEDIUMS:
        result.medium = "ad"
        result.source = (
            utm["utm_source"]
            or (PAID_CLICK_IDS.get(click[0]) if click else None)
            or (engine[0] if engine else ref_host)
        )
    elif medium in EMAIL_MEDIUMS:
        result.medium, result.source = "email", utm["utm_source"]
    elif engine and not medium:
        result.medium, result.source = "search", engine[0]
    elif social_host or (click and click[0] in SOCIAL_CLICK_IDS) or medium in SOCIAL_MEDIUMS:
        result.medium = "social"
        result.source = (
            utm["utm_source"]
            or (SOCIAL_NETWORKS[social_host] if social_host else None)
            or (SOCIAL_CLICK_IDS.get(click[0]) if click else None)
        )
    elif any(utm.values()):
        result.medium, result.source = "campaign", utm["utm_source"] or ref_host
    elif external:
        result.medium, result.source = "referral", ref_host
    else:
        result.medium = "direct"
    return result
