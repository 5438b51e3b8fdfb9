"""Stack settings: `pulumi config set <key> <value>` (namespace `cdp:`), each with its default.

| key | default | what |
|---|---|---|
| `gcp:project` / `cdp:project` | (required) | the project everything goes into |
| `cdp:region` (or `gcp:region`) | `asia-northeast3` | functions, scheduler, buckets, Artifact Registry |
| `cdp:bigqueryLocation` | the region | BigQuery datasets and jobs |
| `cdp:namePrefix` | `cdp` | prefix of functions, service accounts, buckets, jobs |
| `cdp:writeKeys` | (required, secret) | `site_id=write_key` pairs, comma separated |
| `cdp:secretValues` | `{}` (secret) | secret id -> value, e.g. `meta-access-token` |
| `cdp:extraSecrets` | `[]` | more Secret Manager secret ids to create (values optional) |
| `cdp:marketerInvokers` | `[]` | members allowed to call the marketer API (`user:`, `group:`, ...) |
| `cdp:schedules` | `{}` | step -> `{cron, time_zone}` overriding the declaration |
| `cdp:sizes` | `{}` | step -> sizing fields overriding the declaration |
| `cdp:timeZone` | `Asia/Seoul` | time zone of schedules that name none |
| `cdp:maximumBytesBilled` | `53687091200` (50 GiB) | cap on every BigQuery job the functions run |
| `cdp:datasets` | `[raw, refined, segments, activation, ops]` | datasets (the schema's are always added) |
| `cdp:partitionFilterDatasets` | `[raw]` | datasets whose tables require a partition filter |
| `cdp:deletionProtection` | `true` | BigQuery tables and buckets survive `pulumi destroy` |
| `cdp:pythonRuntime` | `python312` | Cloud Functions runtime |
| `cdp:configVersionsDays` | `90` | days a replaced version of a configuration object is kept |
| `cdp:modelVersionsDays` | `30` | days a replaced version of a model artifact is kept |
| `cdp:imagesKept` | `5` | function images kept per step in Artifact Registry |
| `cdp:alertEmails` | `[]` | addresses told of alerts (an email notification channel each) |
| `cdp:alertChannels` | `[]` | existing notification channels told too (`projects/<p>/notificationChannels/<id>`: Slack, PagerDuty, SMS, ...) |
"""

from __future__ import annotations

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_REGION = "asia-northeast3"
DEFAULT_DATASETS = ("raw", "refined", "segments", "activation", "ops")
DEFAULT_SECRETS = (
    "meta-access-token",
    "meta-app-secret",
    "alimtalk-api-key",
    "alimtalk-api-secret",
    "sms-api-key",
    "sms-api-secret",
    "email-api-key",
    "webpush-vapid-private-key",
)
WRITE_KEYS_SECRET = "write-keys"
PREFIX = re.compile(r"^[a-z][a-z0-9]{0,7}$")
CHANNEL = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$")


class StackSettings(BaseModel):
    """The stack's configuration, validated before any resource is declared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str
    region: str = DEFAULT_REGION
    bigquery_location: str | None = None
    name_prefix: str = "cdp"
    marketer_invokers: list[str] = Field(default_factory=list)
    schedules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sizes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    time_zone: str = "Asia/Seoul"
    maximum_bytes_billed: int = Field(50 * 1024**3, ge=10 * 1024**2)
    datasets: list[str] = Field(default_factory=lambda: list(DEFAULT_DATASETS))
    partition_filter_datasets: list[str] = Field(default_factory=lambda: ["raw"])
    deletion_protection: bool = True
    python_runtime: str = "python312"
    extra_secrets: list[str] = Field(default_factory=list)
    config_versions_days: int = Field(90, ge=1)
    model_versions_days: int = Field(30, ge=1)
    images_kept: int = Field(5, ge=1)
    alert_emails: list[str] = Field(default_factory=list)
    alert_channels: list[str] = Field(default_factory=list)

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not PREFIX.match(value):
            raise ValueError("namePrefix is 1-8 of a-z and 0-9, starting with a letter")
        return value

    @field_validator("marketer_invokers")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        for member in value:
            if member in ("allUsers", "allAuthenticatedUsers") or ":" not in member:
                raise ValueError(f"marketerInvokers: {member!r} is not a principal (user:, group:, serviceAccount:)")
        return value

    @field_validator("alert_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        checked = []
        for address in value:
            try:
                checked.append(validate_email(address, check_deliverability=False).normalized)
            except EmailNotValidError as exc:
                raise ValueError(f"alertEmails: {address!r} is not an email address ({exc})") from None
        return checked

    @field_validator("alert_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for channel in value:
            if not CHANNEL.match(channel):
                raise ValueError(f"alertChannels: {channel!r} is not projects/<project>/notificationChannels/<id>")
        return value

    @property
    def location(self) -> str:
        return self.bigquery_location or self.region

    @property
    def secret_ids(self) -> list[str]:
        return sorted({WRITE_KEYS_SECRET, *DEFAULT_SECRETS, *self.extra_secrets})

    def resource_name(self, *parts: str) -> str:
        return "-".join((self.name_prefix, *parts))

    def bucket_name(self, key: str) -> str:
        return f"{self.project}-{self.name_prefix}-{key}"


# pulumi config key (namespace cdp) -> (field, how it is read).
CONFIG_KEYS: dict[str, tuple[str, str]] = {
    "region": ("region", "str"),
    "bigqueryLocation": ("bigquery_location", "str"),
    "namePrefix": ("name_prefix", "str"),
    "marketerInvokers": ("marketer_invokers", "object"),
    "schedules": ("schedules", "object"),
    "sizes": ("sizes", "object"),
    "timeZone": ("time_zone", "str"),
    "maximumBytesBilled": ("maximum_bytes_billed", "int"),
    "datasets": ("datasets", "object"),
    "partitionFilterDatasets": ("partition_filter_datasets", "object"),
    "deletionProtection": ("deletion_protection", "bool"),
    "pythonRuntime": ("python_runtime", "str"),
    "extraSecrets": ("extra_secrets", "object"),
    "configVersionsDays": ("config_versions_days", "int"),
    "modelVersionsDays": ("model_versions_days", "int"),
    "imagesKept": ("images_kept", "int"),
    "alertEmails": ("alert_emails", "object"),
    "alertChannels": ("alert_channels", "object"),
}


def read_settings() -> StackSettings:
    """The settings from the stack's configuration (`cdp:` keys; `gcp:project` / `gcp:region` as fallbacks)."""
    import pulumi

    config = pulumi.Config("cdp")
    gcp = pulumi.Config("gcp")
    readers = {"str": config.get, "object": config.get_object, "int": config.get_int, "bool": config.get_bool}
    values: dict[str, Any] = {}
    for key, (field, kind) in CONFIG_KEYS.items():
        value = readers[kind](key)
        if value is not None:
            values[field] = value
    project = config.get("project") or gcp.get("project")
    if not project:
        raise pulumi.RunError("set the project: pulumi config set gcp:project <project-id>")
    values["project"] = project
    if "region" not in values and gcp.get("region"):
        values["region"] = gcp.get("region")
    return StackSettings.model_validate(values)
