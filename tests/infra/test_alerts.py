"""Alerts under mocks: every step's errors, a scheduled step that stops succeeding, messages in a dead letter,
and who is told."""

from __future__ import annotations

import pulumi
import pytest

from infra.declaration import discover
from infra.settings import DEFAULT_SECRETS
from tests.infra.harness import PROJECT, REPO, Deployment, Registered, deploy, settings

pytestmark = pytest.mark.infra

POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
METRIC = "gcp:logging/metric:Metric"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
SECRETS = {secret_id: "x" for secret_id in DEFAULT_SECRETS}


def policies(deployed: Deployment) -> dict[str, Registered]:
    return {r.inputs["displayName"]: r for r in deployed.of_type(POLICY)}


def condition(policy: Registered) -> dict:
    [only] = policy.inputs["conditions"]
    return only


def test_every_step_alerts_on_its_errors_at_most_hourly(deployment: Deployment) -> None:
    found = policies(deployment)
    for step in discover(REPO / "functions"):
        policy = found[f"cdp {step}: errors"]
        assert condition(policy)["conditionMatchedLog"]["filter"] == (
            f'resource.type="cloud_run_revision" AND resource.labels.service_name="cdp-{step}" AND severity>=ERROR'
        )
        assert policy.inputs["alertStrategy"]["notificationRateLimit"] == {"period": "3600s"}
        assert policy.inputs["severity"] == "ERROR"


def test_refine_alerts_when_no_run_succeeded_for_its_window(deployment: Deployment) -> None:
    # Given refine's hourly schedule and its 30-minute attempt deadline: twice the gap plus the deadline
    [metric] = deployment.of_type(METRIC)
    assert metric.inputs["name"] == "cdp-refine-succeeded"
    assert metric.inputs["filter"] == (
        'resource.type="cloud_run_revision" AND resource.labels.service_name="cdp-refine" '
        'AND jsonPayload.step="refine" AND jsonPayload.status=200'
    )
    assert metric.inputs["metricDescriptor"] == {"metricKind": "DELTA", "valueType": "INT64", "unit": "1"}
    absent = condition(policies(deployment)["cdp refine: no successful run for 150 min"])["conditionAbsent"]
    assert absent["duration"] == "9000s"
    assert absent["filter"] == (
        'metric.type="logging.googleapis.com/user/cdp-refine-succeeded" AND resource.type="cloud_run_revision"'
    )
    # one series over every revision: a deploy is no absence
    assert absent["aggregations"] == [
        {"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM", "crossSeriesReducer": "REDUCE_SUM"}
    ]


def test_a_pushed_step_alerts_on_its_dead_letters(deployment: Deployment) -> None:
    policy = policies(deployment)["cdp load: messages in the dead letter"]
    threshold = condition(policy)["conditionThreshold"]
    assert threshold["filter"] == (
        'resource.type="pubsub_subscription" AND resource.labels.subscription_id="collected-load-dead-letter-hold" '
        'AND metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages"'
    )
    assert (threshold["comparison"], threshold["thresholdValue"]) == ("COMPARISON_GT", 0)
    holds = {r.inputs["name"] for r in deployment.of_type("gcp:pubsub/subscription:Subscription")}
    assert "collected-load-dead-letter-hold" in holds


def test_only_scheduled_steps_have_a_success_alert_and_only_pushed_ones_a_dead_letter_alert(
    deployment: Deployment,
) -> None:
    titles = set(policies(deployment))
    assert {t for t in titles if "no successful run" in t} == {"cdp refine: no successful run for 150 min"}
    assert {t for t in titles if "dead letter" in t} == {"cdp load: messages in the dead letter"}
    assert len(titles) == len(discover(REPO / "functions")) + 2


def test_alerts_go_to_the_configured_emails_and_channels() -> None:
    existing = f"projects/{PROJECT}/notificationChannels/42"
    deployed = deploy(
        stack_settings=settings(alert_emails=["ops@example.com", "dpo@example.com"], alert_channels=[existing]),
        secret_values=SECRETS,
    )
    channels = deployed.of_type(CHANNEL)
    assert sorted(c.inputs["labels"]["email_address"] for c in channels) == ["dpo@example.com", "ops@example.com"]
    assert {c.inputs["type"] for c in channels} == {"email"}
    expected = {c.state["name"] for c in channels} | {existing}
    for policy in deployed.of_type(POLICY):
        assert set(policy.inputs["notificationChannels"]) == expected, policy.inputs["displayName"]


def test_without_destinations_the_policies_exist_and_notify_no_one(deployment: Deployment) -> None:
    assert not deployment.of_type(CHANNEL)
    assert all(not p.inputs.get("notificationChannels") for p in deployment.of_type(POLICY))


def test_a_stack_schedule_override_moves_or_drops_the_success_alert() -> None:
    denser = deploy(
        stack_settings=settings(schedules={"refine": {"cron": "*/10 * * * *", "alert_after_minutes": 45}}),
        secret_values=SECRETS,
    )
    assert "cdp refine: no successful run for 45 min" in policies(denser)
    daily = deploy(stack_settings=settings(schedules={"refine": {"cron": "0 3 * * *"}}), secret_values=SECRETS)
    assert not [t for t in policies(daily) if "no successful run" in t]  # too sparse for Cloud Monitoring
    assert "cdp refine: errors" in policies(daily)  # its failures still alert
    with pytest.raises(pulumi.RunError, match="alert_after_minutes 30 is not longer than the schedule's longest gap"):
        deploy(stack_settings=settings(schedules={"refine": {"alert_after_minutes": 30}}), secret_values=SECRETS)
