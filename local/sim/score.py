"""Who-is-who of a refined warehouse against the simulator's ground truth, next to the baseline a CDP is judged
against ("the last user id seen on the device wins")."""

from __future__ import annotations

from pydantic import BaseModel

from local.sim.models import Truth
from shared.refine.accuracy import baseline_last_user_wins, linkable_owner, node, pairwise_scores
from shared.warehouse.base import Warehouse

# Every raw row that names identifiers (page, conv and event rows name the device and the user id).
_RAW_IDENTITY_ROWS = (
    "SELECT anonymous_id, user_id, previous_id, event_time, email, phone, crm_id FROM raw.user_unique "
    "UNION ALL SELECT anonymous_id, user_id, NULL, event_time, NULL, NULL, NULL FROM raw.page_unique "
    "UNION ALL SELECT anonymous_id, user_id, NULL, event_time, NULL, NULL, NULL FROM raw.conv_unique "
    "UNION ALL SELECT anonymous_id, user_id, NULL, event_time, NULL, NULL, NULL FROM raw.event_unique"
)


class MethodScore(BaseModel):
    method: str
    precision: float
    recall: float  # over pairs a chain of the person's own rows ties: what a method can find
    recall_all_pairs: float  # over every pair of the person's ids, found or not findable


class WhoIsWho(BaseModel):
    identifiers: int
    people: int
    refine: MethodScore
    baseline: MethodScore


def who_is_who(warehouse: Warehouse, truth: Truth, site_id: str) -> WhoIsWho:
    """Pairwise scores over every identifier of the truth that refine placed, shared devices left out (they
    belong to nobody in particular) and devices that never identified left out (nobody can place them)."""
    predicted = {
        r["node"]: r["customer_id"] for r in warehouse.query("SELECT node, customer_id FROM refined.identity_map")
    }
    raw_rows = warehouse.query(_RAW_IDENTITY_ROWS)
    shared_devices = {d.anonymous_id for d in truth.shared_devices}
    identified = {
        r["anonymous_id"]
        for r in raw_rows
        if r["anonymous_id"] and (r["user_id"] or r["email"] or r["phone"] or r["crm_id"])
    }
    owner: dict[str, str] = {}
    for person in truth.people:
        ids = person.identifiers
        for kind, values in (
            ("u", ids.user_ids),
            ("e", ids.emails),
            ("p", ids.phones),
            ("c", ids.crm_ids),
            ("a", [a for a in ids.anonymous_ids if a not in shared_devices]),
        ):
            for value in values:
                owner[node(site_id, kind, value)] = person.person_id
    device = f"{site_id}|a:"
    tied = {
        n: p
        for n, p in owner.items()
        if n in predicted and (not n.startswith(device) or n.removeprefix(device) in identified)
    }
    linkable = linkable_owner(raw_rows, tied, site_id)

    def score(method: str, guess: dict[str, str]) -> MethodScore:
        precision, recall_all = pairwise_scores(guess, tied)
        _, recall = pairwise_scores(guess, linkable)
        return MethodScore(method=method, precision=precision, recall=recall, recall_all_pairs=recall_all)

    return WhoIsWho(
        identifiers=len(tied),
        people=len(truth.people),
        refine=score("refine (guarded stitching)", predicted),
        baseline=score("baseline: last user id on the device wins", baseline_last_user_wins(raw_rows, site_id)),
    )
