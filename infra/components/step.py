"""One step under `functions/`: its identity, the roles it declared, its source object, the 2nd gen function,
who may invoke it, and its trigger (a push delivery or a schedule)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from infra import source
from infra.components.base import Component, account_id
from infra.components.build import BuildIdentity
from infra.components.iam import Grants, Targets, invoker
from infra.components.messaging import PushDelivery
from infra.components.scheduling import ScheduledCall
from infra.components.secrets import Secrets
from infra.declaration import FunctionDeclaration, HttpTrigger, PubSubTrigger, RoleGrant, ScheduleTrigger
from infra.settings import StackSettings

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"


@dataclass
class StepContext:
    """What every step is built against."""

    repo: Path
    settings: StackSettings
    targets: Targets
    secrets: Secrets
    build: BuildIdentity
    sources: gcp.storage.Bucket
    pubsub_agent: gcp.projects.ServiceIdentity
    deps: Sequence[pulumi.Resource]


def platform_env(settings: StackSettings, step: str, declaration: FunctionDeclaration) -> dict[str, str]:
    """The variables the program sets (names as in shared/settings.py), then the declared ones."""
    env = {
        "CDP_PROJECT": settings.project,
        "CDP_WAREHOUSE": "bigquery",
        "CDP_BIGQUERY_LOCATION": settings.location,
        "CDP_MAXIMUM_BYTES_BILLED": str(settings.maximum_bytes_billed),
        "CDP_STEP": step,
        "WORKERS": str(declaration.sizing.workers),
    }
    # Where each topic and bucket the step may touch is: CDP_<NAME>_TOPIC, CDP_<KEY>_BUCKET.
    for topic in sorted(declaration.topics):
        env[f"CDP_{topic.upper().replace('-', '_')}_TOPIC"] = topic
    for grant in declaration.roles:
        if grant.kind == "bucket":
            env[f"CDP_{grant.target.upper()}_BUCKET"] = settings.bucket_name(grant.target)
    return {**env, **declaration.env}


def ingress(declaration: FunctionDeclaration) -> str:
    if declaration.ingress:
        return declaration.ingress
    trigger = declaration.trigger
    if isinstance(trigger, HttpTrigger) and trigger.access in ("public", "marketers"):
        return "ALLOW_ALL"
    return "ALLOW_INTERNAL_ONLY"  # Pub/Sub push and Cloud Scheduler count as internal traffic


class Step(Component):
    def __init__(
        self,
        step: str,
        declaration: FunctionDeclaration,
        ctx: StepContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Step", step, ctx.deps, opts)
        self.step = step
        self.declaration = declaration
        settings = ctx.settings
        trigger = declaration.trigger

        # Its own identity, with only what it declared (and read access to the secrets it declared).
        self.account = gcp.serviceaccount.Account(
            f"{step}-identity",
            account_id=account_id(settings.name_prefix, "fn", step),
            display_name=f"Function {step}",
            description=declaration.description[:256],
            opts=self.child(),
        )
        self.member = self.account.email.apply(lambda email: f"serviceAccount:{email}")
        self.grants = Grants(ctx.targets, self.member, step)
        for grant in declaration.roles:
            if grant.kind == "function":
                continue  # granted once every step's function exists (grant_invocations)
            ctx.targets.check(grant, step)
            self.grants.grant(grant, self.child())
        secret_env = []
        granted_secrets: list[RoleGrant] = []
        for env_name, secret_id in sorted(declaration.secrets.items()):
            version = ctx.secrets.pinned(secret_id, step)
            accessor = RoleGrant(role=SECRET_ACCESSOR, on=f"secret:{secret_id}")
            if accessor not in declaration.roles and accessor not in granted_secrets:
                self.grants.grant(accessor, self.child())
                granted_secrets.append(accessor)
            secret_env.append(
                gcp.cloudfunctionsv2.FunctionServiceConfigSecretEnvironmentVariableArgs(
                    key=env_name, project_id=settings.project, secret=secret_id, version=version.version
                )
            )

        # The source, named by its content hash: a new object (and a new build) exactly when the code changes.
        files = source.source_files(ctx.repo, step)
        self.object_name = source.object_name(step, files)
        self.source_object = gcp.storage.BucketObject(
            f"{step}-source",
            bucket=ctx.sources.name,
            name=self.object_name,
            source=pulumi.AssetArchive({name: pulumi.FileAsset(str(path)) for name, path in files.items()}),
            opts=self.child(),
        )

        sizing = declaration.sizing
        self.function = gcp.cloudfunctionsv2.Function(
            step,
            name=settings.resource_name(step),
            location=settings.region,
            description=declaration.description,
            build_config=gcp.cloudfunctionsv2.FunctionBuildConfigArgs(
                runtime=settings.python_runtime,
                entry_point=declaration.entry_point,
                source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceArgs(
                    storage_source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceStorageSourceArgs(
                        bucket=ctx.sources.name, object=self.source_object.name
                    )
                ),
                service_account=ctx.build.account.id,
                docker_repository=ctx.build.repository.id,
            ),
            service_config=gcp.cloudfunctionsv2.FunctionServiceConfigArgs(
                available_memory=sizing.memory,
                available_cpu=sizing.cpu,
                max_instance_request_concurrency=sizing.concurrency,
                timeout_seconds=sizing.timeout_seconds,
                min_instance_count=sizing.min_instances,
                max_instance_count=sizing.max_instances,
                service_account_email=self.account.email,
                environment_variables=platform_env(settings, step, declaration),
                secret_environment_variables=secret_env,
                ingress_settings=ingress(declaration),
                all_traffic_on_latest_revision=True,
            ),
            # Roles first: the deployment checks secret access, and the first request must not fail.
            opts=self.child(*self.grants.resources, *ctx.build.grants),
        )
        self.url: pulumi.Output[str] = self.function.url
        # The Cloud Run URL: push endpoint and OIDC audience for the private steps.
        self.endpoint: pulumi.Output[str] = self.function.service_config.apply(
            lambda config: config.uri if config else None
        )
        ctx.targets.functions[step] = self.function

        self.invokers: list[pulumi.CustomResource] = []
        self.push: PushDelivery | None = None
        self.schedule: ScheduledCall | None = None
        if isinstance(trigger, HttpTrigger):
            members: list[str] = []
            if trigger.access == "public":
                members = ["allUsers"]
            elif trigger.access == "marketers":
                members = list(settings.marketer_invokers)
            for index, member in enumerate(members):
                self.invokers.append(
                    invoker(f"{step}-invoker-{index}", self.function, settings.region, member, self.child())
                )
        elif isinstance(trigger, PubSubTrigger):
            self._push(trigger, ctx)
        elif isinstance(trigger, ScheduleTrigger):
            self.schedule = ScheduledCall(
                f"{step}-schedule",
                step=step,
                function=self.function,
                endpoint=self.endpoint,
                trigger=trigger,
                settings=settings,
                deps=ctx.deps,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"url": self.url, "source_object": self.object_name})

    def _push(self, trigger: PubSubTrigger, ctx: StepContext) -> None:
        settings = ctx.settings
        if trigger.topic not in ctx.targets.topics:
            raise pulumi.RunError(f"step {self.step}: no topic {trigger.topic}")
        identity = gcp.serviceaccount.Account(
            f"{self.step}-push-identity",
            account_id=account_id(settings.name_prefix, "push", self.step),
            display_name=f"Pub/Sub pushing {trigger.topic} to {self.step}",
            opts=self.child(),
        )
        may_invoke = invoker(
            f"{self.step}-push-invoker",
            self.function,
            settings.region,
            identity.email.apply(lambda email: f"serviceAccount:{email}"),
            self.child(),
        )
        self.invokers.append(may_invoke)
        self.push = PushDelivery(
            self.step,
            topic=ctx.targets.topics[trigger.topic],
            endpoint=self.endpoint,
            trigger=trigger,
            identity=identity,
            agent=ctx.pubsub_agent,
            deps=[*ctx.deps, may_invoke],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def grant_invocations(self, targets: Targets) -> None:
        """The `function:<step>` grants, once every step's function exists."""
        for grant in self.declaration.roles:
            if grant.kind == "function":
                targets.check(grant, self.step)
                self.grants.grant(grant, self.child())
