"""The project's APIs, enabled first (pitfall 10): every other resource depends on this component."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.components.base import Component

REQUIRED_SERVICES = (
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
)


class ProjectServices(Component):
    def __init__(self, name: str, project: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ProjectServices", name, (), opts)
        self.services = {
            api: gcp.projects.Service(
                api.split(".")[0],
                project=project,
                service=api,
                disable_on_destroy=False,  # never switch an API off under other workloads of the project
                opts=self.child(),
            )
            for api in REQUIRED_SERVICES
        }
        self.register_outputs({"services": list(REQUIRED_SERVICES)})
