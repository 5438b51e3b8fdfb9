"""Cloud Scheduler → the function over HTTP, with an OIDC token of the job's own identity.

Chosen over Scheduler → topic → push subscription: a job then has an identity of its own that is the only
principal allowed to invoke the step; its attempt deadline (up to 30 min) covers long refreshes, where a
push subscription would redeliver after at most 10 min while the first run is still going; and a missed
tick needs no dead letter, since the next one recomputes the same period. Failed attempts are retried with
backoff and logged by Cloud Scheduler."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.components.base import Component, account_id
from infra.components.iam import invoker
from infra.declaration import ScheduleTrigger
from infra.settings import StackSettings


class ScheduledCall(Component):
    def __init__(
        self,
        name: str,
        *,
        step: str,
        function: gcp.cloudfunctionsv2.Function,
        endpoint: pulumi.Input[str],
        trigger: ScheduleTrigger,
        settings: StackSettings,
        deps: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ScheduledCall", name, deps, opts)
        self.account = gcp.serviceaccount.Account(
            f"{name}-identity",
            account_id=account_id(settings.name_prefix, "sched", step),
            display_name=f"Cloud Scheduler calling {step}",
            opts=self.child(),
        )
        may_invoke = invoker(
            f"{name}-invoker",
            function,
            settings.region,
            self.account.email.apply(lambda email: f"serviceAccount:{email}"),
            self.child(),
        )
        body = base64.b64encode(json.dumps(trigger.body, sort_keys=True).encode()).decode()
        self.job = gcp.cloudscheduler.Job(
            name,
            name=settings.resource_name(step),
            region=settings.region,
            description=f"Runs {step} on schedule",
            schedule=trigger.cron,
            time_zone=trigger.time_zone or settings.time_zone,
            attempt_deadline=f"{trigger.attempt_deadline_seconds}s",
            retry_config=gcp.cloudscheduler.JobRetryConfigArgs(
                retry_count=trigger.retry_count,
                min_backoff_duration=f"{trigger.min_backoff_seconds}s",
                max_backoff_duration=f"{trigger.max_backoff_seconds}s",
                max_doublings=3,
            ),
            http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                uri=endpoint,
                http_method="POST",
                body=body,
                headers={"Content-Type": "application/json"},
                oidc_token=gcp.cloudscheduler.JobHttpTargetOidcTokenArgs(
                    service_account_email=self.account.email, audience=endpoint
                ),
            ),
            opts=self.child(may_invoke),
        )
        self.register_outputs({"job": self.job.id, "identity": self.account.email})
