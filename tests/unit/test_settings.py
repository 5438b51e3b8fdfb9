"""Platform settings that would break a running function are refused when read, naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import PlatformSettings, size_in_bytes


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("CDP_PUBLISH_LINGER_SECONDS", "-0.01", "publish_linger_seconds"),  # would raise in the sender's sleep
        ("CDP_PUBLISH_LINGER_SECONDS", "5", "publish_linger_seconds"),  # would stall every waiting request
        ("CDP_PUBLISH_TIMEOUT_SECONDS", "0", "publish_timeout_seconds"),
    ],
)
def test_publish_settings_out_of_range_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=field):
        PlatformSettings()


def test_publish_settings_in_range_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_PUBLISH_LINGER_SECONDS", "0")
    monkeypatch.setenv("CDP_PUBLISH_TIMEOUT_SECONDS", "2.5")
    settings = PlatformSettings()
    assert (settings.publish_linger_seconds, settings.publish_timeout_seconds) == (0.0, 2.5)


@pytest.mark.parametrize(
    ("text", "size"), [("256MB", 256_000_000), ("1.5 GiB", 1_610_612_736), ("16MiB", 16_777_216), ("512B", 512)]
)
def test_sizes_read_as_duckdb_reads_them(text: str, size: int) -> None:
    assert size_in_bytes(text) == size


def test_a_size_without_a_unit_is_named() -> None:
    with pytest.raises(ValueError, match="'256' is not a size"):
        size_in_bytes("256")


def test_a_checkpoint_threshold_that_is_not_a_size_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_DUCKDB_CHECKPOINT_THRESHOLD", "256")
    with pytest.raises(ValidationError, match="duckdb_checkpoint_threshold"):
        PlatformSettings()
