"""The build's own identity (pitfall 7) and the Artifact Registry repository the function images go to."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.components.base import Component, account_id
from infra.settings import StackSettings

# Cloud Functions copies each source into its own gcf-v2-sources-* bucket, which Cloud Build reads from.
GCF_BUCKETS = 'resource.name.startsWith("projects/_/buckets/gcf-v2-")'


class BuildIdentity(Component):
    def __init__(
        self,
        name: str,
        settings: StackSettings,
        sources: gcp.storage.Bucket,
        deps: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("BuildIdentity", name, deps, opts)
        self.account = gcp.serviceaccount.Account(
            "build",
            account_id=account_id(settings.name_prefix, "build"),
            display_name="Builds the platform's functions",
            opts=self.child(),
        )
        member = self.account.email.apply(lambda email: f"serviceAccount:{email}")
        self.repository = gcp.artifactregistry.Repository(
            "functions-images",
            repository_id=settings.resource_name("functions"),
            location=settings.region,
            format="DOCKER",
            description="Images of the platform's functions",
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=settings.images_kept
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(older_than="2592000s"),
                ),
            ],
            opts=self.child(),
        )
        self.grants: list[pulumi.CustomResource] = [
            gcp.projects.IAMMember(
                "build-log-writer",
                project=settings.project,
                role="roles/logging.logWriter",
                member=member,
                opts=self.child(),
            ),
            gcp.artifactregistry.RepositoryIamMember(
                "build-image-writer",
                repository=self.repository.name,
                location=settings.region,
                role="roles/artifactregistry.writer",
                member=member,
                opts=self.child(),
            ),
            gcp.storage.BucketIAMMember(
                "build-source-reader",
                bucket=sources.name,
                role="roles/storage.objectViewer",
                member=member,
                opts=self.child(),
            ),
            gcp.projects.IAMMember(
                "build-gcf-sources",
                project=settings.project,
                role="roles/storage.objectAdmin",
                member=member,
                condition=gcp.projects.IAMMemberConditionArgs(
                    title="gcf-v2-buckets-only",
                    description="Only the buckets Cloud Functions stages sources in",
                    expression=GCF_BUCKETS,
                ),
                opts=self.child(),
            ),
        ]
        self.member = member
        self.register_outputs({"account": self.account.email, "repository": self.repository.id})
