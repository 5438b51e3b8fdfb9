"""Measuring who-is-who against a ground truth: pairwise precision and recall, and the baseline a CDP is
judged against ("the last user id seen on a device wins")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.refine.pii import is_junk_identifier, standardise_email, standardise_phone


def node(site: str, kind: str, value: str) -> str:
    """An identity node as refinement names it: u user id, a anonymous id, e email, p phone, c CRM id."""
    return f"{site}|{kind}:{value}"


def pairwise_scores(predicted: Mapping[str, str], owner: Mapping[str, str]) -> tuple[float, float]:
    """Precision and recall of 'same person' over every pair of the nodes in `owner` (node -> real person).
    predicted: node -> customer id; a node it lacks is a customer of its own."""
    joint: dict[tuple[str, str], int] = {}
    by_customer: dict[str, int] = {}
    by_person: dict[str, int] = {}
    for n, person in owner.items():
        customer = predicted.get(n, "solo:" + n)
        joint[(customer, person)] = joint.get((customer, person), 0) + 1
        by_customer[customer] = by_customer.get(customer, 0) + 1
        by_person[person] = by_person.get(person, 0) + 1

    def pairs(counts: Iterable[int]) -> int:
        return sum(c * (c - 1) // 2 for c in counts)

    true_positive = pairs(joint.values())
    predicted_pairs, actual_pairs = pairs(by_customer.values()), pairs(by_person.values())
    precision = true_positive / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive / actual_pairs if actual_pairs else 1.0
    return precision, recall


def baseline_last_user_wins(rows: Iterable[Mapping[str, Any]], site: str) -> dict[str, str]:
    """Every device belongs to the last user id seen on it; emails, phones and CRM ids (standardised the
    same way as refinement does) go with the user id of their call; nothing else is joined.
    rows: raw rows with anonymous_id, user_id, event_time and, for user rows, email, phone, crm_id."""
    last: dict[str, tuple[Any, str]] = {}
    predicted: dict[str, str] = {}
    # In time order, so that "last" means the same on every run (the warehouse returns rows in any order).
    ordered = sorted(rows, key=lambda r: (r["event_time"], r.get("user_id") or "", r.get("anonymous_id") or ""))
    for row in ordered:
        anon, user = row.get("anonymous_id"), row.get("user_id")
        if not user:
            continue
        predicted[node(site, "u", user)] = user
        if anon and (anon not in last or last[anon][0] <= row["event_time"]):
            last[anon] = (row["event_time"], user)
        email = standardise_email(row["email"]).value if row.get("email") else None
        phone = standardise_phone(row["phone"]).value if row.get("phone") else None
        for extra in (
            email and node(site, "e", email),
            phone and node(site, "p", phone),
            row.get("crm_id") and node(site, "c", row["crm_id"]),
        ):
            if extra:
                predicted[extra] = user
    for anon, (_, user) in last.items():
        predicted[node(site, "a", anon)] = user
    return predicted


def row_nodes(row: Mapping[str, Any], site: str, crm_values: set[str]) -> list[str]:
    """The valid identity nodes one raw row names together (junk and unparseable values left out; a user id
    that is a known CRM id is that CRM record, as refinement reads it)."""
    found: list[str] = []
    for column in ("anonymous_id", "user_id", "previous_id"):
        value = (row.get(column) or "").strip()
        if value and not is_junk_identifier(value):
            kind = "a" if column == "anonymous_id" else "c" if value in crm_values else "u"
            found.append(node(site, kind, value))
    email = standardise_email(row["email"]).value if row.get("email") else None
    phone = standardise_phone(row["phone"]).value if row.get("phone") else None
    crm = (row.get("crm_id") or "").strip()
    found += [node(site, "e", email)] if email else []
    found += [node(site, "p", phone)] if phone else []
    found += [node(site, "c", crm)] if crm and not is_junk_identifier(crm) else []
    return found


def linkable_owner(rows: Iterable[Mapping[str, Any]], owner: Mapping[str, str], site: str) -> dict[str, str]:
    """Each node's person narrowed to the part of that person the data ties together: two ids of one person
    form a linkable pair only if a chain of rows, each naming ids of that person only, joins them. A CRM
    record that shares no e-mail, phone or login with its person's web account cannot be placed by anyone;
    recall over linkable pairs measures the method, recall over all pairs also the data."""
    rows = list(rows)
    crm_values = {(r.get("crm_id") or "").strip() for r in rows} - {""}
    parent: dict[str, str] = {n: n for n in owner}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for row in rows:
        named = [n for n in row_nodes(row, site, crm_values) if n in owner]
        for other in named[1:]:
            if owner[other] == owner[named[0]]:
                parent[find(other)] = find(named[0])
    return {n: f"{person}/{find(n)}" for n, person in owner.items()}
