"""The step declaration format (functions/<step>/function.json) and the stack settings: what is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pydantic import ValidationError

from infra.declaration import DeclarationError, FunctionDeclaration, discover
from infra.settings import StackSettings, read_settings
from tests.infra.harness import REPO

pytestmark = pytest.mark.infra


def declaration(**fields: Any) -> FunctionDeclaration:
    base: dict[str, Any] = {"entry_point": "step", "trigger": {"type": "http"}}
    return FunctionDeclaration.model_validate({**base, **fields})


def test_the_repository_declarations_are_valid() -> None:
    steps = discover(REPO / "functions")
    assert steps["collect"].trigger.type == "http" and steps["collect"].trigger.access == "public"
    assert steps["load"].trigger.type == "pubsub" and steps["load"].trigger.topic == "collected"
    assert steps["erase"].trigger.type == "http" and steps["erase"].trigger.access == "marketers"


def test_an_http_step_is_internal_unless_it_says_otherwise() -> None:
    assert declaration().trigger.access == "internal"


@pytest.mark.parametrize("role", ["roles/editor", "roles/owner", "roles/viewer", "roles/iam.serviceAccountUser"])
def test_broad_roles_are_refused(role: str) -> None:
    with pytest.raises(ValidationError, match="never granted"):
        declaration(roles=[{"role": role, "on": "project"}])


def test_admin_roles_on_the_project_are_refused_but_allowed_on_a_resource() -> None:
    with pytest.raises(ValidationError, match="too broad"):
        declaration(roles=[{"role": "roles/bigquery.admin", "on": "project"}])
    declaration(roles=[{"role": "roles/storage.objectAdmin", "on": "bucket:models"}])


@pytest.mark.parametrize("target", ["everything", "bucket:other", "topic:", "dataset:raw extra"])
def test_unknown_targets_are_refused(target: str) -> None:
    with pytest.raises(ValidationError):
        declaration(roles=[{"role": "roles/pubsub.publisher", "on": target}])


def test_publishing_needs_the_publisher_role_on_that_topic() -> None:
    with pytest.raises(ValidationError, match="publisher"):
        declaration(publishes=["collected"])
    declaration(publishes=["collected"], roles=[{"role": "roles/pubsub.publisher", "on": "topic:collected"}])


def test_concurrency_above_one_needs_a_whole_cpu() -> None:
    with pytest.raises(ValidationError, match="1 vCPU"):
        declaration(sizing={"cpu": "0.5", "concurrency": 8})
    declaration(sizing={"cpu": "0.5", "concurrency": 1})


@pytest.mark.parametrize(
    ("cpu", "concurrency", "workers"),
    [("0.5", 1, 1), ("1", 80, 1), ("1.5", 80, 1), ("2", 80, 2), ("4", 2, 2), ("2", 1, 1), ("8", 1000, 8)],
)
def test_a_step_runs_a_worker_process_a_whole_cpu_at_most_one_a_concurrent_request(
    cpu: str, concurrency: int, workers: int
) -> None:
    assert declaration(sizing={"cpu": cpu, "concurrency": concurrency}).sizing.workers == workers


def test_event_steps_stop_at_540_seconds_and_outlast_no_ack_deadline() -> None:
    trigger = {"type": "pubsub", "topic": "t", "ack_deadline_seconds": 600}
    with pytest.raises(ValidationError, match="540"):
        declaration(trigger=trigger, sizing={"timeout_seconds": 600})
    with pytest.raises(ValidationError, match="redeliver"):
        declaration(
            trigger={"type": "pubsub", "topic": "t", "ack_deadline_seconds": 30}, sizing={"timeout_seconds": 60}
        )


def test_dead_letter_attempts_and_schedules_are_bounded() -> None:
    with pytest.raises(ValidationError):
        declaration(trigger={"type": "pubsub", "topic": "t", "max_delivery_attempts": 200})
    with pytest.raises(ValidationError, match="five fields"):
        declaration(trigger={"type": "schedule", "cron": "every day"})
    with pytest.raises(ValidationError, match="Scheduler would retry"):
        declaration(
            trigger={"type": "schedule", "cron": "0 3 * * *", "attempt_deadline_seconds": 60},
            sizing={"timeout_seconds": 900},
        )


def test_the_program_owns_the_platform_variables_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="set by the program"):
        declaration(env={"CDP_PROJECT": "other"})
    with pytest.raises(ValidationError):
        declaration(trigger={"type": "http", "public": True})
    with pytest.raises(ValidationError):
        declaration(sizes={"memory": "1Gi"})


def test_stack_overrides_are_validated_again() -> None:
    step = declaration(trigger={"type": "schedule", "cron": "0 3 * * *"})
    assert step.with_overrides({"memory": "2Gi"}, {"cron": "15 * * * *"}).sizing.memory == "2Gi"
    with pytest.raises(ValidationError):
        step.with_overrides({"concurrency": 4, "cpu": "0.5"}, None)
    with pytest.raises(ValueError, match="not a scheduled step"):
        declaration().with_overrides(None, {"cron": "0 * * * *"})


def test_a_step_folder_without_its_declaration_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "refine").mkdir()  # an empty folder (work in progress) is not a step
    assert discover_or_none(tmp_path) is None
    (tmp_path / "refine" / "main.py").write_text("")
    with pytest.raises(DeclarationError, match=r"function\.json is missing"):
        discover(tmp_path)
    (tmp_path / "refine" / "function.json").write_text(json.dumps({"entry_point": "refine", "trigger": {"type": "x"}}))
    with pytest.raises(DeclarationError, match="refine"):
        discover(tmp_path)


def discover_or_none(path: Path) -> dict | None:
    try:
        return discover(path)
    except DeclarationError:
        return None


def test_settings_have_defaults_and_refuse_public_marketers() -> None:
    s = StackSettings(project="p")
    assert (s.region, s.location, s.name_prefix, s.time_zone) == (
        "asia-northeast3",
        "asia-northeast3",
        "cdp",
        "Asia/Seoul",
    )
    assert s.maximum_bytes_billed == 50 * 1024**3
    assert s.datasets == ["raw", "refined", "segments", "activation", "ops"]
    assert "meta-access-token" in s.secret_ids and "write-keys" in s.secret_ids
    with pytest.raises(ValidationError):
        StackSettings(project="p", marketer_invokers=["allUsers"])
    with pytest.raises(ValidationError):
        StackSettings(project="p", name_prefix="Too-Long-Prefix")


def test_settings_are_read_from_the_stack_configuration() -> None:
    pulumi.runtime.set_all_config(
        {
            "gcp:project": "from-gcp",
            "cdp:region": "europe-west1",
            "cdp:maximumBytesBilled": "1073741824",
            "cdp:deletionProtection": "false",
            "cdp:marketerInvokers": '["group:m@example.com"]',
            "cdp:schedules": '{"refine": {"cron": "0 5 * * *"}}',
            "cdp:alertEmails": '["ops@example.com"]',
        }
    )
    try:
        s = read_settings()
    finally:
        pulumi.runtime.set_all_config({})
    assert s.project == "from-gcp" and s.region == "europe-west1" and s.location == "europe-west1"
    assert s.maximum_bytes_billed == 1024**3 and s.deletion_protection is False
    assert s.marketer_invokers == ["group:m@example.com"]
    assert s.schedules == {"refine": {"cron": "0 5 * * *"}}
    assert (s.alert_emails, s.alert_channels) == (["ops@example.com"], [])


def test_the_project_is_required() -> None:
    pulumi.runtime.set_all_config({})
    with pytest.raises(pulumi.RunError, match="gcp:project"):
        read_settings()


def test_a_role_declared_twice_is_refused() -> None:
    grant = {"role": "roles/bigquery.dataEditor", "on": "dataset:raw"}
    with pytest.raises(ValidationError, match="twice"):
        declaration(roles=[grant, grant])


@pytest.mark.parametrize(
    ("cron", "zone", "gap", "window"),
    [
        ("20 * * * *", "Asia/Seoul", 60, 60 + 60 + 30),  # twice the gap plus the attempt deadline
        ("0 */6 * * *", None, 360, 750),
        ("0 */12 * * *", None, 720, 1410),  # capped at Cloud Monitoring's 23.5 h
        ("0 3 * * *", "Asia/Seoul", 1440, None),  # too sparse for an absence alert: its errors still alert
        ("*/5 9-18 * * 1-5", None, 3725, None),  # the weekend
    ],
)
def test_a_schedule_knows_its_longest_gap_and_its_alert_window(
    cron: str, zone: str | None, gap: int, window: int | None
) -> None:
    trigger = declaration(trigger={"type": "schedule", "cron": cron, "time_zone": zone}).trigger
    assert (trigger.longest_gap_minutes, trigger.alert_window_minutes) == (gap, window)


def test_an_alert_window_must_outlast_the_gap_and_bad_schedules_are_named() -> None:
    trigger = declaration(trigger={"type": "schedule", "cron": "*/10 * * * *", "alert_after_minutes": 45}).trigger
    assert trigger.alert_window_minutes == 45
    with pytest.raises(ValidationError, match=r"alert_after_minutes 60 is not longer than the schedule's longest gap"):
        declaration(trigger={"type": "schedule", "cron": "20 * * * *", "alert_after_minutes": 60})
    with pytest.raises(ValidationError, match="less than or equal to 1410"):
        declaration(trigger={"type": "schedule", "cron": "0 3 * * *", "alert_after_minutes": 1500})
    with pytest.raises(ValidationError, match="'61 \\* \\* \\* \\*' is not a valid schedule"):
        declaration(trigger={"type": "schedule", "cron": "61 * * * *"})
    with pytest.raises(ValidationError, match="'Asia/Nowhere' is not an IANA time zone name"):
        declaration(trigger={"type": "schedule", "cron": "0 3 * * *", "time_zone": "Asia/Nowhere"})


def test_alert_destinations_are_checked_by_name() -> None:
    s = StackSettings(
        project="p",
        alert_emails=["Ops@Shop.co.kr"],
        alert_channels=["projects/my-shop-prod/notificationChannels/123"],
    )
    assert s.alert_emails == ["Ops@shop.co.kr"]  # the domain normalised, the local part kept
    with pytest.raises(ValidationError, match="alertEmails: 'ops@' is not an email address"):
        StackSettings(project="p", alert_emails=["ops@"])
    with pytest.raises(ValidationError, match="alertChannels: 'slack' is not projects/<project>/notificationChannels"):
        StackSettings(project="p", alert_channels=["slack"])
