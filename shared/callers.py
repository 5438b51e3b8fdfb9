"""Who called a private HTTP step, as Cloud Run authenticated them.

A private step (the marketer API, `erase`) is invoked with a Google identity token. Cloud Run checks it (IAM
`roles/run.invoker`) before the request reaches the function, then passes the header on: the claims can be read
without checking the signature again. Cloud Run takes `X-Serverless-Authorization` over `Authorization` when both
are sent (and passes that one with its signature removed), so that header's claims win: an `Authorization` beside
it was not checked by anyone.

Outside Cloud Run (the local stack, tests) nothing checks a token, so none is believed: the caller is unknown.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

import orjson

TOKEN_HEADERS = ("X-Serverless-Authorization", "Authorization")


def on_cloud_run(environ: Mapping[str, str] | None = None) -> bool:
    """Cloud Run (and Cloud Functions 2nd gen, which runs on it) sets K_SERVICE in every instance."""
    return bool((os.environ if environ is None else environ).get("K_SERVICE"))


def token_claims(token: str) -> dict[str, object] | None:
    """The payload of a JWT (`header.payload.signature`, or without the signature), not verified."""
    parts = token.split(".")
    if len(parts) not in (2, 3) or not parts[1]:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def authenticated_caller(headers: Mapping[str, str], environ: Mapping[str, str] | None = None) -> str | None:
    """`serviceAccount:<email>` or `user:<email>` of the identity token Cloud Run checked; None outside Cloud Run,
    or when the request carries no readable token."""
    if not on_cloud_run(environ):
        return None
    header = next((headers.get(name) for name in TOKEN_HEADERS if headers.get(name)), None)
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    claims = token_claims(token.strip())
    email = claims.get("email") if claims else None
    if not isinstance(email, str) or "@" not in email:
        return None
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return f"{kind}:{email}"
