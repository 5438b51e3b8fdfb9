"""Runs the Pulumi program under `pulumi.runtime.set_mocks` (no CLI, no credentials) and records every resource
registration: its type, name, inputs (wire names, camelCase), parent and dependencies."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc

from infra.program import build
from infra.settings import StackSettings
from shared.schema import TableSpec, all_tables

REPO = Path(__file__).resolve().parents[2]
PROJECT = "cdp-test-project"
REGION = "asia-northeast3"
PROJECT_NUMBER = "123456789012"
WRITE_KEYS = "demo-shop=wk_demo_shop,other-shop=wk_other"
BASELINE_STEPS = ("collect", "load")  # the steps of the first issues; tests copy these and add their own


@dataclass
class Registered:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    parent: str
    dependencies: set[str]
    custom: bool


class PlatformMocks(pulumi.runtime.Mocks):
    """Fills in what Google would compute: emails, ids, URLs, secret version numbers."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        typ, name = args.typ, args.name
        state = dict(inputs)
        resource_id = f"{name}-id"
        if typ == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com"
            resource_id = f"projects/{PROJECT}/serviceAccounts/{email}"
            state.update(email=email, name=resource_id, member=f"serviceAccount:{email}")
        elif typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            agent = inputs["service"].split(".")[0]
            email = f"service-{PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"
            state.update(email=email, member=f"serviceAccount:{email}")
        elif typ == "gcp:cloudfunctionsv2/function:Function":
            fn = inputs["name"]
            resource_id = f"projects/{PROJECT}/locations/{inputs['location']}/functions/{fn}"
            state["url"] = f"https://{inputs['location']}-{PROJECT}.cloudfunctions.net/{fn}"
            state["serviceConfig"] = {
                **inputs.get("serviceConfig", {}),
                "uri": f"https://{fn}-xyz-du.a.run.app",
                "service": f"projects/{PROJECT}/locations/{inputs['location']}/services/{fn}",
            }
        elif typ == "gcp:pubsub/topic:Topic":
            resource_id = f"projects/{PROJECT}/topics/{inputs['name']}"
        elif typ == "gcp:pubsub/subscription:Subscription":
            resource_id = f"projects/{PROJECT}/subscriptions/{inputs['name']}"
        elif typ == "gcp:secretmanager/secret:Secret":
            resource_id = f"projects/{PROJECT}/secrets/{inputs['secretId']}"
        elif typ == "gcp:secretmanager/secretVersion:SecretVersion":
            resource_id = f"{inputs['secret']}/versions/1"
            state.update(version="1", name=resource_id)
        elif typ == "gcp:artifactregistry/repository:Repository":
            resource_id = f"projects/{PROJECT}/locations/{inputs['location']}/repositories/{inputs['repositoryId']}"
            state["name"] = inputs["repositoryId"]
        elif typ == "gcp:bigquery/dataset:Dataset":
            resource_id = f"projects/{PROJECT}/datasets/{inputs['datasetId']}"
        elif typ == "gcp:monitoring/notificationChannel:NotificationChannel":
            resource_id = f"projects/{PROJECT}/notificationChannels/{sum(map(ord, name))}"
            state["name"] = resource_id
        elif typ == "gcp:cloudscheduler/job:Job":
            resource_id = f"projects/{PROJECT}/locations/{inputs['region']}/jobs/{inputs['name']}"
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        raise AssertionError(f"the program makes no invokes (they would run before the services exist): {args.token}")


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mock: pulumi.runtime.Mocks) -> None:
        super().__init__(mock)
        self.registered: dict[str, Registered] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            registration = self.resources.get(response.urn)
            self.registered[response.urn] = Registered(
                urn=response.urn,
                type=request.type,
                name=request.name,
                inputs=inputs,
                state=dict(registration.state) if registration else {},
                parent=request.parent,
                dependencies=set(request.dependencies),
                custom=bool(request.custom),
            )
        return response


@dataclass
class Deployment:
    resources: list[Registered]
    outputs: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, TableSpec] = field(default_factory=dict)  # the schema as the program read it

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, **inputs: Any) -> Registered:
        found = [r for r in self.of_type(typ) if all(r.inputs.get(k) == v for k, v in inputs.items())]
        assert len(found) == 1, f"expected one {typ} with {inputs}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)


def settings(**overrides: Any) -> StackSettings:
    return StackSettings.model_validate({"project": PROJECT, "region": REGION, **overrides})


def deploy(
    repo: Path = REPO,
    stack_settings: StackSettings | None = None,
    write_keys: str = WRITE_KEYS,
    secret_values: dict[str, str] | None = None,
) -> Deployment:
    """Runs the program once under fresh mocks; returns every registration and the exported outputs."""
    monitor = RecordingMonitor(PlatformMocks())
    pulumi.runtime.set_mocks(monitor.mocks, project="cdp", stack="test", preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        exported = build(repo, stack_settings or settings(), write_keys=write_keys, secret_values=secret_values or {})
        return pulumi.Output.all(**exported).apply(outputs.update)

    tables = dict(all_tables())
    run()
    return Deployment(list(monitor.registered.values()), outputs, tables)


def copy_repo(destination: Path, steps: tuple[str, ...] = BASELINE_STEPS) -> Path:
    """What the program reads: the given steps under functions/, shared/ and requirements.txt, no bytecode."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for step in steps:
        shutil.copytree(REPO / "functions" / step, destination / "functions" / step, ignore=ignore)
    shutil.copytree(REPO / "shared", destination / "shared", ignore=ignore)
    shutil.copy2(REPO / "requirements.txt", destination / "requirements.txt")
    return destination
