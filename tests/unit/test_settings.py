"""Platform settings that would break a running function are refused when read, naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import PlatformSettings


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
