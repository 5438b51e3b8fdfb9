"""The Pulumi program under mocks: one deployment of the repository as it is, shared by the module's tests."""

from __future__ import annotations

import pytest

from infra.settings import DEFAULT_SECRETS
from tests.infra.harness import Deployment, deploy


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    """The repository as it is; every provider secret has a value, so that any step may read one."""
    return deploy(secret_values={secret_id: f"value-of-{secret_id}" for secret_id in DEFAULT_SECRETS})
