"""Cloud Monitoring: what ops are told, and where (`cdp:alertEmails`, `cdp:alertChannels`).

Per step:
- **errors**: any entry of severity ERROR or worse from the step's Cloud Run service: a failed run (refine's
  500), Pub/Sub unreachable at collect, a 5xx answer (Cloud Run logs those as errors), an exception. At most
  one notification an hour per policy.
- **no successful run** (scheduled steps): each run ends with a structured line carrying `step` and `status`
  (`shared/logs.py`, `log_outcome`); a log-based metric counts those with status 200, and an alert fires when
  none came for the trigger's alert window (`alert_after_minutes`; default twice the schedule's longest gap plus
  the attempt deadline). This is what keeps stale profiles from being silent: a scheduler paused, a deploy that
  broke the step, runs that keep failing or being refused.
- **dead letters** (Pub/Sub-triggered steps): a message is waiting in the step's dead-letter hold, i.e. it
  failed every delivery attempt. It is kept there (31 days) to be inspected and replayed, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_gcp as gcp

from infra.components.base import Component
from infra.components.step import Step
from infra.declaration import ScheduleTrigger
from infra.settings import StackSettings

ERROR_NOTIFICATION_PERIOD = "3600s"
AUTO_CLOSE = "86400s"
SUCCESS_METRIC_ALIGNMENT = "300s"
DEAD_LETTER_ALIGNMENT = "60s"


def service_filter(service: str) -> str:
    """The Cloud Run service behind a 2nd gen function has the function's name."""
    return f'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}"'


def success_filter(service: str, step: str) -> str:
    return f'{service_filter(service)} AND jsonPayload.step="{step}" AND jsonPayload.status=200'


class Alerts(Component):
    def __init__(
        self,
        name: str,
        steps: Mapping[str, Step],
        settings: StackSettings,
        deps: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Alerts", name, deps, opts)
        self.settings = settings
        self.email_channels = [
            gcp.monitoring.NotificationChannel(
                f"alert-email-{index}",
                type="email",
                display_name=f"{settings.name_prefix} alerts: {address}",
                labels={"email_address": address},
                opts=self.child(),
            )
            for index, address in enumerate(settings.alert_emails)
        ]
        self.channels: list[pulumi.Input[str]] = [c.name for c in self.email_channels] + list(settings.alert_channels)
        if not self.channels:
            pulumi.log.warn(
                "no cdp:alertEmails or cdp:alertChannels: alert policies open incidents in Cloud Monitoring "
                "but notify no one"
            )
        self.policies: dict[str, gcp.monitoring.AlertPolicy] = {}
        for step_name, step in steps.items():
            self._errors(step_name)
            trigger = step.declaration.trigger
            if isinstance(trigger, ScheduleTrigger) and trigger.alert_window_minutes is not None:
                self._no_success(step_name, trigger.alert_window_minutes)
            if step.push is not None:
                self._dead_letters(step_name, step.push.dead_letter_hold)
        self.register_outputs({"policies": {key: p.name for key, p in self.policies.items()}})

    def _policy(
        self,
        key: str,
        *,
        title: str,
        severity: str,
        documentation: str,
        condition: str,
        alert_strategy: gcp.monitoring.AlertPolicyAlertStrategyArgs,
        **kind: object,
    ) -> None:
        """A policy of one condition: `condition` is its name, `kind` its one condition_* argument."""
        self.policies[key] = gcp.monitoring.AlertPolicy(
            f"alert-{key}",
            display_name=f"{self.settings.name_prefix} {title}",
            combiner="OR",
            severity=severity,
            conditions=[gcp.monitoring.AlertPolicyConditionArgs(display_name=condition, **kind)],  # type: ignore[arg-type]
            alert_strategy=alert_strategy,
            notification_channels=self.channels,
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(content=documentation, mime_type="text/markdown"),
            opts=self.child(),
        )

    def _errors(self, step: str) -> None:
        service = self.settings.resource_name(step)
        self._policy(
            f"{step}-errors",
            title=f"{step}: errors",
            severity="ERROR",
            condition=f"{service} logged an error",
            condition_matched_log=gcp.monitoring.AlertPolicyConditionConditionMatchedLogArgs(
                filter=f"{service_filter(service)} AND severity>=ERROR"
            ),
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(
                notification_rate_limit=gcp.monitoring.AlertPolicyAlertStrategyNotificationRateLimitArgs(
                    period=ERROR_NOTIFICATION_PERIOD
                ),
                auto_close=AUTO_CLOSE,
            ),
            documentation=(
                f"The step **{step}** (Cloud Run service `{service}`) logged an error or answered 5xx. Its logs: "
                f"`gcloud logging read '{service_filter(service)} AND severity>=ERROR' --freshness=1d`."
            ),
        )

    def _no_success(self, step: str, minutes: int) -> None:
        service = self.settings.resource_name(step)
        metric = gcp.logging.Metric(
            f"{step}-succeeded",
            name=f"{service}-succeeded",
            description=f"Runs of {step} that succeeded (its log line with status 200)",
            filter=success_filter(service, step),
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(metric_kind="DELTA", value_type="INT64", unit="1"),
            opts=self.child(),
        )
        self._policy(
            f"{step}-no-success",
            title=f"{step}: no successful run for {minutes} min",
            severity="ERROR",
            condition=f"no successful {step} run for {minutes} min",
            condition_absent=gcp.monitoring.AlertPolicyConditionConditionAbsentArgs(
                filter=metric.name.apply(
                    lambda name: (
                        f'metric.type="logging.googleapis.com/user/{name}" AND resource.type="cloud_run_revision"'
                    )
                ),
                duration=f"{minutes * 60}s",
                # One series whatever the revision: a deploy must not look like an absence.
                aggregations=[
                    gcp.monitoring.AlertPolicyConditionConditionAbsentAggregationArgs(
                        alignment_period=SUCCESS_METRIC_ALIGNMENT,
                        per_series_aligner="ALIGN_SUM",
                        cross_series_reducer="REDUCE_SUM",
                    )
                ],
                trigger=gcp.monitoring.AlertPolicyConditionConditionAbsentTriggerArgs(count=1),
            ),
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close=AUTO_CLOSE),
            documentation=(
                f"No run of **{step}** has succeeded for {minutes} minutes: what it produces is going stale. "
                f"See its last runs (for refine: `GET` its URL with an identity token, or `refined.runs`) and its "
                f"Cloud Scheduler job's attempts. The alert needs one successful run after it is created."
            ),
        )

    def _dead_letters(self, step: str, hold: gcp.pubsub.Subscription) -> None:
        self._policy(
            f"{step}-dead-letters",
            title=f"{step}: messages in the dead letter",
            severity="WARNING",
            condition=f"messages held after failing every delivery to {step}",
            condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                filter=hold.name.apply(
                    lambda name: (
                        'resource.type="pubsub_subscription" '
                        f'AND resource.labels.subscription_id="{name}" '
                        'AND metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages"'
                    )
                ),
                comparison="COMPARISON_GT",
                threshold_value=0,
                duration="0s",
                aggregations=[
                    gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                        alignment_period=DEAD_LETTER_ALIGNMENT, per_series_aligner="ALIGN_MAX"
                    )
                ],
            ),
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close=AUTO_CLOSE),
            documentation=(
                f"Messages failed every delivery attempt to **{step}** and are held in its dead-letter "
                "subscription (kept 31 days). See them: `python -m local.cli dead-letters --cloud --project "
                f"<project> --step {step}`; fix the cause, then add `--replay` to send them again (docs/deploy.md)."
            ),
        )
