"""The base of every component: children parented to it and depending on the project services (pitfall 10)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import pulumi

TYPE_PREFIX = "cdp:platform"


class Component(pulumi.ComponentResource):
    """A component whose every child resource depends on `deps` (the enabled project services)."""

    def __init__(
        self,
        kind: str,
        name: str,
        deps: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:{kind}", name, None, opts)
        self.deps: list[pulumi.Resource] = list(deps)

    def child(self, *depends_on: pulumi.Resource, **options: object) -> pulumi.ResourceOptions:
        """Options for a child: parented here, after the services and anything else named."""
        return pulumi.ResourceOptions(parent=self, depends_on=[*self.deps, *depends_on], **options)  # type: ignore[arg-type]


def account_id(*parts: str) -> str:
    """A service account id (6-30 of a-z, 0-9, '-'): the parts joined, shortened with a hash when too long."""
    text = re.sub(r"[^a-z0-9-]", "-", "-".join(parts).lower()).strip("-")
    if len(text) <= 30:
        return text.ljust(6, "0")
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{text[:23].rstrip('-')}-{digest}"
