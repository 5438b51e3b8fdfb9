"""IAM grants on the narrowest resource: a declared `role on target` becomes one member binding there."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.declaration import RoleGrant


@dataclass
class Targets:
    """What a grant can name, by kind and name: the program fills it as it declares resources."""

    project: str
    region: str
    topics: dict[str, gcp.pubsub.Topic] = field(default_factory=dict)
    datasets: dict[str, gcp.bigquery.Dataset] = field(default_factory=dict)
    buckets: dict[str, gcp.storage.Bucket] = field(default_factory=dict)
    secrets: dict[str, gcp.secretmanager.Secret] = field(default_factory=dict)
    functions: dict[str, gcp.cloudfunctionsv2.Function] = field(default_factory=dict)

    def check(self, grant: RoleGrant, owner: str) -> None:
        """Raise if the grant names a target the stack does not have."""
        if grant.kind == "project":
            return
        known = {
            "topic": self.topics,
            "dataset": self.datasets,
            "bucket": self.buckets,
            "secret": self.secrets,
            "function": self.functions,
        }[grant.kind]
        if grant.target not in known:
            raise pulumi.RunError(
                f"step {owner}: {grant.role} on {grant.on}, but there is no such {grant.kind} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )


def short_role(role: str) -> str:
    return role.removeprefix("roles/").replace(".", "-")


class Grants:
    """Creates member bindings for one principal, each a child of `parent` with the given options."""

    def __init__(self, targets: Targets, member: pulumi.Input[str], prefix: str) -> None:
        self.targets = targets
        self.member = member
        self.prefix = prefix
        self.resources: list[pulumi.CustomResource] = []

    def grant(self, grant: RoleGrant, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        t = self.targets
        name = f"{self.prefix}-{short_role(grant.role)}-{grant.kind}" + (f"-{grant.target}" if grant.target else "")
        resource: pulumi.CustomResource
        if grant.kind == "project":
            resource = gcp.projects.IAMMember(name, project=t.project, role=grant.role, member=self.member, opts=opts)
        elif grant.kind == "topic":
            resource = gcp.pubsub.TopicIAMMember(
                name, topic=t.topics[grant.target].name, role=grant.role, member=self.member, opts=opts
            )
        elif grant.kind == "dataset":
            resource = gcp.bigquery.DatasetIamMember(
                name, dataset_id=t.datasets[grant.target].dataset_id, role=grant.role, member=self.member, opts=opts
            )
        elif grant.kind == "bucket":
            resource = gcp.storage.BucketIAMMember(
                name, bucket=t.buckets[grant.target].name, role=grant.role, member=self.member, opts=opts
            )
        elif grant.kind == "secret":
            resource = gcp.secretmanager.SecretIamMember(
                name, secret_id=t.secrets[grant.target].secret_id, role=grant.role, member=self.member, opts=opts
            )
        elif grant.kind == "function":
            resource = invoker(name, t.functions[grant.target], t.region, self.member, opts)
        else:  # pragma: no cover - RoleGrant validates the kinds
            raise ValueError(grant.kind)
        self.resources.append(resource)
        return resource


def invoker(
    name: str,
    function: gcp.cloudfunctionsv2.Function,
    region: str,
    member: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> gcp.cloudrunv2.ServiceIamMember:
    """roles/run.invoker on the Cloud Run service under a 2nd gen function (pitfall 2)."""
    return gcp.cloudrunv2.ServiceIamMember(
        name,
        name=function.service_config.apply(lambda config: config.service if config else None),
        location=region,
        role="roles/run.invoker",
        member=member,
        opts=opts,
    )
