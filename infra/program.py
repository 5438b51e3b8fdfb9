"""The whole platform: services first, then storage, secrets, the warehouse, messaging, the build identity,
one Step per declared function and the alerts on them. `build()` returns the outputs it exports."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pulumi
import pulumi_gcp as gcp

from infra.components import (
    Alerts,
    Buckets,
    BuildIdentity,
    Messaging,
    ProjectServices,
    Secrets,
    Step,
    StepContext,
    Targets,
    Warehouse,
)
from infra.declaration import FunctionDeclaration, HttpTrigger, discover
from infra.settings import WRITE_KEYS_SECRET, StackSettings, read_settings
from shared.schema import all_tables

REPO = Path(__file__).resolve().parent.parent


def tracker_snippet(collect_url: str, write_key: str) -> str:
    """The tag a site pastes into its pages: the tracker script served by collect, keyed by the site's write key
    (shared/tracker/tracker.js reads `data-site-key`; its endpoint defaults to where the script came from)."""
    url = html.escape(collect_url.rstrip("/"), quote=True)
    key = html.escape(write_key, quote=True)
    return f'<script async src="{url}/tracker.js" data-site-key="{key}"></script>'


def parse_write_keys(text: str) -> dict[str, str]:
    """site_id -> write key, from `site=key,site=key` (the format of CDP_WRITE_KEYS)."""
    sites: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        site, sep, key = pair.partition("=")
        if not sep or not site.strip() or not key.strip():
            raise ValueError("cdp:writeKeys is site_id=write_key pairs, comma separated")
        sites[site.strip()] = key.strip()
    return sites


def apply_overrides(steps: dict[str, FunctionDeclaration], settings: StackSettings) -> dict[str, FunctionDeclaration]:
    unknown = sorted((set(settings.sizes) | set(settings.schedules)) - set(steps))
    if unknown:
        raise pulumi.RunError(f"cdp:sizes / cdp:schedules name steps that do not exist: {unknown}")
    out = {}
    for name, declaration in steps.items():
        try:
            out[name] = declaration.with_overrides(settings.sizes.get(name), settings.schedules.get(name))
        except ValueError as exc:
            raise pulumi.RunError(f"step {name} with this stack's overrides: {exc}") from exc
    return out


def build(
    repo: Path = REPO,
    settings: StackSettings | None = None,
    write_keys: pulumi.Input[str] | None = None,
    secret_values: dict[str, str] | None = None,
) -> dict[str, pulumi.Output]:
    settings = settings or read_settings()
    config = pulumi.Config("cdp")
    write_keys = write_keys if write_keys is not None else config.require_secret("writeKeys")
    if secret_values is None:
        # Set with `pulumi config set --secret --path 'secretValues.<id>' <value>`; the ids are needed now, the
        # values only travel as secrets.
        secret_values = config.get_object("secretValues") or {}
    if not isinstance(secret_values, dict):
        raise pulumi.RunError("cdp:secretValues must be an object: secret id -> value")
    steps = apply_overrides(discover(repo / "functions"), settings)

    provider = gcp.Provider(
        "gcp",
        project=settings.project,
        region=settings.region,
        default_labels={"app": "cdp", "stack": re.sub(r"[^a-z0-9_-]", "-", pulumi.get_stack().lower())[:63]},
    )
    root = pulumi.ComponentResource(
        "cdp:platform:Platform", settings.name_prefix, None, pulumi.ResourceOptions(providers=[provider])
    )
    under_root = pulumi.ResourceOptions(parent=root)

    services = ProjectServices("services", settings.project, under_root)
    deps = list(services.services.values())

    buckets = Buckets("buckets", settings, deps, under_root)
    values: dict[str, pulumi.Output[str]] = {
        WRITE_KEYS_SECRET: pulumi.Output.secret(write_keys).apply(_checked_write_keys)
    }
    for secret_id, value in sorted(secret_values.items()):
        values[secret_id] = pulumi.Output.secret(str(value))
    secrets = Secrets("secrets", settings.secret_ids, values, deps, under_root)
    warehouse = Warehouse("warehouse", settings, all_tables(), repo / "shared" / "sql" / "views", deps, under_root)
    topics = set().union(*(d.topics for d in steps.values()))
    messaging = Messaging("messaging", topics, settings.project, deps, under_root)
    build_identity = BuildIdentity("build", settings, buckets.buckets["sources"], deps, under_root)

    targets = Targets(
        project=settings.project,
        region=settings.region,
        topics=messaging.topics,
        datasets=warehouse.datasets,
        buckets=buckets.buckets,
        secrets=secrets.secrets,
    )
    ctx = StepContext(
        repo=repo,
        settings=settings,
        targets=targets,
        secrets=secrets,
        build=build_identity,
        sources=buckets.buckets["sources"],
        pubsub_agent=messaging.agent,
        deps=deps,
    )
    built = {name: Step(name, declaration, ctx, under_root) for name, declaration in steps.items()}
    for step in built.values():
        step.grant_invocations(targets)
    Alerts("alerts", built, settings, deps, under_root)

    outputs = _outputs(built, write_keys, buckets)
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def _checked_write_keys(text: str) -> str:
    parse_write_keys(text)
    return text


def _outputs(steps: dict[str, Step], write_keys: pulumi.Input[str], buckets: Buckets) -> dict[str, pulumi.Output]:
    """collectUrl, trackerSnippets (secret: they hold the write keys), marketerApiUrls (every marketer-facing
    step by name), marketerApiUrl (the send step) once it exists, and per step its URL, schedule and dead-letter
    topic."""

    def access(step: Step) -> str | None:
        trigger = step.declaration.trigger
        return trigger.access if isinstance(trigger, HttpTrigger) else None

    public = [s for s in steps.values() if access(s) == "public"]
    marketer = [s for s in steps.values() if access(s) == "marketers"]
    outputs: dict[str, pulumi.Output] = {
        "functionUrls": pulumi.Output.all(**{name: s.url for name, s in steps.items()}),
        "buckets": pulumi.Output.all(**{key: b.name for key, b in buckets.buckets.items()}),
        "schedules": pulumi.Output.from_input(
            {n: s.schedule.job.name for n, s in steps.items() if s.schedule is not None}
        ),
        "deadLetterTopics": pulumi.Output.from_input(
            {n: s.push.dead_letter_topic.name for n, s in steps.items() if s.push is not None}
        ),
    }
    collect = steps.get("collect") or (public[0] if len(public) == 1 else None)
    if collect is not None:
        outputs["collectUrl"] = collect.url
        outputs["trackerSnippets"] = pulumi.Output.secret(
            pulumi.Output.all(collect.url, write_keys).apply(
                lambda args: {site: tracker_snippet(args[0], key) for site, key in parse_write_keys(args[1]).items()}
            )
        )
    if marketer:
        outputs["marketerApiUrls"] = pulumi.Output.all(**{s.step: s.url for s in marketer})
    if "send" in steps and access(steps["send"]) == "marketers":  # the marketers' API proper (stage 5)
        outputs["marketerApiUrl"] = steps["send"].url
    return outputs
