"""Settings read from the environment, the same names in the cloud and on the local stack."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def size_in_bytes(text: str) -> int:
    """'256MB', '1.5 GiB', ... as DuckDB reads them (MB = 10^6 bytes, MiB = 2^20)."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)", text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a size such as 256MB")
    return int(float(found.group(1)) * _SIZE_UNITS[found.group(2)])


class PlatformSettings(BaseSettings):
    """Everything a function needs to find its neighbours. Prefix: CDP_."""

    model_config = SettingsConfigDict(env_prefix="CDP_", extra="ignore")

    project: str = Field("cdp-local", description="GCP project id (the emulator accepts any)")
    warehouse: Literal["duckdb", "bigquery"] = "duckdb"
    state_dir: Path = Field(Path(".cdp"), description="local state: DuckDB file, logs, simulator truth")
    duckdb_path: Path | None = Field(None, description="DuckDB file; default <state_dir>/warehouse.duckdb")
    duckdb_release_after_idle: float | None = Field(
        0.3, description="seconds without use after which the loader lets go of the DuckDB file (one writer at a time)"
    )
    duckdb_checkpoint_threshold: str = Field(
        "256MB",
        description="WAL size at which the loader checkpoints DuckDB (its default 16MB would checkpoint every few messages)",
    )
    duckdb_load_threads: int = Field(
        1,
        ge=1,
        description="DuckDB threads in the loader: a message's insert is small, and scheduling it on more threads "
        "costs more CPU than it saves, while the loader's request threads and Pub/Sub already use the cores",
    )
    duckdb_gather_seconds: float = Field(
        0.05,
        ge=0,
        description="how long the loader's commit waits for concurrent messages still being parsed, to commit them "
        "together (each insert statement and commit has a fixed cost of about 1-2 ms)",
    )
    bigquery_location: str = "asia-northeast3"
    maximum_bytes_billed: int = Field(50 * 1024**3, description="cap on every BigQuery query job")
    collected_topic: str = "collected"
    trusted_proxy_hops: int = Field(
        1,
        description="proxies that append to X-Forwarded-For: 1 on Cloud Run / Functions, 2 behind an external ALB, 0 to use the socket peer",
    )
    publish_linger_seconds: float = Field(
        0.005,
        ge=0,
        le=1,  # the sender sleeps it holding its requests: a negative one would raise there, a long one stall them
        description="while requests come concurrently, how long collect waits for more to join a Pub/Sub message",
    )
    publish_timeout_seconds: float = Field(
        10.0, gt=0, description="how long collect waits for Pub/Sub before answering 503"
    )
    write_keys: str = Field(
        "demo-shop=wk_demo_shop",
        description="site_id=write_key pairs, comma separated; the write key is the tracker's site key",
    )

    @field_validator("duckdb_checkpoint_threshold")
    @classmethod
    def _a_size(cls, value: str) -> str:
        size_in_bytes(value)  # the loader reads it so: refused here, by name, rather than at its first write
        return value

    @field_validator("write_keys")
    @classmethod
    def _write_keys_parse(cls, value: str) -> str:
        for pair in filter(None, (p.strip() for p in value.split(","))):
            site, sep, key = pair.partition("=")
            if not sep or not site.strip() or not key.strip():
                raise ValueError(f"CDP_WRITE_KEYS entry {pair!r} is not site_id=write_key")
        return value

    @property
    def sites_by_write_key(self) -> dict[str, str]:
        pairs = (p.strip().partition("=") for p in self.write_keys.split(",") if p.strip())
        return {key.strip(): site.strip() for site, _, key in pairs}

    @property
    def duckdb_file(self) -> Path:
        return self.duckdb_path or self.state_dir / "warehouse.duckdb"


@lru_cache(maxsize=1)
def platform_settings() -> PlatformSettings:
    return PlatformSettings()
