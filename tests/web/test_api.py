"""The REST API over real HTTP: tokens, scopes, limits, error shape, the CI flow (both backends)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from bot.config.settings import Settings
from bot.domain.tokens import Tokens
from bot.services import Services, open_services
from bot.web.api.app import DEFAULT_BURST, TokenBuckets, create_api_app
from bot.web.server import ServerThread
from storage.queries import registry as queries

POLICY = """
[roles]
deployers = ["ci"]
[environments.staging]
approvals = 0
[environments.production]
approvals = 2
approvers = ["alice", "bob"]
approval_channel = "C0APPROVALS"
"""


@dataclass
class Api:
    url: str
    services: Services
    tokens: dict[str, str]

    def call(self, method: str, path: str, token: str | None = "ci", **kw: object) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return requests.request(method, self.url + "/api/v1" + path, headers=headers, timeout=10, **kw)  # type: ignore[arg-type]

    def counts(self) -> dict[str, int]:
        with self.services.registry.reading() as session:
            return queries.row_counts(session)


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    policy = tmp_path / "modelbot.toml"
    policy.write_text(POLICY)
    services = open_services(Settings(database_url=database_url, config_path=policy))
    tokens = Tokens(services.registry)
    now = services.clock()
    secrets = {
        "ci": tokens.create("ci", "read,versions:write,promotions:request,metrics:write", actor="t", now=now)[1],
        "reader": tokens.create("reader", "read", actor="t", now=now)[1],
        "alice": tokens.create("alice", "read,promotions:approve", actor="t", now=now)[1],
        "bob": tokens.create("bob", "read,promotions:approve", actor="t", now=now)[1],
        "pusher": tokens.create("pusher", "metrics:write", actor="t", now=now)[1],
    }
    from fastapi import FastAPI

    web = FastAPI()
    web.mount("/api/v1", create_api_app(services))
    server = ServerThread(web).start()
    try:
        yield Api(server.url, services, secrets)
    finally:
        server.stop()
        services.close()


def test_ci_registers_requests_and_two_approvals_move_production(api: Api) -> None:
    created = api.call("POST", "/models/churn/versions", json={"artifact_uri": "s3://b/churn/1",
                                                               "metrics": {"auc": 0.91}})
    assert created.status_code == 201 and created.json()["version"] == 1
    assert created.json()["created_by"] == "ci"  # audited with the token's name
    staged = api.call("POST", "/models/churn/environments/staging/promotions", json={"version": "1"})
    assert staged.status_code == 201 and staged.json()["outcome"] == "moved"
    asked = api.call("POST", "/models/churn/environments/production/promotions",
                     json={"version": "latest", "reason": "better auc"})
    assert asked.json()["outcome"] == "requested"
    request_id = asked.json()["request"]["id"]
    first = api.call("POST", f"/requests/{request_id}/approve", token="alice", json={})
    assert first.json()["result"] == "counted"
    second = api.call("POST", f"/requests/{request_id}/approve", token="bob", json={})
    assert second.json()["result"] == "approved"
    state = api.call("GET", "/models/churn/environments/production", token="reader").json()
    assert state["stable"] == 1 and state["stable_artifact_uri"] == "s3://b/churn/1"


def test_auth_scopes_and_limits(api: Api) -> None:
    body = {"artifact_uri": "s3://x"}
    before = api.counts()
    no_token = api.call("POST", "/models/churn/versions", token=None, json=body)
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "unauthorized"
    wrong = requests.post(api.url + "/api/v1/models/churn/versions", json=body, timeout=10,
                          headers={"Authorization": "Bearer mbt_not-a-real-token"})
    assert wrong.status_code == 401
    missing_scope = api.call("POST", "/models/churn/versions", token="reader", json=body)
    assert missing_scope.status_code == 403 and "versions:write" in missing_scope.json()["error"]["message"]
    Tokens(api.services.registry).revoke("ci", actor="t", now=api.services.clock())
    assert api.call("POST", "/models/churn/versions", json=body).status_code == 401
    huge = requests.post(api.url + "/api/v1/metrics", data=b"{" + b" " * (10 * 1024 * 1024) + b"}", timeout=30,
                         headers={"Authorization": f"Bearer {api.tokens['reader']}",
                                  "Content-Type": "application/json"})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    assert api.counts() == {**before, "audit_events": before["audit_events"] + 1}  # the revocation's row


def test_every_write_route_refuses_requests_without_a_token(api: Api) -> None:
    spec = create_api_app(api.services).openapi()
    writes = [(method, path) for path, item in spec["paths"].items() for method in item
              if method in ("post", "put", "patch", "delete")]
    assert len(writes) >= 6
    for method, route in writes:
        path = _concrete(route)
        response = requests.request(method, api.url + "/api/v1" + path, json={}, timeout=10)
        assert response.status_code == 401, route


def _concrete(route: str) -> str:
    path = route.replace("{model}", "churn").replace("{environment}", "production")
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_get_route_needs_the_read_scope(api: Api) -> None:
    """Issue 10, defect 11: a token with only metrics:write read every GET route."""
    api.call("POST", "/models/churn/versions", json={"artifact_uri": "s3://x"})
    spec = create_api_app(api.services).openapi()
    reads = [route for route, item in spec["paths"].items() if "get" in item]
    assert len(reads) >= 8
    for route in reads:
        refused = api.call("GET", _concrete(route), token="pusher")
        assert refused.status_code == 403, route
        assert refused.json()["error"]["message"] == ("Token pusher lacks the scope read; create one with "
                                                       "`modelbot token create --name NAME --scopes read`."), route
        assert api.call("GET", _concrete(route), token="reader").status_code in (200, 404), route
        assert spec["paths"][route]["get"]["security"] == [{"token": ["read"]}], route
    assert api.call("POST", "/metrics", token="pusher", json={"samples": []}).status_code == 201


def test_a_rotated_token_keeps_its_name_and_the_old_secret_stops_at_once(api: Api) -> None:
    """Issue 10, defect 10: the name is the approver identity, so it must outlive one secret."""
    tokens = Tokens(api.services.registry)
    now = api.services.clock()
    rotated = tokens.rotate("alice", actor="ops", now=now)
    assert rotated.issued.token.name == "alice" and rotated.issued.token.scopes == ("read", "promotions:approve")
    assert rotated.revoked.revoked_at == now
    assert api.call("GET", "/requests", token="alice").status_code == 401
    fresh = {"Authorization": f"Bearer {rotated.issued.secret}"}
    assert requests.get(api.url + "/api/v1/requests", headers=fresh, timeout=10).status_code == 200
    tokens.revoke("bob", actor="ops", now=now)
    again = tokens.create("bob", "read,promotions:approve", actor="ops", now=now)
    assert again.token.name == "bob" and again.token.active
    assert [(t.name, t.active) for t in tokens.list() if t.name in ("alice", "bob")] == [
        ("alice", True), ("alice", False), ("bob", True), ("bob", False)]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/models/nope", None, 404),
        ("POST", "/models/a%20b/versions", {"artifact_uri": "s3://x"}, 400),
        ("POST", "/models/churn/versions", {"artifact_uri": "s3://x", "metrics": {"auc": "abc"}}, 422),
        ("POST", "/models/churn/versions", {"artifact_uri": "s3://x", "unknown": 1}, 422),
        ("POST", "/models/churn/environments/moon/promotions", {"version": "1"}, 400),
        ("GET", "/requests/999", None, 404),
        ("POST", "/metrics", {"samples": [{"model": "churn", "environment": "production", "metric": "auc",
                                           "value": 0.9, "at": "not a time"}]}, 422),
    ],
)
def test_errors_have_one_shape_and_change_nothing(api: Api, method: str, path: str, body: object, status: int) -> None:
    api.call("POST", "/models/churn/versions", json={"artifact_uri": "s3://x"})
    before = api.counts()
    response = api.call(method, path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"code", "message"} and error["message"]
    assert api.counts() == before


def test_metrics_push_is_all_or_nothing(api: Api) -> None:
    api.call("POST", "/models/churn/versions", json={"artifact_uri": "s3://x"})
    good = {"model": "churn", "environment": "production", "metric": "auc", "value": 0.9,
            "at": "2026-11-01T00:00:00Z"}
    bad = {**good, "environment": "moon"}
    assert api.call("POST", "/metrics", json={"samples": [good, bad]}).status_code == 400
    response = api.call("POST", "/metrics", json={"samples": [good, good]})
    assert response.status_code == 201 and response.json() == {"recorded": 2}


def test_rate_limit_answers_429_with_retry_after(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI

    # MODELBOT_API_RATE_PER_SECOND=0.01: the burst, then one request per 100 s
    monkeypatch.setattr(api.services, "settings", replace(api.services.settings, api_rate_per_second=0.01))
    web = FastAPI()
    web.mount("/api/v1", create_api_app(api.services))
    with ServerThread(web) as server:
        headers = {"Authorization": f"Bearer {api.tokens['reader']}"}
        statuses = [requests.get(server.url + "/api/v1/models", headers=headers, timeout=10).status_code
                    for _ in range(DEFAULT_BURST + 1)]
        assert statuses[:DEFAULT_BURST] == [200] * DEFAULT_BURST
        assert statuses[-1] == 429
        limited = requests.get(server.url + "/api/v1/models", headers=headers, timeout=10)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(1) == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take(1) == 0.0
    assert bucket.take(2) == 0.0  # another token has its own bucket


def test_operations_without_slack(api: Api) -> None:
    """Status, alerts, rules and silences over REST; writes need alerts:write and a deployer's name."""
    api.call("POST", "/models/churn/versions", json={"artifact_uri": "s3://x"})
    assert api.call("GET", "/status", token="reader").json()["total_models"] == 1
    assert api.call("GET", "/models/churn/status?window=2h", token="reader").status_code == 200
    assert api.call("GET", "/models/churn/status?window=soon", token="reader").json()["error"]["message"].startswith(
        "'soon' is not a window")
    assert api.call("GET", "/alerts", token="reader").json() == {"firing": [], "pending": [], "silenced": []}
    assert api.call("GET", "/alert-rules?model=churn", token="reader").json() == {"rules": []}
    body = {"model": "churn", "environment": "production", "duration": "30m", "reason": "deploying v2"}
    scope = api.call("POST", "/silences", token="ci", json=body)
    assert scope.status_code == 403 and "lacks the scope alerts:write" in scope.json()["error"]["message"]
    tokens = Tokens(api.services.registry)
    now = api.services.clock()
    api.tokens["oncall"] = tokens.create("oncall", "read,alerts:write", actor="t", now=now).secret
    role = api.call("POST", "/silences", token="oncall", json=body)
    assert role.status_code == 403 and role.json()["error"]["message"].startswith("You may not silence alerts")
    tokens.revoke("ci", actor="t", now=now)  # the deployer's token, now with alerts:write
    api.tokens["ci"] = tokens.create("ci", "read,alerts:write", actor="t", now=now).secret
    made = api.call("POST", "/silences", token="ci", json=body)
    assert made.status_code == 201 and (made.json()["created_by"], made.json()["reason"]) == ("ci", "deploying v2")
    assert [s["id"] for s in api.call("GET", "/silences?model=churn", token="reader").json()["silences"]] == [
        made.json()["id"]]
    assert api.call("DELETE", f"/silences/{made.json()['id']}", token="ci").status_code == 200
    again = api.call("DELETE", f"/silences/{made.json()['id']}", token="ci")
    assert again.status_code == 409 and "has already ended" in again.json()["error"]["message"]
    spec = create_api_app(api.services).openapi()
    assert spec["paths"]["/silences"]["post"]["security"] == [{"token": ["alerts:write"]}]
    assert spec["paths"]["/alerts/{alert}/acknowledge"]["post"]["security"] == [{"token": ["alerts:write"]}]
    assert "alerts:write" in spec["info"]["description"]
