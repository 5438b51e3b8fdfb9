"""Deletion on request through the local stack, as a marketer's tool would use it: events in over HTTP, refine
called as its schedule would, then the erase step over real HTTP (functions-framework, its own process).

Given two people of one site, when one is erased by an email written differently from how it was collected,
then every row of theirs is gone from the raw and refined tables, each of their ids is tombstoned with who asked,
a late event of theirs is never profiled again, and the other person is untouched."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
import requests

from tests.conftest import RunningStack

pytestmark = pytest.mark.integration

SITE = "other-shop"  # the stack's second site (conftest): its rows are this test's alone
WRITE_KEY = "wk_other"
RAW = ("user", "page", "land", "conv", "event")


def send(stack: RunningStack, calls: list[dict[str, Any]]) -> None:
    response = requests.post(f"{stack.collect_url}/v1/batch", json={"batch": calls}, auth=(WRITE_KEY, ""), timeout=30)
    assert response.status_code == 200 and not response.json().get("rejected"), response.text


def page(anon: str, user: str | None = None) -> dict[str, Any]:
    call = {"type": "page", "anonymousId": anon, "name": "home", "context": {"page": {"url": "https://shop.kr/"}}}
    return {**call, "userId": user} if user else call


def order(anon: str, user: str, order_id: str) -> dict[str, Any]:
    properties = {"order_id": order_id, "revenue": 59000, "currency": "KRW", "products": [{"name": "코트"}]}
    return {"type": "track", "event": "Order Completed", "anonymousId": anon, "userId": user, "properties": properties}


def refine(stack: RunningStack) -> None:
    stack.drain()
    response = stack.stack.call("refine", {"mode": "full"}, timeout=300)
    assert response.status_code == 200 and response.json()["status"] == "succeeded", response.text


def erase_url(stack: RunningStack) -> str:
    return f"{stack.stack.url('erase')}/"


def count(stack: RunningStack, sql: str, **params: Any) -> int:
    return stack.query(sql, params)[0]["n"]


def rows_of(stack: RunningStack, anons: list[str], user: str) -> dict[str, int]:
    """Raw rows per table of these devices / this user id at the site."""
    sql = (
        "SELECT COUNT(*) AS n FROM raw.`{t}` WHERE site_id = @site AND (anonymous_id IN UNNEST(@anons) OR user_id = @u)"
    )
    params = {"site": SITE, "anons": anons, "u": user}
    return {t: stack.query(sql.format(t=t), params)[0]["n"] for t in RAW}


def test_a_person_is_erased_over_http_and_the_other_is_untouched(local_stack: RunningStack) -> None:
    tag = uuid.uuid4().hex[:10]
    dev_a, dev_b, user_a = f"dev-a-{tag}", f"dev-b-{tag}", f"user-a-{tag}"
    dev_z, user_z = f"dev-z-{tag}", f"user-z-{tag}"
    email = f"kim.{tag}@mail.co.kr"
    phone = f"010-2{int(tag[:6], 16) % 1000:03d}-7{int(tag[6:], 16) % 1000:03d}"
    send(
        local_stack,
        [
            page(dev_a),
            {"type": "identify", "anonymousId": dev_a, "userId": user_a, "traits": {"email": email, "phone": phone}},
            order(dev_a, user_a, f"o-a-{tag}"),
            {"type": "identify", "anonymousId": dev_b, "traits": {"email": email.upper()}},  # a second device
            {"type": "track", "event": "Product Viewed", "anonymousId": dev_b, "properties": {"name": "코트"}},
            page(dev_z, user_z),
            {"type": "identify", "anonymousId": dev_z, "userId": user_z, "traits": {"email": f"lee.{tag}@mail.co.kr"}},
            order(dev_z, user_z, f"o-z-{tag}"),
        ],
    )
    refine(local_stack)
    map_of = "SELECT customer_id FROM refined.identity_map WHERE node = @n"
    customer_a = local_stack.query(map_of, {"n": f"{SITE}|u:{user_a}"})[0]["customer_id"]
    person_of = "SELECT node FROM refined.identity_map WHERE customer_id = @c"
    person_a = sorted(r["node"] for r in local_stack.query(person_of, {"c": customer_a}))
    assert person_a == sorted(
        [
            f"{SITE}|a:{dev_a}",
            f"{SITE}|a:{dev_b}",
            f"{SITE}|u:{user_a}",
            f"{SITE}|e:{email}",
            f"{SITE}|p:+8210{phone[4:8]}{phone[9:]}",
        ]
    )
    z_before = rows_of(local_stack, [dev_z], user_z)
    assert all(rows_of(local_stack, [dev_a, dev_b], user_a)[t] > 0 for t in ("user", "page", "conv", "event"))
    assert count(local_stack, "SELECT COUNT(*) AS n FROM refined.events WHERE node IN UNNEST(@ids)", ids=person_a) > 0
    assert count(local_stack, "SELECT COUNT(*) AS n FROM refined.profiles WHERE customer_id = @c", c=customer_a) == 1
    profile_z = "SELECT customer_id, odr_ltv, rvn_ltv FROM refined.profiles WHERE user_id = @u"
    z_profile = local_stack.query(profile_z, {"u": user_z})
    assert len(z_profile) == 1

    # the marketer's tool: a request naming the person by an email spelt differently from how it was collected
    body = {
        "site_id": SITE,
        "identifier_type": "email",
        "value": f"  KIM.{tag}@Mail.Co.Kr ",
        "requested_by": "dpo@shop.kr (ticket 42)",
    }
    response = requests.post(erase_url(local_stack), json=body, timeout=120)

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["node"] == f"{SITE}|e:{email}" and result["customer_id"] == customer_a
    assert result["identifiers"] == 5 and result["rows_erased"] > 0
    # raw: no row of either device or the user id, and no user row carrying the email, in any table
    assert rows_of(local_stack, [dev_a, dev_b], user_a) == dict.fromkeys(RAW, 0)
    with_email = "SELECT COUNT(*) AS n FROM raw.user WHERE site_id = @site AND LOWER(email) = @email"
    assert count(local_stack, with_email, site=SITE, email=email) == 0
    # refined: nothing keyed by their ids or their customer id, their PII out of the cache
    for table, column in [
        ("events", "node"),
        ("traits", "node"),
        ("sessions", "node"),
        ("identity_map", "node"),
        ("identity_edges", "src"),
        ("identity_edges", "dst"),
    ]:
        sql = f"SELECT COUNT(*) AS n FROM refined.{table} WHERE {column} IN UNNEST(@ids)"
        assert count(local_stack, sql, ids=person_a) == 0, (table, column)
    assert count(local_stack, "SELECT COUNT(*) AS n FROM refined.profiles WHERE customer_id = @c", c=customer_a) == 0
    assert count(local_stack, "SELECT COUNT(*) AS n FROM refined.pii_values WHERE value = @e", e=email) == 0
    customer = local_stack.query("SELECT status FROM refined.customers WHERE customer_id = @c", {"c": customer_a})
    assert customer == [{"status": "erased"}]
    # the tombstones: one per id of the person, by its hash only (the identifier itself is not kept), each
    # carrying the request (who asked, how many rows went)
    tombstones = local_stack.query(
        "SELECT node_hash, site_id, customer_id, requested_by, rows_erased FROM refined.erasures WHERE request_id = @r",
        {"r": result["request_id"]},
    )
    assert sorted(t["node_hash"] for t in tombstones) == sorted(
        hashlib.sha256(n.encode()).hexdigest() for n in person_a
    )
    assert {(t["site_id"], t["requested_by"], t["rows_erased"]) for t in tombstones} == {
        (SITE, "dpo@shop.kr (ticket 42)", result["rows_erased"])
    }
    # the other person: every raw row and the profile as they were
    assert rows_of(local_stack, [dev_z], user_z) == z_before
    assert local_stack.query(profile_z, {"u": user_z}) == z_profile

    # a late event of an erased device is kept raw but never profiled again
    send(local_stack, [page(dev_a)])
    refine(local_stack)
    assert count(local_stack, "SELECT COUNT(*) AS n FROM refined.events WHERE node = @n", n=f"{SITE}|a:{dev_a}") == 0
    assert (
        count(local_stack, "SELECT COUNT(*) AS n FROM refined.identity_map WHERE node IN UNNEST(@ids)", ids=person_a)
        == 0
    )
    assert local_stack.query(profile_z, {"u": user_z}) == z_profile


def test_the_erase_step_answers_405_and_400_over_http(local_stack: RunningStack) -> None:
    url = erase_url(local_stack)
    got = requests.get(url, timeout=30)
    assert got.status_code == 405 and got.headers["Allow"] == "POST"
    junk = {"site_id": SITE, "identifier_type": "anonymous_id", "value": "undefined", "requested_by": "dpo"}
    refused = requests.post(url, json=junk, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"].startswith("invalid erasure request: value: ")
    not_json = requests.post(url, data=b"site_id=x", timeout=30)
    assert not_json.status_code == 400 and "not a JSON object" in not_json.json()["error"]
    tombstoned = "SELECT COUNT(*) AS n FROM refined.erasures WHERE node_hash = @h"
    assert count(local_stack, tombstoned, h=hashlib.sha256(f"{SITE}|a:undefined".encode()).hexdigest()) == 0
