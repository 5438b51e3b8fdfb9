"""New steps deploy by adding their folder and declaration: scheduled, marketer-facing and fan-out steps."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from tests.infra.harness import PROJECT, Deployment, copy_repo, deploy, settings

pytestmark = pytest.mark.infra

FUNCTION = "gcp:cloudfunctionsv2/function:Function"
RUN_INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
JOB = "gcp:cloudscheduler/job:Job"
MARKETERS = ["group:marketing@example.com", "user:lead@example.com"]


def add_step(repo: Path, name: str, declaration: dict) -> None:
    folder = repo / "functions" / name
    folder.mkdir()
    (folder / "main.py").write_text(
        f'import functions_framework\n\n\n@functions_framework.http\ndef {name}(request):\n    return "ok"\n'
    )
    (folder / "function.json").write_text(json.dumps(declaration))


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """The repository with three more steps, the way later issues will add them."""
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    add_step(
        repo,
        "refine",
        {
            "entry_point": "refine",
            "trigger": {"type": "schedule", "cron": "0 3 * * *", "body": {"period": "yesterday"}},
            "roles": [
                {"role": "roles/bigquery.dataViewer", "on": "dataset:raw"},
                {"role": "roles/bigquery.dataEditor", "on": "dataset:refined"},
                {"role": "roles/bigquery.jobUser", "on": "project"},
            ],
            "sizing": {"memory": "512Mi", "timeout_seconds": 1800},
        },
    )
    add_step(
        repo,
        "send",
        {
            "entry_point": "send",
            "trigger": {"type": "http", "access": "marketers"},
            "publishes": ["sends"],
            "roles": [
                {"role": "roles/pubsub.publisher", "on": "topic:sends"},
                {"role": "roles/storage.objectViewer", "on": "bucket:config"},
            ],
            "secrets": {"CDP_META_ACCESS_TOKEN": "meta-access-token"},
        },
    )
    add_step(
        repo,
        "deliver",
        {
            "entry_point": "deliver",
            "trigger": {"type": "pubsub", "topic": "sends", "max_delivery_attempts": 5},
            "roles": [{"role": "roles/run.invoker", "on": "function:send"}],
        },
    )
    stack = settings(marketer_invokers=MARKETERS, schedules={"refine": {"cron": "30 2 * * *"}})
    return deploy(repo, stack, secret_values={"meta-access-token": "EAAB-token"})


def function(deployment: Deployment, step: str):
    return deployment.one(FUNCTION, name=f"cdp-{step}")


def service_path(step: str) -> str:
    return f"projects/{PROJECT}/locations/asia-northeast3/services/cdp-{step}"


def test_every_step_folder_is_deployed(grown: Deployment) -> None:
    names = {r.inputs["name"] for r in grown.of_type(FUNCTION)}
    assert names == {"cdp-collect", "cdp-load", "cdp-refine", "cdp-send", "cdp-deliver"}
    emails = [function(grown, s).inputs["serviceConfig"]["serviceAccountEmail"] for s in ("refine", "send", "deliver")]
    assert emails == [f"cdp-fn-{s}@{PROJECT}.iam.gserviceaccount.com" for s in ("refine", "send", "deliver")]


def test_a_scheduled_step_has_a_job_with_its_own_identity_and_oidc(grown: Deployment) -> None:
    job = grown.one(JOB, name="cdp-refine")
    uri = "https://cdp-refine-xyz-du.a.run.app"
    identity = f"cdp-sched-refine@{PROJECT}.iam.gserviceaccount.com"
    assert job.inputs["schedule"] == "30 2 * * *"  # the stack's override of the declared "0 3 * * *"
    assert job.inputs["timeZone"] == "Asia/Seoul"
    assert job.inputs["attemptDeadline"] == "1800s"
    assert job.inputs["retryConfig"]["retryCount"] == 3
    target = job.inputs["httpTarget"]
    assert target["uri"] == uri and target["httpMethod"] == "POST"
    assert target["oidcToken"] == {"serviceAccountEmail": identity, "audience": uri}
    assert json.loads(__import__("base64").b64decode(target["body"])) == {"period": "yesterday"}
    invoker = grown.one(RUN_INVOKER, member=f"serviceAccount:{identity}")
    assert invoker.inputs["name"] == service_path("refine")
    assert invoker.urn in job.dependencies
    assert function(grown, "refine").inputs["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_ONLY"
    # the job's identity is not the function's, and may do nothing but invoke it
    fn_identity = function(grown, "refine").inputs["serviceConfig"]["serviceAccountEmail"]
    assert fn_identity != identity
    assert [r.type for r in grown.resources if r.inputs.get("member") == f"serviceAccount:{identity}"] == [RUN_INVOKER]


def test_the_marketer_api_is_invoked_only_by_the_configured_principals(grown: Deployment) -> None:
    members = {r.inputs["member"] for r in grown.of_type(RUN_INVOKER) if r.inputs["name"] == service_path("send")}
    deliver = f"serviceAccount:cdp-fn-deliver@{PROJECT}.iam.gserviceaccount.com"
    assert members == {*MARKETERS, deliver}
    assert grown.outputs["marketerApiUrl"] == f"https://asia-northeast3-{PROJECT}.cloudfunctions.net/cdp-send"
    config = function(grown, "send").inputs["serviceConfig"]
    assert config["secretEnvironmentVariables"] == [
        {"key": "CDP_META_ACCESS_TOKEN", "projectId": PROJECT, "secret": "meta-access-token", "version": "1"}
    ]
    assert config["environmentVariables"]["CDP_SENDS_TOPIC"] == "sends"
    assert config["environmentVariables"]["CDP_CONFIG_BUCKET"] == f"{PROJECT}-cdp-config"
    public = [r for r in grown.of_type(RUN_INVOKER) if r.inputs["member"] in ("allUsers", "allAuthenticatedUsers")]
    assert [r.inputs["name"] for r in public] == [service_path("collect")]


def test_a_new_event_step_gets_its_topic_push_subscription_and_dead_letters(grown: Deployment) -> None:
    grown.one("gcp:pubsub/topic:Topic", name="sends")
    sub = grown.one("gcp:pubsub/subscription:Subscription", name="sends-deliver")
    assert sub.inputs["deadLetterPolicy"]["maxDeliveryAttempts"] == 5
    assert sub.inputs["deadLetterPolicy"]["deadLetterTopic"] == f"projects/{PROJECT}/topics/sends-deliver-dead-letter"
    assert sub.inputs["retryPolicy"] == {"minimumBackoff": "10s", "maximumBackoff": "600s"}
    assert (
        sub.inputs["pushConfig"]["oidcToken"]["serviceAccountEmail"]
        == f"cdp-push-deliver@{PROJECT}.iam.gserviceaccount.com"
    )
    assert grown.outputs["deadLetterTopics"] == {
        "load": "collected-load-dead-letter",
        "deliver": "sends-deliver-dead-letter",
    }
    assert grown.outputs["schedules"] == {"refine": "cdp-refine"}


def test_a_step_reading_a_secret_without_a_value_is_refused(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path)
    add_step(
        repo,
        "publish",
        {
            "entry_point": "publish",
            "trigger": {"type": "schedule", "cron": "0 * * * *"},
            "secrets": {"CDP_META_ACCESS_TOKEN": "meta-access-token"},
        },
    )
    with pytest.raises(pulumi.RunError, match=r"secretValues\.meta-access-token"):
        deploy(repo)


def test_a_grant_on_something_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path)
    add_step(
        repo,
        "score",
        {
            "entry_point": "score",
            "trigger": {"type": "schedule", "cron": "0 4 * * *"},
            "roles": [{"role": "roles/bigquery.dataEditor", "on": "dataset:nowhere"}],
        },
    )
    with pytest.raises(pulumi.RunError, match="no such dataset"):
        deploy(repo)


def test_overrides_for_unknown_steps_are_refused() -> None:
    with pytest.raises(pulumi.RunError, match="do not exist"):
        deploy(stack_settings=settings(sizes={"colect": {"memory": "1Gi"}}))
