"""Who called a private step: the principal of the identity token Cloud Run checked, and nothing else."""

from __future__ import annotations

import base64

import pytest

from shared.callers import authenticated_caller, token_claims
from tests.unit.fakes import identity_token

CLOUD_RUN = {"K_SERVICE": "cdp-erase"}


@pytest.mark.parametrize(
    ("email", "principal"),
    [
        ("kim@shop.kr", "user:kim@shop.kr"),
        ("crm-sync@my-shop.iam.gserviceaccount.com", "serviceAccount:crm-sync@my-shop.iam.gserviceaccount.com"),
    ],
)
def test_the_token_principal_is_the_caller_on_cloud_run(email: str, principal: str) -> None:
    headers = {"Authorization": f"Bearer {identity_token({'email': email, 'sub': '1'})}"}
    assert authenticated_caller(headers, CLOUD_RUN) == principal


def test_the_header_cloud_run_checked_wins_over_an_unchecked_authorization() -> None:
    # Cloud Run authorises with X-Serverless-Authorization (and strips its signature); Authorization beside it
    # reached the step unchecked, so it is not believed.
    headers = {
        "Authorization": f"Bearer {identity_token({'email': 'forged@evil.example'})}",
        "X-Serverless-Authorization": f"Bearer {identity_token({'email': 'kim@shop.kr'}, signed=False)}",
    }
    assert authenticated_caller(headers, CLOUD_RUN) == "user:kim@shop.kr"


def test_outside_cloud_run_a_token_is_not_believed() -> None:
    headers = {"Authorization": f"Bearer {identity_token({'email': 'kim@shop.kr'})}"}
    assert authenticated_caller(headers, {}) is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic a2ltOnB3",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer a.!!!.c",
        f"Bearer a.{base64.urlsafe_b64encode(b'[1, 2]').decode()}.c",
        f"Bearer {identity_token({'sub': '1234'})}",  # no email claim
        f"Bearer {identity_token({'email': 'no-at-sign'})}",
    ],
)
def test_a_missing_or_unreadable_token_names_no_caller(header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    assert authenticated_caller(headers, CLOUD_RUN) is None


def test_claims_are_read_with_or_without_padding_and_signature() -> None:
    claims = {"email": "a@b.co", "n": "x" * 5}
    assert token_claims(identity_token(claims)) == claims
    assert token_claims(identity_token(claims, signed=False)) == claims
    assert token_claims("only-one-part") is None
