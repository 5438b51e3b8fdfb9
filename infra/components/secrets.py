"""Secret Manager: the write keys, the Meta token and the message providers' credentials. A value set in the
stack's configuration becomes a version; functions read secrets as environment variables pinned to it."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.components.base import Component


class Secrets(Component):
    def __init__(
        self,
        name: str,
        secret_ids: Sequence[str],
        values: dict[str, pulumi.Output[str]],
        deps: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Secrets", name, deps, opts)
        unknown = sorted(set(values) - set(secret_ids))
        if unknown:
            raise pulumi.RunError(f"secretValues names secrets that are not declared: {unknown}")
        self.secrets: dict[str, gcp.secretmanager.Secret] = {}
        self.versions: dict[str, gcp.secretmanager.SecretVersion] = {}
        for secret_id in sorted(secret_ids):
            secret = gcp.secretmanager.Secret(
                f"secret-{secret_id}",
                secret_id=secret_id,
                replication=gcp.secretmanager.SecretReplicationArgs(auto=gcp.secretmanager.SecretReplicationAutoArgs()),
                opts=self.child(),
            )
            self.secrets[secret_id] = secret
            if secret_id in values:
                self.versions[secret_id] = gcp.secretmanager.SecretVersion(
                    f"secret-{secret_id}-version",
                    secret=secret.id,
                    secret_data=pulumi.Output.secret(values[secret_id]),
                    opts=self.child(),
                )
        self.register_outputs({"secrets": sorted(self.secrets)})

    def pinned(self, secret_id: str, step: str) -> gcp.secretmanager.SecretVersion:
        """The version a function reads, or a message saying how to set it."""
        if secret_id not in self.secrets:
            raise pulumi.RunError(f"step {step} reads secret {secret_id!r}, which is not declared (cdp:extraSecrets)")
        if secret_id not in self.versions:
            raise pulumi.RunError(
                f"step {step} reads secret {secret_id!r}, which has no value: "
                f"pulumi config set --secret --path 'secretValues.{secret_id}' <value>"
            )
        return self.versions[secret_id]
