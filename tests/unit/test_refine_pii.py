"""PII standardisation: given raw values as shops send them, when standardised, then one standard form."""

from __future__ import annotations

import re

import phonenumbers
import pytest

from shared.refine import pii


@pytest.mark.parametrize(
    "raw",
    [
        "010-1234-5678",
        "01012345678",
        "+82 10-1234-5678",
        "82-10-1234-5678",
        "+82 (0)10 1234 5678",
        "010.1234.5678",
        "(010) 1234 5678",
        " 010 1234 5678 ",
        "+821012345678",
        "0082-10-1234-5678",
    ],
)
def test_korean_mobile_forms_become_one_e164(raw: str) -> None:
    assert pii.standardise_phone(raw).value == "+821012345678"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("02-123-4567", "+8221234567"),
        ("(02) 1234 5678", "+82212345678"),
        ("031.123.4567", "+82311234567"),
        ("+1 650-253-0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("82-2-1234-5678", "+82212345678"),
    ],
)
def test_landlines_and_international_numbers(raw: str, e164: str) -> None:
    assert pii.standardise_phone(raw).value == e164


@pytest.mark.parametrize("raw", ["010-0000-0000", "01011111111", "0", "null", "undefined", "---"])
def test_junk_phones_are_blocked(raw: str) -> None:
    assert pii.standardise_phone(raw) == pii.Standardised(None, "junk")


def test_invalid_phones_are_rejected() -> None:
    assert pii.standardise_phone("12").reason == "invalid_phone"
    assert pii.standardise_phone("call me").reason == "invalid_phone"


def test_fast_path_agrees_with_phonenumbers() -> None:
    for i in range(0, 10**8, 7_654_321):
        digits = f"{i:08d}"
        if len(set(digits)) == 1:
            continue
        raw = f"010-{digits[:4]}-{digits[4:]}"
        number = phonenumbers.parse(raw, "KR")
        assert phonenumbers.is_valid_number(number)
        expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        assert pii.standardise_phone(raw).value == expected


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (" Kim.MinJi@Naver.COM ", "kim.minji@naver.com"),
        ("<lee@daum.net>", "lee@daum.net"),
        ("mailto:park@gmail.com", "park@gmail.com"),
        ("a.b+tag@sub.domain.co.kr", "a.b+tag@sub.domain.co.kr"),
    ],
)
def test_emails_are_trimmed_lowered_validated(raw: str, value: str) -> None:
    assert pii.standardise_email(raw).value == value


@pytest.mark.parametrize("raw", ["x@y", "no at sign", "two@@signs.com", "a@b..com"])
def test_invalid_emails(raw: str) -> None:
    assert pii.standardise_email(raw).reason == "invalid_email"


@pytest.mark.parametrize("raw", ["test@test.com", "null", "someone@example.com", "noreply@shop.kr", ""])
def test_junk_emails(raw: str) -> None:
    assert pii.standardise_email(raw).reason == "junk"


def test_names_gender_age() -> None:
    assert pii.standardise_name("  김   민지 ").value == "김 민지"
    assert pii.standardise_name("홍길동").reason == "junk"
    assert pii.standardise_name("12345").reason in ("junk", "invalid_name")
    assert [pii.standardise_gender(g).value for g in ("M", "female", "남", "여성", "x", None)] == [
        "M",
        "F",
        "M",
        "F",
        None,
        None,
    ]
    assert pii.age(1990, 2026) == 36 and pii.age(1850, 2026) is None and pii.age(2030, 2026) is None


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("서울특별시 강남구 테헤란로 1", "서울"),
        ("경기도 성남시 분당구", "경기"),
        ("부산 해운대구", "부산"),
        ("대한민국 제주특별자치도 제주시", "제주"),
        ("Seoul, Gangnam-gu", "서울"),
        ("충청북도 청주시", "충북"),
        ("강원특별자치도 춘천시", "강원"),
    ],
)
def test_korean_addresses_to_region(raw: str, region: str) -> None:
    assert pii.address_region(raw).value == region


def test_geo_regions() -> None:
    assert pii.geo_region("KR|11").value == "서울"
    assert pii.geo_region("KR|KR-41").value == "경기"
    assert pii.geo_region("US|CA").value == "CA"
    assert not pii.geo_region("KR|").valid


@pytest.mark.parametrize(
    ("raw", "region"),
    [("KR|KR41", "경기"), ("|KR11", "서울"), ("US|USCA", "CA"), ("US|US-NY", "NY"), ("JP|JP13", "13"), ("|41", "경기")],
)
def test_geo_regions_as_the_load_balancer_gives_them(raw: str, region: str) -> None:
    """{client_region_subdivision} runs country and subdivision together (KR41, USCA): the same region as 41 / CA."""
    assert pii.geo_region(raw).value == region


# A fixed sample of every kind; its outputs' digest is recorded per rules version.
RULES_SAMPLE = [
    ("email", " Kim@Mail.co.kr "), ("email", "test@test.com"), ("email", "kim@naver"), ("email", "이메일@메일.kr"),
    ("phone", "010-1234-5678"), ("phone", "+82 10 1234 5678"), ("phone", "82-10-1234-5678"), ("phone", "02-123-4567"),
    ("phone", "(031) 123.4567"), ("phone", "+1 415 555 2671"), ("phone", "010-0000-0000"), ("phone", "12"),
    ("name", " 김  민수 "), ("name", "홍길동"), ("name", "Jane  DOE"), ("gender", "여"), ("gender", "Male"),
    ("gender", "x"), ("address", "서울특별시 강남구 테헤란로 1"), ("address", "Seongnam-si, Gyeonggi-do"),
    ("address", "somewhere"), ("geo_region", "KR|11"), ("geo_region", "KR|KR41"), ("geo_region", "US|USCA"),
    ("geo_region", "|Seoul"), ("geo_region", "JP|13"),
]  # fmt: skip
RULES_DIGESTS = {"2026-11-23": "c95155923db6da59"}


def test_a_change_of_the_rules_changes_their_version() -> None:
    """refined.pii_values caches outputs per RULES_VERSION: a rule change that keeps the version would leave every
    cached value in its old form for good."""
    import hashlib

    outputs = [(kind, raw, (std := pii.standardise(kind, raw)).value, std.reason) for kind, raw in RULES_SAMPLE]
    digest = hashlib.sha256(repr(outputs).encode()).hexdigest()[:16]
    assert RULES_DIGESTS.get(pii.RULES_VERSION) == digest, (
        f"the rules' outputs changed (digest {digest}): bump pii.RULES_VERSION and record the digest under it"
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "0",
        "-1",
        "null",
        "None",
        "undefined",
        "anonymous",
        "guest",
        "[object Object]",
        "NaN",
        "0000",
        "00-000",
        "--",
    ],
)
def test_junk_identifiers(value: str) -> None:
    assert pii.is_junk_identifier(value)
    assert re.fullmatch(pii.junk_pattern(), value.strip().lower())


@pytest.mark.parametrize("value", ["u123", "a1b2-c3", "0001", "guest42", "10"])
def test_real_identifiers_are_not_junk(value: str) -> None:
    assert not pii.is_junk_identifier(value)
    assert not re.fullmatch(pii.junk_pattern(), value.strip().lower())
