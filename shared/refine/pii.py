"""PII standardisation: emails, phones (E.164), names, gender, birth year -> age, Korean addresses -> region.

Where it runs: in the refine function, in Python, on the *distinct* raw values of the period that were never
standardised before (refined.pii_values is the cache, so each raw value is parsed once, ever). SQL then joins
the standardised values back to the events. Identifier values (anonymous ids, user ids, CRM ids, alias
previous ids) are only junk-checked; that check runs in SQL with `junk_pattern()`, built from the same list
below, so there is one source for what is junk.

Everything here is pure (no I/O), deterministic and cheap: the common Korean forms take a fast path whose
results equal phonenumbers' / email-validator's (tests/unit/test_refine_pii.py checks it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_REGION = "KR"

# The version of the rules below. refined.pii_values caches each raw value's standardised form with the version
# that made it; a run re-standardises every cached value of another version. Change it with any rule change that
# changes an output (tests/unit/test_refine_pii.py holds a digest of the outputs for a fixed sample per version).
RULES_VERSION = "2026-11-23"

# Junk identifiers seen in the wild that must never join two people (docs/engineering.md), compared after
# trim + lower-case. Strings of only zeros and dashes are junk too (JUNK_SHAPE).
JUNK_VALUES: frozenset[str] = frozenset(
    {
        "",
        "0",
        "-1",
        "null",
        "none",
        "nil",
        "undefined",
        "anonymous",
        "anon",
        "guest",
        "unknown",
        "[object object]",
        "nan",
        "n/a",
        "na",
        "test",
        "true",
        "false",
    }
)
JUNK_SHAPE = r"[0\-]+"

JUNK_EMAIL_DOMAINS = frozenset({"example.com", "example.org", "example.net", "test.com", "email.com", "localhost"})
JUNK_EMAIL_LOCALS = frozenset({"test", "noreply", "no-reply", "no_reply", "none", "null", "guest", "anonymous", "a"})
JUNK_NAMES = frozenset({"test", "tester", "guest", "asdf", "qwer", "unknown", "홍길동", "테스트", "고객", "손님"})

_REGEX_META = set("\\.^$|?*+()[]{}")


def _regex_escape(text: str) -> str:
    """Escape for RE2 (BigQuery, DuckDB): only the metacharacters, spaces stay spaces."""
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in text)


def junk_pattern() -> str:
    """RE2 pattern matching a junk identifier after LOWER(TRIM(x)); the @junk_pattern parameter of the SQL."""
    values = sorted(v for v in JUNK_VALUES if v)
    return "^(?:" + "|".join(_regex_escape(v) for v in values) + "|" + JUNK_SHAPE + ")?$"


def is_junk_identifier(value: str | None) -> bool:
    if value is None:
        return True
    text = value.strip().lower()
    return text in JUNK_VALUES or re.fullmatch(JUNK_SHAPE, text) is not None


@dataclass(frozen=True)
class Standardised:
    """A raw value's standard form; value is None when the raw value is invalid or junk (reason says why)."""

    value: str | None
    reason: str | None = None

    @property
    def valid(self) -> bool:
        return self.value is not None


def _bad(reason: str) -> Standardised:
    return Standardised(None, reason)


# -- email ----------------------------------------------------------------------------------------
_SIMPLE_EMAIL = re.compile(
    r"[a-z0-9_%+\-]+(?:\.[a-z0-9_%+\-]+)*@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
)


def standardise_email(raw: str | None) -> Standardised:
    """Trim, lower-case, validate the syntax (no DNS: check_deliverability=False), block junk addresses."""
    if raw is None:
        return _bad("empty")
    text = unicodedata.normalize("NFC", raw).strip().strip("<>").strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    if is_junk_identifier(text):
        return _bad("junk")
    if not _SIMPLE_EMAIL.fullmatch(text) or len(text) > 254:
        try:
            text = validate_email(text, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            return _bad("invalid_email")
    local, _, domain = text.rpartition("@")
    if local in JUNK_EMAIL_LOCALS or domain in JUNK_EMAIL_DOMAINS or is_junk_identifier(local):
        return _bad("junk")
    return Standardised(text)


# -- phone ----------------------------------------------------------------------------------------
_PHONE_NOISE = re.compile(r"[\s.\-()\[\]/]")
_KR_MOBILE = re.compile(r"(?:\+?82|0082)?0?(10\d{8})")


def standardise_phone(raw: str | None, default_region: str = DEFAULT_REGION) -> Standardised:
    """E.164 from Korean and international forms: 010-1234-5678, 01012345678, +82 10-..., 82-10-...,
    +82 (0)10-..., 02-123-4567, with spaces, dots and brackets. Numbers phonenumbers calls invalid, and
    junk such as 010-0000-0000 (a subscriber part of one repeated digit), are rejected."""
    if raw is None:
        return _bad("empty")
    text = unicodedata.normalize("NFKC", raw).strip()
    if is_junk_identifier(text):
        return _bad("junk")
    compact = _PHONE_NOISE.sub("", text)
    fast = _KR_MOBILE.fullmatch(compact) if default_region == "KR" else None
    if fast:
        e164 = "+82" + fast.group(1)
    else:
        # "82-10-..." without the plus is a Korean number written internationally.
        candidate = "+" + compact if re.fullmatch(r"82(?:0?1\d|0?[2-6]\d?)\d{6,8}", compact) else text
        try:
            number = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            return _bad("invalid_phone")
        if not phonenumbers.is_valid_number(number):
            return _bad("invalid_phone")
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    subscriber = e164[-8:]
    if len(set(subscriber)) == 1:
        return _bad("junk")
    return Standardised(e164)


# -- names, gender, age ---------------------------------------------------------------------------
def standardise_name(raw: str | None) -> Standardised:
    if raw is None:
        return _bad("empty")
    text = " ".join(unicodedata.normalize("NFC", raw).split())
    if is_junk_identifier(text) or text.lower() in JUNK_NAMES:
        return _bad("junk")
    if not any(ch.isalpha() for ch in text) or "@" in text:
        return _bad("invalid_name")
    return Standardised(text[:128])


_GENDERS = {
    "M": {"m", "male", "man", "boy", "남", "남자", "남성", "mr", "mr."},
    "F": {"f", "female", "woman", "girl", "여", "여자", "여성", "ms", "ms.", "mrs", "mrs."},
}


def standardise_gender(raw: str | None) -> Standardised:
    """M or F (the segmentlet `sex`); anything else is unknown, never guessed."""
    if raw is None:
        return _bad("empty")
    text = raw.strip().lower()
    for code, words in _GENDERS.items():
        if text in words:
            return Standardised(code)
    return _bad("unknown_gender")


MIN_BIRTH_YEAR = 1900


def age(birth_year: int | None, as_of_year: int) -> int | None:
    """Age in years at as_of_year (year difference, international age); None outside 1900..as_of_year.
    The profile SQL applies the same rule (shared/sql/refine/profiles.sql)."""
    if birth_year is None or not MIN_BIRTH_YEAR <= birth_year <= as_of_year:
        return None
    return as_of_year - birth_year


# -- regions ----------------------------------------------------------------------------------------
# The 17 Korean first-level divisions: canonical short name <- spellings (Korean long/short, English).
_KR_REGIONS: dict[str, tuple[str, ...]] = {
    "서울": ("서울특별시", "서울시", "서울", "seoul"),
    "부산": ("부산광역시", "부산시", "부산", "busan", "pusan"),
    "대구": ("대구광역시", "대구시", "대구", "daegu"),
    "인천": ("인천광역시", "인천시", "인천", "incheon"),
    "광주": ("광주광역시", "광주시", "광주", "gwangju"),
    "대전": ("대전광역시", "대전시", "대전", "daejeon"),
    "울산": ("울산광역시", "울산시", "울산", "ulsan"),
    "세종": ("세종특별자치시", "세종시", "세종", "sejong"),
    "경기": ("경기도", "경기", "gyeonggi-do", "gyeonggi"),
    "강원": ("강원특별자치도", "강원도", "강원", "gangwon-do", "gangwon"),
    "충북": ("충청북도", "충북", "chungcheongbuk-do", "chungbuk", "north chungcheong"),
    "충남": ("충청남도", "충남", "chungcheongnam-do", "chungnam", "south chungcheong"),
    "전북": ("전북특별자치도", "전라북도", "전북", "jeollabuk-do", "jeonbuk", "north jeolla"),
    "전남": ("전라남도", "전남", "jeollanam-do", "jeonnam", "south jeolla"),
    "경북": ("경상북도", "경북", "gyeongsangbuk-do", "gyeongbuk", "north gyeongsang"),
    "경남": ("경상남도", "경남", "gyeongsangnam-do", "gyeongnam", "south gyeongsang"),
    "제주": ("제주특별자치도", "제주도", "제주", "jeju-do", "jeju"),
}
_REGION_SPELLINGS = sorted(
    ((spelling, code) for code, spellings in _KR_REGIONS.items() for spelling in spellings),
    key=lambda pair: -len(pair[0]),
)
# ISO 3166-2:KR subdivision codes, as edge geo headers give them (KR-11 or 11).
_KR_ISO = {
    "11": "서울", "26": "부산", "27": "대구", "28": "인천", "29": "광주", "30": "대전", "31": "울산", "50": "세종",
    "41": "경기", "42": "강원", "51": "강원", "43": "충북", "44": "충남", "45": "전북", "52": "전북", "46": "전남",
    "47": "경북", "48": "경남", "49": "제주",
}  # fmt: skip


def address_region(raw: str | None) -> Standardised:
    """The first-level Korean region (서울, 경기, ...) an address names, from its leading words."""
    if raw is None:
        return _bad("empty")
    text = " ".join(unicodedata.normalize("NFC", raw).split()).lower()
    text = re.sub(r"^(?:대한민국|south korea|korea|kr)\s*,?\s*", "", text)
    words = re.split(r"[\s,]+", text)
    for word in words[:3]:
        for spelling, code in _REGION_SPELLINGS:
            if word == spelling or (len(spelling) >= 2 and word.startswith(spelling) and not spelling.isascii()):
                return Standardised(code)
    for spelling, code in _REGION_SPELLINGS:
        if spelling.isascii() and re.search(rf"\b{re.escape(spelling)}\b", text):
            return Standardised(code)
    return _bad("unknown_region")


def _without_country(region: str, country: str) -> str:
    """The subdivision part of a region code: the load balancer's {client_region_subdivision} is a CLDR id,
    country and subdivision run together (KR41, USCA); App Engine and ISO 3166-2 give 41 or KR-41."""
    code = region.upper()
    for prefix in (f"{country}-", country) if country else ("KR-", "KR"):
        if code.startswith(prefix) and len(code) > len(prefix) and (country or code[len(prefix) :] in _KR_ISO):
            return region[len(prefix) :]
    return region


def geo_region(raw: str | None) -> Standardised:
    """`country|region` from the edge's geo header -> a Korean region name; other countries keep their subdivision
    code (USCA and US-CA -> CA)."""
    if raw is None:
        return _bad("empty")
    country, _, region = raw.partition("|")
    country, region = country.strip().upper(), region.strip()
    if not region:
        return _bad("empty")
    if country in ("KR", ""):
        code = _without_country(region, country).upper()
        if code in _KR_ISO:
            return Standardised(_KR_ISO[code])
        named = address_region(region)
        if named.valid:
            return named
    return Standardised(_without_country(region, country)[:64])


# -- the kinds refine standardises ----------------------------------------------------------------
STANDARDISERS = {
    "email": standardise_email,
    "phone": standardise_phone,
    "name": standardise_name,
    "gender": standardise_gender,
    "address": address_region,
    "geo_region": geo_region,
}


def standardise(kind: str, raw: str | None) -> Standardised:
    return STANDARDISERS[kind](raw)
