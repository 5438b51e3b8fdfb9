"""The mocked resource graph of the repository as it is: identities, the IAM matrix, delivery, tables, order."""

from __future__ import annotations

import json

import pytest
from pulumi.runtime import rpc

from infra.components.services import REQUIRED_SERVICES
from infra.declaration import (
    FORBIDDEN_ROLES,
    FunctionDeclaration,
    HttpTrigger,
    PubSubTrigger,
    ScheduleTrigger,
    discover,
)
from infra.settings import DEFAULT_SECRETS, StackSettings
from shared.schema import all_tables
from tests.infra.harness import (
    PROJECT,
    REPO,
    WRITE_KEYS,
    Deployment,
    PlatformMocks,
    RecordingMonitor,
    deploy,
    settings,
)

pytestmark = pytest.mark.infra

ACCOUNT = "gcp:serviceaccount/account:Account"
FUNCTION = "gcp:cloudfunctionsv2/function:Function"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
TOPIC = "gcp:pubsub/topic:Topic"
TABLE = "gcp:bigquery/table:Table"
SERVICE = "gcp:projects/service:Service"
RUN_INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
# IAM member types -> the input naming what the role is on.
IAM_TARGET = {
    "gcp:projects/iAMMember:IAMMember": "project",
    "gcp:pubsub/topicIAMMember:TopicIAMMember": "topic",
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": "subscription",
    "gcp:bigquery/datasetIamMember:DatasetIamMember": "datasetId",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "bucket",
    "gcp:secretmanager/secretIamMember:SecretIamMember": "secretId",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": "repository",
    "gcp:serviceaccount/iAMMember:IAMMember": "serviceAccountId",
    RUN_INVOKER: "name",
}
STEPS = discover(REPO / "functions")  # the repository as it is: later steps are checked by the same rules
SETTINGS: StackSettings = settings()
KIND_TYPES = {
    "project": "projects",
    "topic": "pubsub",
    "dataset": "bigquery",
    "bucket": "storage",
    "secret": "secretmanager",
    "function": "cloudrunv2",
}


def expected_grants(declaration: FunctionDeclaration) -> set[tuple[str, str, str]]:
    """What a step's own identity must hold, and nothing more: its declared roles and its secrets."""
    expected = set()
    for grant in declaration.roles:
        target = {
            "project": PROJECT,
            "bucket": SETTINGS.bucket_name(grant.target),
            "function": service_path(grant.target),
        }.get(grant.kind, grant.target)
        expected.add((KIND_TYPES[grant.kind], grant.role, target))
    for secret_id in declaration.secrets.values():
        expected.add(("secretmanager", "roles/secretmanager.secretAccessor", secret_id))
    return expected


def granted(deployment: Deployment) -> dict[str, set[tuple[str, str, str]]]:
    out: dict[str, set[tuple[str, str, str]]] = {}
    for member, typ, role, target in bindings(deployment):
        out.setdefault(member, set()).add((typ.split(":")[1].split("/")[0], role, target))
    return out


def bindings(deployment: Deployment) -> list[tuple[str, str, str, str]]:
    """(member, type, role, target) of every IAM member binding in the graph."""
    return [
        (r.inputs["member"], r.type, r.inputs["role"], r.inputs[IAM_TARGET[r.type]])
        for r in deployment.resources
        if r.type in IAM_TARGET
    ]


def function(deployment: Deployment, step: str):
    return deployment.one(FUNCTION, name=f"cdp-{step}")


def service_path(step: str) -> str:
    return f"projects/{PROJECT}/locations/asia-northeast3/services/cdp-{step}"


def member_of(deployment: Deployment, step: str) -> str:
    return f"serviceAccount:{function(deployment, step).inputs['serviceConfig']['serviceAccountEmail']}"


def test_every_declared_step_is_a_function_with_its_own_service_account(deployment: Deployment) -> None:
    # Given the steps declared under functions/ / When the program runs / Then each is a function of its own
    emails = {step: function(deployment, step).inputs["serviceConfig"]["serviceAccountEmail"] for step in STEPS}
    accounts = {f"{r.inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com" for r in deployment.of_type(ACCOUNT)}
    assert {"collect", "load"} <= set(STEPS) == set(emails)
    assert len(set(emails.values())) == len(STEPS), "two functions share a service account"
    assert set(emails.values()) <= accounts
    build_accounts = {f["inputs"]["buildConfig"]["serviceAccount"] for f in map(vars, deployment.of_type(FUNCTION))}
    assert len(build_accounts) == 1
    (build_account,) = build_accounts
    assert build_account.startswith(f"projects/{PROJECT}/serviceAccounts/cdp-build@")
    assert build_account.rsplit("/", 1)[1] not in emails.values()


def test_each_function_has_exactly_the_roles_it_needs(deployment: Deployment) -> None:
    grants = granted(deployment)
    assert grants[member_of(deployment, "collect")] == {
        ("pubsub", "roles/pubsub.publisher", "collected"),
        ("secretmanager", "roles/secretmanager.secretAccessor", "write-keys"),
    }
    assert grants[member_of(deployment, "load")] == {
        ("bigquery", "roles/bigquery.dataEditor", "raw"),
        ("bigquery", "roles/bigquery.dataEditor", "ops"),
        ("projects", "roles/bigquery.jobUser", PROJECT),
    }
    # deletion on request deletes rows in raw and refined, and may read nothing else (ops, segments, ...)
    assert grants[member_of(deployment, "erase")] == {
        ("bigquery", "roles/bigquery.dataEditor", "raw"),
        ("bigquery", "roles/bigquery.dataEditor", "refined"),
        ("projects", "roles/bigquery.jobUser", PROJECT),
    }
    for step, declaration in STEPS.items():
        assert grants.get(member_of(deployment, step), set()) == expected_grants(declaration), step


def test_no_broad_roles_and_no_public_invoker_except_collect(deployment: Deployment) -> None:
    all_bindings = bindings(deployment)
    assert not [b for b in all_bindings if b[2] in ("roles/owner", "roles/editor", "roles/viewer")]
    functions = {member_of(deployment, step) for step in STEPS}
    assert not [b for b in all_bindings if b[0] in functions and b[2] in FORBIDDEN_ROLES]
    # The one identity-level grant: Pub/Sub may mint the OIDC tokens of the push identities, nothing else.
    token_creators = [b for b in all_bindings if b[2] == "roles/iam.serviceAccountTokenCreator"]
    assert [(b[0].split("@")[1], b[3].rsplit("/", 1)[1].split("@")[0]) for b in token_creators] == [
        ("gcp-sa-pubsub.iam.gserviceaccount.com", "cdp-push-load")
    ]
    public = [b for b in all_bindings if b[0] in ("allUsers", "allAuthenticatedUsers")]
    assert public == [("allUsers", RUN_INVOKER, "roles/run.invoker", service_path("collect"))]
    project_level = {(b[0].split(":")[1].split("@")[0], b[2]) for b in all_bindings if b[1].startswith("gcp:projects/")}
    declared = {(f"cdp-fn-{s}", g.role) for s, d in STEPS.items() for g in d.roles if g.kind == "project"}
    assert ("cdp-fn-load", "roles/bigquery.jobUser") in declared
    assert project_level == declared | {
        ("cdp-build", "roles/logging.logWriter"),
        ("cdp-build", "roles/storage.objectAdmin"),
    }
    conditional = deployment.one("gcp:projects/iAMMember:IAMMember", role="roles/storage.objectAdmin")
    assert "gcf-v2-" in conditional.inputs["condition"]["expression"]


def test_invokers_are_exactly_the_delivering_identities(deployment: Deployment) -> None:
    invokers = {(r.inputs["name"], r.inputs["member"]) for r in deployment.of_type(RUN_INVOKER)}
    expected = set()
    for step, declaration in STEPS.items():
        trigger = declaration.trigger
        if isinstance(trigger, HttpTrigger) and trigger.access == "public":
            expected.add((service_path(step), "allUsers"))
        elif isinstance(trigger, HttpTrigger) and trigger.access == "marketers":
            expected |= {(service_path(step), m) for m in SETTINGS.marketer_invokers}
        elif isinstance(trigger, PubSubTrigger):
            expected.add((service_path(step), f"serviceAccount:cdp-push-{step}@{PROJECT}.iam.gserviceaccount.com"))
        elif isinstance(trigger, ScheduleTrigger):
            expected.add((service_path(step), f"serviceAccount:cdp-sched-{step}@{PROJECT}.iam.gserviceaccount.com"))
        for grant in declaration.roles:
            if grant.kind == "function":
                expected.add(
                    (service_path(grant.target), f"serviceAccount:cdp-fn-{step}@{PROJECT}.iam.gserviceaccount.com")
                )
    assert {
        (service_path("collect"), "allUsers"),
        (service_path("load"), f"serviceAccount:cdp-push-load@{PROJECT}.iam.gserviceaccount.com"),
    } <= expected
    assert invokers == expected
    assert all(r.inputs["role"] == "roles/run.invoker" for r in deployment.of_type(RUN_INVOKER))


def test_the_erase_step_is_invoked_by_the_marketers_only_one_request_at_a_time() -> None:
    # Given marketer principals in the stack settings / When the repository is deployed
    marketers = ["group:privacy@example.com", "user:dpo@example.com"]
    deployed = deploy(
        stack_settings=settings(marketer_invokers=marketers),
        secret_values={secret_id: "x" for secret_id in DEFAULT_SECRETS},
    )
    # Then exactly they may invoke erase (no allUsers), from outside, and erasures never run side by side
    invokers = {r.inputs["member"] for r in deployed.of_type(RUN_INVOKER) if r.inputs["name"] == service_path("erase")}
    assert invokers == set(marketers)
    assert "allUsers" not in invokers and "allAuthenticatedUsers" not in invokers
    config = function(deployed, "erase").inputs["serviceConfig"]
    assert config["ingressSettings"] == "ALLOW_ALL"
    assert (config["maxInstanceRequestConcurrency"], config["maxInstanceCount"]) == (1, 1)
    assert (
        deployed.outputs["marketerApiUrls"]["erase"]
        == f"https://asia-northeast3-{PROJECT}.cloudfunctions.net/cdp-erase"
    )
    assert not [r for r in deployed.of_type("gcp:cloudscheduler/job:Job") if r.inputs["name"] == "cdp-erase"]


def test_every_event_function_has_its_own_push_subscription_with_retries_dead_letters_and_oidc(
    deployment: Deployment,
) -> None:
    event_steps = {name: d for name, d in STEPS.items() if isinstance(d.trigger, PubSubTrigger)}
    assert "load" in event_steps
    agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    for step, declaration in event_steps.items():
        trigger = declaration.trigger
        uri = f"https://cdp-{step}-xyz-du.a.run.app"
        sub = deployment.one(SUBSCRIPTION, name=f"{trigger.topic}-{step}")
        assert sub.inputs["topic"] == f"projects/{PROJECT}/topics/{trigger.topic}"
        push = sub.inputs["pushConfig"]
        assert push["pushEndpoint"] == uri
        assert push["oidcToken"] == {
            "serviceAccountEmail": f"cdp-push-{step}@{PROJECT}.iam.gserviceaccount.com",
            "audience": uri,
        }
        dead_letter = f"{trigger.topic}-{step}-dead-letter"
        assert sub.inputs["deadLetterPolicy"] == {
            "deadLetterTopic": f"projects/{PROJECT}/topics/{dead_letter}",
            "maxDeliveryAttempts": trigger.max_delivery_attempts,
        }
        assert sub.inputs["retryPolicy"] == {
            "minimumBackoff": f"{trigger.min_backoff_seconds}s",
            "maximumBackoff": f"{trigger.max_backoff_seconds}s",
        }
        assert sub.inputs["ackDeadlineSeconds"] >= declaration.sizing.timeout_seconds
        assert sub.inputs["expirationPolicy"] == {"ttl": ""}
        deployment.one(TOPIC, name=dead_letter)
        hold = deployment.one(SUBSCRIPTION, name=f"{dead_letter}-hold")
        assert hold.inputs["topic"] == f"projects/{PROJECT}/topics/{dead_letter}"
        assert "pushConfig" not in hold.inputs  # a pull subscription: dead letters wait for an operator
        all_bindings = bindings(deployment)
        assert (
            agent,
            "gcp:pubsub/topicIAMMember:TopicIAMMember",
            "roles/pubsub.publisher",
            dead_letter,
        ) in all_bindings
        assert (
            agent,
            "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember",
            "roles/pubsub.subscriber",
            f"{trigger.topic}-{step}",
        ) in all_bindings
        # The subscription pushes only once its identity may invoke and dead letters can be forwarded.
        invoker = deployment.one(RUN_INVOKER, name=service_path(step))
        assert invoker.urn in sub.dependencies
        dl_publisher = deployment.one("gcp:pubsub/topicIAMMember:TopicIAMMember", topic=dead_letter)
        assert dl_publisher.urn in sub.dependencies
        # no Eventarc trigger: its subscription can take no dead-letter topic (pitfall 3)
        assert "eventTrigger" not in function(deployment, step).inputs


def test_tables_come_from_the_schema_partitioned_by_day_and_clustered(deployment: Deployment) -> None:
    specs = deployment.tables
    assert specs == {k: v for k, v in all_tables().items() if k in specs}
    assert {"raw.user", "raw.page", "raw.land", "raw.conv", "raw.event", "ops.rejected"} <= set(specs)
    for qualified, spec in specs.items():
        table = deployment.one(TABLE, datasetId=spec.dataset, tableId=spec.name)
        assert table.inputs["timePartitioning"] == {"type": "DAY", "field": spec.partition_field}
        assert table.inputs["clusterings"] == spec.clustering
        assert table.inputs["requirePartitionFilter"] is (spec.dataset == "raw"), qualified
        assert [c["name"] for c in json.loads(table.inputs["schema"])] == spec.column_names
        assert [c["mode"] for c in json.loads(table.inputs["schema"])] == [c.mode for c in spec.columns]
        assert table.inputs["deletionProtection"] is True
    datasets = {r.inputs["datasetId"] for r in deployment.of_type("gcp:bigquery/dataset:Dataset")}
    assert datasets == {"raw", "refined", "segments", "activation", "ops"}


def test_raw_unique_views_read_their_raw_table(deployment: Deployment) -> None:
    for name in ("user", "page", "land", "conv", "event"):
        view = deployment.one(TABLE, datasetId="raw", tableId=f"{name}_unique")
        query = view.inputs["view"]["query"]
        assert view.inputs["view"]["useLegacySql"] is False
        assert f"`{PROJECT}`.raw.`{name}`" in query or f"`{PROJECT}.raw.{name}`" in query
        assert "QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id" in query
        assert deployment.one(TABLE, datasetId="raw", tableId=name).urn in view.dependencies


def test_services_are_enabled_first_and_everything_else_depends_on_them(deployment: Deployment) -> None:
    services = deployment.of_type(SERVICE)
    assert {s.inputs["service"] for s in services} == set(REQUIRED_SERVICES)
    assert all(s.inputs["disableOnDestroy"] is False for s in services)
    service_urns = {s.urn for s in services}
    resources = [r for r in deployment.resources if r.custom and r.type != SERVICE and not r.type.startswith("pulumi:")]
    assert len(resources) > 50
    late = [r.name for r in resources if not service_urns <= r.dependencies]
    assert late == []


def test_functions_get_the_platform_environment_sizing_and_pinned_secrets(deployment: Deployment) -> None:
    for step, declaration in STEPS.items():
        config = function(deployment, step).inputs["serviceConfig"]
        env = config["environmentVariables"]
        assert env["CDP_PROJECT"] == PROJECT
        assert env["CDP_WAREHOUSE"] == "bigquery"
        if step in ("collect", "load"):
            assert env["CDP_COLLECTED_TOPIC"] == "collected"
        assert env["CDP_BIGQUERY_LOCATION"] == "asia-northeast3"
        assert env["CDP_MAXIMUM_BYTES_BILLED"] == str(50 * 1024**3)
        sizing = declaration.sizing
        assert env["WORKERS"] == str(sizing.workers)
        assert config["availableMemory"] == sizing.memory
        assert config["availableCpu"] == sizing.cpu
        assert config["maxInstanceRequestConcurrency"] == sizing.concurrency
        assert config["timeoutSeconds"] == sizing.timeout_seconds
        assert config["maxInstanceCount"] == sizing.max_instances
    # refine has 2 vCPUs but takes one request at a time: one worker process
    assert function(deployment, "refine").inputs["serviceConfig"]["environmentVariables"]["WORKERS"] == "1"
    collect = function(deployment, "collect").inputs["serviceConfig"]
    assert "CDP_WRITE_KEYS" not in collect["environmentVariables"]
    assert collect["secretEnvironmentVariables"] == [
        {"key": "CDP_WRITE_KEYS", "projectId": PROJECT, "secret": "write-keys", "version": "1"}
    ]
    assert collect["ingressSettings"] == "ALLOW_ALL"
    assert function(deployment, "load").inputs["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_ONLY"
    # the function is deployed after its roles (the deployment checks secret access)
    accessor = deployment.one("gcp:secretmanager/secretIamMember:SecretIamMember", secretId="write-keys")
    assert accessor.urn in function(deployment, "collect").dependencies


def test_source_objects_are_named_by_content_hash_in_the_sources_bucket(deployment: Deployment) -> None:
    for step in STEPS:
        source = function(deployment, step).inputs["buildConfig"]["source"]["storageSource"]
        assert source["bucket"] == f"{PROJECT}-cdp-sources"
        assert source["object"].startswith(f"{step}/") and source["object"].endswith(".zip")
        assert len(source["object"]) == len(f"{step}/") + 16 + len(".zip")


def test_buckets_have_lifecycle_rules_and_no_public_access(deployment: Deployment) -> None:
    for key in ("sources", "config", "models"):
        bucket = deployment.one("gcp:storage/bucket:Bucket", name=f"{PROJECT}-cdp-{key}")
        assert bucket.inputs["publicAccessPrevention"] == "enforced"
        assert bucket.inputs["uniformBucketLevelAccess"] is True
        actions = [rule["action"]["type"] for rule in bucket.inputs["lifecycleRules"]]
        assert "AbortIncompleteMultipartUpload" in actions
        if key != "sources":  # sources are replaced by Pulumi itself; an age rule could delete a live one
            assert bucket.inputs["versioning"] == {"enabled": True}
            assert "Delete" in actions


def test_secrets_exist_for_the_meta_token_and_the_providers(deployment: Deployment) -> None:
    ids = {r.inputs["secretId"] for r in deployment.of_type("gcp:secretmanager/secret:Secret")}
    assert {"write-keys", "meta-access-token", "alimtalk-api-key", "sms-api-key", "email-api-key"} <= ids
    versions = deployment.of_type("gcp:secretmanager/secretVersion:SecretVersion")
    assert f"projects/{PROJECT}/secrets/write-keys" in [v.inputs["secret"] for v in versions]
    # each version's value is a secret in the state, never plain text
    write_keys = next(v for v in versions if v.inputs["secret"].endswith("/write-keys"))
    assert write_keys.inputs["secretData"] == {rpc._special_sig_key: rpc._special_secret_sig, "value": WRITE_KEYS}


def test_outputs_give_the_collect_url_and_a_tracker_snippet_per_site(deployment: Deployment) -> None:
    url = f"https://asia-northeast3-{PROJECT}.cloudfunctions.net/cdp-collect"
    assert deployment.outputs["collectUrl"] == url
    snippets = deployment.outputs["trackerSnippets"]
    assert set(snippets) == {pair.split("=")[0] for pair in WRITE_KEYS.split(",")}
    assert f'src="{url}/tracker.js"' in snippets["demo-shop"]
    assert 'data-site-key="wk_demo_shop"' in snippets["demo-shop"]
    marketer = [s for s, d in STEPS.items() if isinstance(d.trigger, HttpTrigger) and d.trigger.access == "marketers"]
    assert ("marketerApiUrls" in deployment.outputs) is bool(marketer)
    assert ("marketerApiUrl" in deployment.outputs) is ("send" in marketer)
    events = {s: d for s, d in STEPS.items() if isinstance(d.trigger, PubSubTrigger)}
    assert deployment.outputs["deadLetterTopics"] == {
        s: f"{d.trigger.topic}-{s}-dead-letter" for s, d in events.items()
    }
    assert deployment.outputs["deadLetterTopics"]["load"] == "collected-load-dead-letter"


def test_the_entry_point_reads_the_stack_configuration() -> None:
    """`pulumi up` runs infra/__main__.py (Pulumi.yaml: main infra/) with the stack's config, secrets included."""
    import runpy

    import pulumi
    import yaml

    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python" and project["main"].rstrip("/") == "infra"
    monitor = RecordingMonitor(PlatformMocks())
    pulumi.runtime.set_mocks(monitor.mocks, project="cdp", stack="dev", preview=False, monitor=monitor)
    values = {secret_id: "x" for secret_id in DEFAULT_SECRETS}
    pulumi.runtime.set_all_config(
        {
            "gcp:project": PROJECT,
            "cdp:writeKeys": "shop=wk_shop",
            "cdp:secretValues": json.dumps(values),
            "cdp:namePrefix": "acme",
        },
        secret_keys=["cdp:writeKeys", "cdp:secretValues"],
    )
    try:
        pulumi.runtime.test(lambda: runpy.run_path(str(REPO / "infra" / "__main__.py"), run_name="__main__"))()
    finally:
        pulumi.runtime.set_all_config({})
    functions = [r for r in monitor.registered.values() if r.type == FUNCTION]
    assert {r.inputs["name"] for r in functions} >= {"acme-collect", "acme-load"}
    versions = [r for r in monitor.registered.values() if r.type == "gcp:secretmanager/secretVersion:SecretVersion"]
    write_keys = next(v for v in versions if v.inputs["secret"].endswith("/write-keys"))
    assert write_keys.inputs["secretData"]["value"] == "shop=wk_shop"
