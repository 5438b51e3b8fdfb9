"""Cloud Storage: function sources, configuration (segments, campaigns, templates) and model artifacts."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.components.base import Component
from infra.settings import StackSettings


def _rule(action: str, **condition: object) -> gcp.storage.BucketLifecycleRuleArgs:
    return gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(type=action),
        condition=gcp.storage.BucketLifecycleRuleConditionArgs(**condition),  # type: ignore[arg-type]
    )


def lifecycle_rules(key: str, settings: StackSettings) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    """Per bucket. Sources are named by content hash and Pulumi deletes the replaced ones itself, so no age
    rule may remove an object a function still points at; only unfinished uploads are cleaned up."""
    abandoned_uploads = _rule("AbortIncompleteMultipartUpload", age=1)
    if key == "sources":
        return [abandoned_uploads]
    days = settings.config_versions_days if key == "config" else settings.model_versions_days
    return [
        abandoned_uploads,
        _rule("Delete", days_since_noncurrent_time=days, with_state="ARCHIVED"),
        _rule("Delete", num_newer_versions=10, with_state="ARCHIVED"),
    ]


class Buckets(Component):
    KEYS = ("sources", "config", "models")

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        deps: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Buckets", name, deps, opts)
        self.buckets = {
            key: gcp.storage.Bucket(
                f"bucket-{key}",
                name=settings.bucket_name(key),
                location=settings.region,
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                versioning=gcp.storage.BucketVersioningArgs(enabled=key != "sources"),
                lifecycle_rules=lifecycle_rules(key, settings),
                force_destroy=key == "sources" or not settings.deletion_protection,
                opts=self.child(),
            )
            for key in self.KEYS
        }
        self.register_outputs({k: b.name for k, b in self.buckets.items()})
