"""Who-is-who scoring: pairwise precision / recall, and which pairs the data can tie at all."""

from __future__ import annotations

from shared.refine.accuracy import baseline_last_user_wins, linkable_owner, node, pairwise_scores

SITE = "s"


def test_pairwise_scores_count_pairs() -> None:
    owner = {"a": "P", "b": "P", "c": "P", "d": "Q"}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "x"}
    precision, recall = pairwise_scores(predicted, owner)
    # predicted pairs: ab, ad, bd (1 right of 3); actual pairs: ab, ac, bc (1 found of 3)
    assert (round(precision, 4), round(recall, 4)) == (0.3333, 0.3333)


def test_linkable_owner_splits_a_person_where_no_row_ties_the_parts() -> None:
    web, crm, phone, device, lone = (
        node(SITE, "u", "m1"),
        node(SITE, "c", "C1"),
        node(SITE, "p", "+821011112222"),
        node(SITE, "a", "dev"),
        node(SITE, "a", "dev-guest"),
    )
    owner = {web: "P", crm: "P", phone: "P", device: "P", lone: "P"}
    rows = [
        {"anonymous_id": "dev", "user_id": "m1"},
        {"anonymous_id": None, "user_id": "C1", "crm_id": "C1", "phone": "010-1111-2222"},
        {"anonymous_id": "dev-guest", "user_id": "guest"},  # a junk id ties nothing
    ]
    linkable = linkable_owner(rows, owner, SITE)
    assert linkable[web] == linkable[device]
    assert linkable[crm] == linkable[phone] != linkable[web]
    assert linkable[lone] not in (linkable[web], linkable[crm])
    # refine that joined everything tied is perfect on linkable pairs, not on all pairs
    predicted = {web: "k1", device: "k1", crm: "k2", phone: "k2"}
    assert pairwise_scores(predicted, linkable)[1] == 1.0
    assert pairwise_scores(predicted, owner)[1] < 1.0


def test_the_baseline_reads_rows_in_time_order_whatever_order_they_come_in() -> None:
    rows = [
        {"anonymous_id": "dev", "user_id": "u-old", "event_time": 1, "email": "kim@mail.co.kr"},
        {"anonymous_id": "dev", "user_id": "u-new", "event_time": 2, "email": "kim@mail.co.kr"},
    ]
    for order in (rows, rows[::-1]):
        predicted = baseline_last_user_wins(order, SITE)
        assert predicted[node(SITE, "a", "dev")] == predicted[node(SITE, "e", "kim@mail.co.kr")] == "u-new"
