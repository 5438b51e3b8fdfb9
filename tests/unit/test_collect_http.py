"""The collect function's HTTP edge, through functions-framework's own test client."""

from __future__ import annotations

import functions_framework
import orjson
import pytest
from flask.testing import FlaskClient

from shared.collect import http
from shared.collect.service import CollectService
from tests.unit.fakes import RecordingPublisher


@pytest.fixture
def client_and_publisher(monkeypatch: pytest.MonkeyPatch) -> tuple[FlaskClient, RecordingPublisher]:
    publisher = RecordingPublisher()
    monkeypatch.setattr(http, "default_service", lambda: CollectService(publisher, {"wk": "shop"}))
    app = functions_framework.create_app(target="collect", source="functions/collect/main.py")
    return app.test_client(), publisher


def test_the_client_address_is_the_one_the_trusted_proxy_saw(
    client_and_publisher: tuple[FlaskClient, RecordingPublisher],
) -> None:
    client, publisher = client_and_publisher
    response = client.post(
        "/v1/page",
        data=orjson.dumps({"anonymousId": "a"}),
        auth=("wk", ""),
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"},
    )
    assert response.status_code == 200
    assert publisher.rows("raw.page")[0]["ip"] == "203.0.113.7"


def test_oversize_is_refused_before_reading(client_and_publisher: tuple[FlaskClient, RecordingPublisher]) -> None:
    client, publisher = client_and_publisher
    response = client.post("/v1/batch", data=b"x" * (600 * 1024), auth=("wk", ""))
    assert response.status_code == 413 and response.json["error"] == "payload_too_large"
    assert [r["reason_code"] for r in publisher.rows("ops.rejected")] == ["payload_too_large"]


def test_wrong_method_and_path(client_and_publisher: tuple[FlaskClient, RecordingPublisher]) -> None:
    client, _ = client_and_publisher
    assert client.get("/v1/track").status_code == 405
    assert client.post("/v1/nothing").status_code == 404
    assert client.get("/healthz").json == {"ok": True}
