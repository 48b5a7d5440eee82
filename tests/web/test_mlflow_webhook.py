"""`POST /integrations/mlflow/webhook` refuses what MLflow did not sign, and changes nothing then.

Real HTTP into the real web app on 127.0.0.1, real HMAC signatures made here the way MLflow
makes them (mlflow/webhooks/delivery.py: `v1,` + base64 HMAC-SHA256 over
`{delivery_id}.{timestamp}.{body}`), real SQLite and PostgreSQL. Deliveries of real MLflow
events come from a real `mlflow server` in tests/domain/test_mlflow_sync.py; the ones here
need no MLflow: refused ones never reach it, and the accepted ones name models it does not follow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from bot.config.settings import Settings
from bot.services import Services, open_services
from bot.web import mlflow_webhook
from bot.web.app import create_web_app
from bot.web.server import ServerThread
from storage.models import MlflowDelivery, OutboxMessage
from storage.queries import registry as queries

SECRET_ENV = "MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET"
SECRET = "mlflow-whsec-fedcba9876543210"
POLICY = """
[mlflow]
tracking_uri = "http://127.0.0.1:9"
webhook_secret_env = "MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET"
models = ["churn"]
"""


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), delivery_id.encode() + b"." + timestamp.encode() + b"." + body,
                      hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def payload(entity: str, action: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"entity": entity, "action": action, "timestamp": "2026-12-06T05:54:28+00:00",
                       "data": data}).encode()


class Endpoint:
    def __init__(self, url: str, services: Services) -> None:
        self.url = url + mlflow_webhook.WEBHOOK_PATH
        self.services = services

    def post(self, body: bytes, *, delivery_id: str | None = None, timestamp: int | None = None, age: int = 0,
             secret: str = SECRET, signature: str | None = None, headers: dict[str, str] | None = None
             ) -> requests.Response:
        """Signed as MLflow signs, `age` seconds ago (negative: in the future), unless told otherwise."""
        delivery_id = delivery_id or str(uuid.uuid4())
        stamp = str(int(time.time()) - age if timestamp is None else timestamp)
        sent = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id, "X-MLflow-Timestamp": stamp,
                "X-MLflow-Signature": signature or mlflow_signature(secret, delivery_id, stamp, body)}
        if headers is not None:
            sent = headers
        return requests.post(self.url, data=body, headers=sent, timeout=10)

    def counts(self) -> dict[str, int]:
        with self.services.registry.reading() as session:
            rows = queries.row_counts(session)
            for table in (MlflowDelivery, OutboxMessage):
                rows[table.__tablename__] = session.execute(
                    sa.select(sa.func.count()).select_from(table)).scalar_one()
            return rows


def serve(database_url: str, tmp_path: Path, policy: str | None) -> Iterator[Endpoint]:
    path = tmp_path / "modelbot.toml"
    if policy is not None:
        path.write_text(policy)
    settings = Settings.from_env({"MODELBOT_DATABASE_URL": database_url, "MODELBOT_CONFIG": str(path)}) \
        if policy is not None else Settings.from_env({"MODELBOT_DATABASE_URL": database_url})
    services = open_services(settings)
    server = ServerThread(create_web_app(services, None, routers=[mlflow_webhook.router(services)])).start()
    try:
        yield Endpoint(server.url, services)
    finally:
        server.stop()
        services.close()


@pytest.fixture
def endpoint(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    yield from serve(database_url, tmp_path, POLICY)


FRESH = payload("model_version", "created", {"name": "churn", "version": "1", "source": "s3://b/1"})


@pytest.mark.parametrize(("change", "reason"), [
    ({"signature": "v1," + base64.b64encode(b"x" * 32).decode()}, "signature does not match"),
    ({"secret": "another-secret"}, "signature does not match"),
    ({"age": 360}, "more than 300 s away"),
    ({"age": -360}, "more than 300 s away"),  # a minute clear of the window: a slow machine cannot bring it back in
    ({"headers": {"Content-Type": "application/json"}}, "missing X-MLflow-Delivery-Id"),
    ({"signature": "v2,abc"}, "signature does not match"),
    ({"signature": "sha256=deadbeef"}, "signature does not match"),
    ({"delivery_id": "x" * 65}, "not one MLflow sends"),
])
def test_unsigned_forged_and_stale_deliveries_are_refused_and_change_nothing(
    endpoint: Endpoint, change: dict[str, Any], reason: str
) -> None:
    before = endpoint.counts()
    response = endpoint.post(FRESH, **change)
    assert response.status_code == 401 and reason in response.json()["error"]
    assert endpoint.counts() == before


def test_a_signed_delivery_with_its_body_changed_on_the_way_is_refused(endpoint: Endpoint) -> None:
    stamp = str(int(time.time()))
    signature = mlflow_signature(SECRET, "d-1", stamp, FRESH)
    tampered = FRESH.replace(b'"1"', b'"2"')
    response = endpoint.post(tampered, delivery_id="d-1", timestamp=int(stamp), signature=signature)
    assert response.status_code == 401 and endpoint.counts()["mlflow_deliveries"] == 0


def test_several_signatures_are_accepted_when_one_matches(endpoint: Endpoint) -> None:
    """Standard Webhooks lets a sender sign with an old and a new secret during a rotation."""
    stamp = str(int(time.time()))
    body = payload("registered_model", "created", {"name": "fraud", "tags": {}, "description": None})
    signatures = " ".join([mlflow_signature("old-secret", "d-2", stamp, body), mlflow_signature(SECRET, "d-2", stamp, body)])
    response = endpoint.post(body, delivery_id="d-2", timestamp=int(stamp), signature=signatures)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("name", "note"), [
    ("fraud", "not among the followed models"),
    ("<!channel> 模型", "ignored:"),
    ("x" * 100_000, "ignored:"),
])
def test_a_verified_delivery_is_recorded_once_and_a_repeat_is_a_duplicate(
    endpoint: Endpoint, name: str, note: str
) -> None:
    body = payload("model_version_alias", "created", {"name": name, "alias": "champion", "version": "1"})
    first = endpoint.post(body, delivery_id="same-id")
    assert first.status_code == 200 and first.json()["status"] == "ignored" and note in first.json()["summary"]
    after_first = endpoint.counts()
    assert after_first["mlflow_deliveries"] == 1 and after_first["registered_models"] == 0
    again = endpoint.post(body, delivery_id="same-id")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert endpoint.counts() == after_first


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 400),
    (b'{"entity": "model_version", "action": "created"}', 400),
    (b"[1, 2, 3]", 400),
    (b"\xff\xfe" * 10, 400),
    (b"x" * 300_000, 413),
])
def test_bad_bodies_get_one_sentence_and_change_nothing(endpoint: Endpoint, body: bytes, status: int) -> None:
    before = endpoint.counts()
    response = endpoint.post(body)
    assert response.status_code == status and isinstance(response.json()["error"], str)
    assert endpoint.counts() == before


def test_without_a_secret_nothing_is_accepted(database_url: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    for running in serve(database_url, tmp_path, POLICY):
        response = running.post(FRESH)
        assert response.status_code == 503 and "no webhook secret" in response.json()["error"]
        assert running.counts()["mlflow_deliveries"] == 0


def test_without_an_mlflow_section_the_route_says_so(sqlite_url: str, tmp_path: Path) -> None:
    for running in serve(sqlite_url, tmp_path, None):
        response = running.post(FRESH)
        assert response.status_code == 404 and "add an [mlflow] section" in response.json()["error"]
