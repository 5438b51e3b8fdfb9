"""Step declarations: `functions/<step>/function.json`, data beside each function's code.

A step declares how it is triggered, the roles it needs (and on what), the topics it publishes to, the secrets
and variables it reads and its sizing. The Pulumi program provisions every declared step, so a new step is
deployed by adding `functions/<step>/main.py` and `functions/<step>/function.json`.

No Pulumi import here: the local stack (and its scheduler loop) can read the same declarations.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DECLARATION_FILE = "function.json"
STEP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$")
RESOURCE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
BUCKETS = ("sources", "config", "models")
# Roles no function ever gets: the primitive roles, and administration of the project's identities.
FORBIDDEN_ROLES = frozenset(
    {
        "roles/owner",
        "roles/editor",
        "roles/viewer",
        "roles/iam.securityAdmin",
        "roles/iam.serviceAccountAdmin",
        "roles/iam.serviceAccountKeyAdmin",
        "roles/iam.serviceAccountTokenCreator",
        "roles/iam.serviceAccountUser",
        "roles/resourcemanager.projectIamAdmin",
    }
)
# Variables the program sets itself; a declaration cannot override them.
PLATFORM_ENV = frozenset(
    {"CDP_PROJECT", "CDP_WAREHOUSE", "CDP_BIGQUERY_LOCATION", "CDP_MAXIMUM_BYTES_BILLED", "CDP_STEP"}
)
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
MEMORY = re.compile(r"^\d+(Mi|Gi|M|G)$")
MAX_ABSENCE_MINUTES = 1410  # Cloud Monitoring's longest metric-absence window: 23.5 h
GAP_SAMPLE_TICKS = 2000
EVENT_FUNCTION_TIMEOUT_LIMIT = 540  # pitfall 5: event-driven work stops at 540 s; fan out longer work
HTTP_FUNCTION_TIMEOUT_LIMIT = 3600


class DeclarationError(ValueError):
    """A step folder or its declaration is not deployable; the message says which and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sizing(_Strict):
    memory: str = "256Mi"
    cpu: str = "1"
    concurrency: int = Field(1, ge=1, le=1000, description="requests one instance handles at once")
    timeout_seconds: int = Field(60, ge=1, le=HTTP_FUNCTION_TIMEOUT_LIMIT)
    min_instances: int = Field(0, ge=0, le=100)
    max_instances: int = Field(10, ge=1, le=1000)

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not MEMORY.match(value):
            raise ValueError(f"memory {value!r} is not like 256Mi or 1Gi")
        return value

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str) -> str:
        try:
            cpus = float(value)
        except ValueError:
            raise ValueError(f"cpu {value!r} is not a number") from None
        if not 0.08 <= cpus <= 8:
            raise ValueError(f"cpu {value!r} is outside 0.083..8")
        return value

    @property
    def workers(self) -> int:
        """functions-framework's gunicorn worker processes (its WORKERS variable, default 1): one a whole vCPU, as
        Cloud Run's guidance has it, since one Python process runs on one core at a time. Never more than the
        requests an instance takes at once: a step taking one request at a time would leave the rest idle."""
        return max(1, min(int(float(self.cpu)), self.concurrency))

    @model_validator(mode="after")
    def _coherent(self) -> Sizing:
        if self.concurrency > 1 and float(self.cpu) < 1:
            raise ValueError("concurrency above 1 needs at least 1 vCPU (pitfall 6)")
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances is above max_instances")
        return self


class HttpTrigger(_Strict):
    """An HTTP function. `access`: public (allUsers may invoke), marketers (the principals in the stack setting
    `marketerInvokers`: the marketer API), internal (only the identities the program grants)."""

    type: Literal["http"]
    access: Literal["public", "marketers", "internal"] = "internal"


class PubSubTrigger(_Strict):
    """Messages of a topic, pushed by the program's own subscription (OIDC, dead-letter topic, retry policy)
    to the function's HTTP endpoint. The function may be a `cloud_event` function: functions-framework turns
    the raw push body into a CloudEvent whose id is the Pub/Sub message id."""

    type: Literal["pubsub"]
    topic: str
    max_delivery_attempts: int = Field(10, ge=5, le=100)
    ack_deadline_seconds: int = Field(60, ge=10, le=600)
    min_backoff_seconds: int = Field(10, ge=0, le=600)
    max_backoff_seconds: int = Field(600, ge=0, le=600)
    retention_days: int = Field(7, ge=1, le=7, description="how long unacknowledged messages are kept")

    @model_validator(mode="after")
    def _backoff(self) -> PubSubTrigger:
        if self.min_backoff_seconds > self.max_backoff_seconds:
            raise ValueError("min_backoff_seconds is above max_backoff_seconds")
        return self

    # The names the Pulumi program and the local stack both give a step's subscriptions and its dead letters.
    def subscription(self, step: str) -> str:
        return f"{self.topic}-{step}"

    def dead_letter_topic(self, step: str) -> str:
        return f"{self.subscription(step)}-dead-letter"

    def dead_letter_hold(self, step: str) -> str:
        """The pull subscription that keeps the dead letters (a topic without one drops them)."""
        return f"{self.dead_letter_topic(step)}-hold"


class ScheduleTrigger(_Strict):
    """Cloud Scheduler calls the (private) function over HTTP with an OIDC token of the step's own scheduler
    identity. `cron` and `time_zone` can be overridden per stack (setting `schedules`)."""

    type: Literal["schedule"]
    cron: str
    time_zone: str | None = Field(None, description="IANA name; default the stack setting `timeZone`")
    body: dict[str, object] = Field(default_factory=dict, description="JSON body of each call")
    retry_count: int = Field(3, ge=0, le=5)
    min_backoff_seconds: int = Field(30, ge=1, le=3600)
    max_backoff_seconds: int = Field(600, ge=1, le=3600)
    attempt_deadline_seconds: int = Field(1800, ge=15, le=1800)
    alert_after_minutes: int | None = Field(
        None,
        ge=5,
        le=MAX_ABSENCE_MINUTES,
        description="ops are alerted when no run has succeeded for this long; default: twice the schedule's longest "
        "gap plus the attempt deadline, capped at Cloud Monitoring's 23.5 h",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"cron {value!r} is not five fields (minute hour day month weekday)")
        if not croniter.is_valid(value):
            raise ValueError(f"cron {value!r} is not a valid schedule")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"time_zone {value!r} is not an IANA time zone name") from None
        return value

    @model_validator(mode="after")
    def _alert_window(self) -> ScheduleTrigger:
        if self.alert_after_minutes is not None and self.alert_after_minutes <= self.longest_gap_minutes:
            raise ValueError(
                f"alert_after_minutes {self.alert_after_minutes} is not longer than the schedule's longest gap "
                f"({self.longest_gap_minutes} min): it would alert between two runs"
            )
        return self

    @cached_property
    def longest_gap_minutes(self) -> int:
        """The longest time between two ticks of `cron`, over a month of ticks from a fixed date (deterministic;
        a daylight-saving change may move one gap by an hour). About 0.1 s for an hourly cron: worked out once,
        and only when an alert window is asked for or given, not whenever a declaration is read."""
        start = datetime(2026, 1, 1, tzinfo=ZoneInfo(self.time_zone or "UTC"))
        ticks = croniter(self.cron, start)
        previous, longest = start, 0.0
        for _ in range(GAP_SAMPLE_TICKS):
            tick = ticks.get_next(datetime)
            longest = max(longest, (tick - previous).total_seconds() / 60)
            previous = tick
            if tick - start > timedelta(days=35):
                break
        return math.ceil(longest)

    @property
    def alert_window_minutes(self) -> int | None:
        """How long without a successful run before ops are alerted; None when the schedule is too sparse for
        Cloud Monitoring's longest absence window (23.5 h): its failures still alert as errors."""
        if self.alert_after_minutes is not None:
            return self.alert_after_minutes
        gap = self.longest_gap_minutes
        derived = 2 * gap + math.ceil(self.attempt_deadline_seconds / 60)
        if derived <= MAX_ABSENCE_MINUTES:
            return derived
        return MAX_ABSENCE_MINUTES if gap < MAX_ABSENCE_MINUTES else None


Trigger = Annotated[HttpTrigger | PubSubTrigger | ScheduleTrigger, Field(discriminator="type")]
TARGET = re.compile(r"^(project|(topic|dataset|bucket|secret|function):[A-Za-z0-9_.-]+)$")


class RoleGrant(_Strict):
    """One role on one target: `project`, `topic:<name>`, `dataset:<name>`, `bucket:<sources|config|models>`,
    `secret:<id>` or `function:<step>` (run.invoker on another step)."""

    role: str
    on: str

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not value.startswith("roles/"):
            raise ValueError(f"role {value!r} is not a predefined role (roles/...)")
        if value in FORBIDDEN_ROLES:
            raise ValueError(f"role {value!r} is never granted to a function")
        return value

    @field_validator("on")
    @classmethod
    def _on(cls, value: str) -> str:
        if not TARGET.match(value):
            raise ValueError(f"target {value!r} is not project or kind:name (topic, dataset, bucket, secret, function)")
        if value.startswith("bucket:") and value.partition(":")[2] not in BUCKETS:
            raise ValueError(f"bucket {value!r}: the buckets are {', '.join(BUCKETS)}")
        return value

    @model_validator(mode="after")
    def _project_level(self) -> RoleGrant:
        if self.on == "project" and (self.role.endswith("admin") or self.role.endswith("Admin")):
            raise ValueError(f"{self.role} on the whole project is too broad; grant it on the resource")
        if self.on.startswith("function:") and self.role != "roles/run.invoker":
            raise ValueError("the only role on a function is roles/run.invoker")
        return self

    @property
    def kind(self) -> str:
        return self.on.partition(":")[0]

    @property
    def target(self) -> str:
        return self.on.partition(":")[2]


class FunctionDeclaration(_Strict):
    description: str = ""
    entry_point: str
    trigger: Trigger
    publishes: list[str] = Field(default_factory=list, description="topics the step publishes to")
    roles: list[RoleGrant] = Field(default_factory=list)
    secrets: dict[str, str] = Field(
        default_factory=dict, description="environment variable -> Secret Manager secret id (pinned version)"
    )
    env: dict[str, str] = Field(default_factory=dict, description="plain environment variables")
    sizing: Sizing = Field(default_factory=Sizing)
    ingress: Literal["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"] | None = Field(
        None, description="default: ALLOW_ALL for public / marketer HTTP, ALLOW_INTERNAL_ONLY otherwise"
    )

    @field_validator("publishes")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        for topic in value:
            if not RESOURCE_NAME.match(topic):
                raise ValueError(f"topic {topic!r} is not a valid name")
        return value

    @field_validator("secrets", "env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_NAME.match(key):
                raise ValueError(f"environment variable {key!r} is not UPPER_SNAKE")
            if key in PLATFORM_ENV:
                raise ValueError(f"{key} is set by the program")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> FunctionDeclaration:
        seen = [(g.role, g.on) for g in self.roles]
        if len(seen) != len(set(seen)):
            raise ValueError("a role is declared twice on the same target")
        both = set(self.secrets) & set(self.env)
        if both:
            raise ValueError(f"{sorted(both)} are both secret and plain variables")
        publisher_on = {g.target for g in self.roles if g.kind == "topic" and g.role == "roles/pubsub.publisher"}
        missing = [t for t in self.publishes if t not in publisher_on]
        if missing:
            raise ValueError(f"publishes to {missing} without roles/pubsub.publisher on topic:<name> for each")
        sizing = self.sizing
        if isinstance(self.trigger, PubSubTrigger):
            if sizing.timeout_seconds > EVENT_FUNCTION_TIMEOUT_LIMIT:
                raise ValueError(f"an event function stops at {EVENT_FUNCTION_TIMEOUT_LIMIT} s (pitfall 5): fan out")
            if self.trigger.ack_deadline_seconds < sizing.timeout_seconds:
                raise ValueError(
                    "ack_deadline_seconds is below timeout_seconds: Pub/Sub would redeliver while the function runs"
                )
        if isinstance(self.trigger, ScheduleTrigger) and self.trigger.attempt_deadline_seconds < sizing.timeout_seconds:
            raise ValueError("attempt_deadline_seconds is below timeout_seconds: Scheduler would retry a running job")
        return self

    @property
    def topics(self) -> set[str]:
        """Every topic the step touches: those it publishes to and the one it is triggered by."""
        own = {self.trigger.topic} if isinstance(self.trigger, PubSubTrigger) else set()
        return own | set(self.publishes) | {g.target for g in self.roles if g.kind == "topic"}

    def with_overrides(
        self, sizing: dict[str, object] | None, schedule: dict[str, object] | None
    ) -> FunctionDeclaration:
        """The declaration with a stack's sizing / schedule overrides applied (and validated again)."""
        data = self.model_dump()
        if sizing:
            data["sizing"] = {**data["sizing"], **sizing}
        if schedule:
            if not isinstance(self.trigger, ScheduleTrigger):
                raise ValueError("has a schedule override but is not a scheduled step")
            data["trigger"] = {**data["trigger"], **schedule}
        return FunctionDeclaration.model_validate(data)


def load_declaration(step_dir: Path) -> FunctionDeclaration:
    path = step_dir / DECLARATION_FILE
    try:
        return FunctionDeclaration.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise DeclarationError(f"{path}: {exc}") from exc


def is_step_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith((".", "_"))


def discover(functions_dir: Path) -> dict[str, FunctionDeclaration]:
    """Every step under `functions_dir`, by folder name, in name order. A folder with code and no declaration
    (or the reverse) is an error rather than a step silently left out."""
    steps: dict[str, FunctionDeclaration] = {}
    for step_dir in sorted(p for p in functions_dir.iterdir() if is_step_dir(p)):
        has_code = (step_dir / "main.py").is_file()
        has_declaration = (step_dir / DECLARATION_FILE).is_file()
        if not has_code and not has_declaration:
            continue
        if not (has_code and has_declaration):
            missing = DECLARATION_FILE if has_code else "main.py"
            raise DeclarationError(f"{step_dir}: a step needs main.py and {DECLARATION_FILE}; {missing} is missing")
        if not STEP_NAME.match(step_dir.name):
            raise DeclarationError(f"{step_dir}: a step name is 2-20 of a-z, 0-9 and '-', starting with a letter")
        steps[step_dir.name] = load_declaration(step_dir)
    if not steps:
        raise DeclarationError(f"no steps under {functions_dir}")
    return steps
