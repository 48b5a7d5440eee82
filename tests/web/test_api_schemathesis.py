"""Schemathesis against /api/v1/openapi.json over real HTTP (issue 7, acceptance 2).

The API runs as `modelbot serve` serves it (`bot.serve.web_app`), under uvicorn in a thread,
on SQLite and on PostgreSQL (whose drivers refuse things SQLite accepts, such as NUL
characters in text). Schemathesis reads the spec the server publishes and, for every operation, sends generated requests with a token holding
every scope. Each response must

* not be a server error (`not_a_server_error`),
* have a status code the operation documents (`status_code_conformance`),
* have the documented content type (`content_type_conformance`),
* match the documented schema for that status (`response_schema_conformance`).

The registry is seeded so that generated paths meet real models, versions and requests,
not only 404s. Generation is deterministic (`derandomize`) and bounded (`MAX_EXAMPLES` per
operation), so the suite takes well under a minute and fails the same way every time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.cli.serving import web_app
from bot.config.settings import Settings
from bot.domain.errors import ModelbotError
from bot.domain.registry import NewVersion
from bot.domain.tokens import SCOPES, Tokens
from bot.services import Services, open_services
from bot.web.api.serving import wait_seconds
from bot.web.server import ServerThread
from tests.conftest import _postgres_database, skip_without_postgres

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
POLICY = """
[roles]
deployers = ["schemathesis", "seed"]
[environments.staging]
approvals = 0
[environments.production]
approvals = 2
approvers = ["schemathesis", "alice"]
allow_self_approval = true
gates = ["auc >= current.auc - 0.01"]
approval_channel = "C0APPROVALS"
"""


class ApiUnderTest:
    def __init__(self, url: str, token: str, services: Services) -> None:
        self.url, self.token, self.services = url, token, services

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like conftest's `database_url`, but one database per backend for the whole module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('schemathesis-db') / 'modelbot.db'}"
        return
    skip_without_postgres()
    yield from _postgres_database()


@pytest.fixture(scope="module")
def api_under_test(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiUnderTest]:
    """The API as `modelbot serve` serves it, on a free port, a token with every scope, a seeded registry."""
    root: Path = tmp_path_factory.mktemp("schemathesis")
    policy = root / "modelbot.toml"
    policy.write_text(POLICY)
    # the per-token rate limit is tested in test_api.py; here it would turn most cases into 429s
    services = open_services(Settings(database_url=module_database_url, config_path=policy,
                                      api_rate_per_second=100_000))
    _seed(services)
    _, secret = Tokens(services.registry).create("schemathesis", ",".join(SCOPES), actor="test",
                                                 now=services.clock())
    # exactly what `modelbot serve` serves (here without Slack, as in Socket Mode)
    server = ServerThread(web_app(services, None)).start()
    try:
        yield ApiUnderTest(server.url, secret, services)
    finally:
        server.stop()
        services.close()


def _seed(services: Services) -> None:
    """Models whose names schemathesis is likely to produce from the spec's examples and
    constraints ("churn", one-letter names), versions in staging and production, a canary and an
    open request, so the 200/201/409 paths are reached as well as 404 and 422."""
    registry = services.registry
    for name in ("churn", "0", "a", "A0"):
        for auc in (0.90, 0.91, 0.92):
            registry.register(NewVersion(model=name, artifact_uri=f"s3://models/{name}/{auc}", actor="seed",
                                         metrics={"auc": auc}, params={"depth": "4"}, tags={"team": "growth"}))
        registry.promote(name, "1", "staging", actor="seed")
        registry.promote(name, "1", "production", actor="seed")
        registry.promote(name, "2", "staging", actor="seed")
    # requested by the token's name, so the generated cancel meets a request it may withdraw
    services.deployments.request_promotion("churn", "2", "production", requester="schemathesis",
                                           reason="better auc")
    registry.promote("churn", "3", "staging", actor="seed")
    services.deployments.set_canary("churn", "3", "production", 5, actor="seed")
    # an alert firing on churn in production (alert 1), so acknowledging and silencing reach their 200s
    from datetime import timedelta

    from bot.domain.alerting.engine import AlertEngine, AlertSettings
    from bot.domain.alerting.rules import AlertRules, parse_rule
    from bot.domain.monitoring.samples import SampleIn, Samples

    now = services.clock()
    Samples(registry).record([SampleIn("churn", "production", "error_rate", 0.09, now, 1)], source="seed")
    rule = parse_rule("churn", "production", "error_rate", op=">", threshold="0.05")
    rule.origin = "config"  # as if from modelbot.toml: no role to check
    AlertRules(registry).add(rule, actor="seed", now=now)
    AlertEngine(registry, AlertSettings(default_channel="C0ALERTS", group_wait=timedelta(0))).evaluate()


@pytest.fixture(scope="module")
def api_schema(api_under_test: ApiUnderTest) -> Any:
    """The spec exactly as the running server publishes it."""
    published = requests.get(api_under_test.url + "/api/v1/openapi.json", timeout=10)
    assert published.status_code == 200, published.text
    assert published.headers["content-type"].startswith("application/json")
    schema = schemathesis.openapi.from_url(api_under_test.url + "/api/v1/openapi.json")
    # the spec declares its bearer scheme; the requests carry the real token (not generated ones)
    schema.config.generation.update(with_security_parameters=False)
    return schema


# One test drives every operation: schemathesis's own pytest integration (`from_fixture`) sets
# `request.node._nodeid`, which pytest 9 no longer has, so the strategies are run with
# hypothesis directly. Failures of all operations are collected and reported together.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_operation_conforms_to_the_openapi_document(api_schema: Any, api_under_test: ApiUnderTest,
                                                          mode: GenerationMode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    failures: dict[str, str] = {}
    seen: dict[str, Counter[int]] = {}
    with requests.Session() as session:
        for operation in operations:
            strategy = operation.as_strategy(generation_mode=mode)
            if mode == GenerationMode.POSITIVE:  # the spec's examples (churn, production, 1) meet real rows
                strategy = st.one_of(strategy, *api_schema.get_strategies_from_examples(operation))
            statuses = seen[operation.label] = Counter()
            try:
                _exercise(strategy, api_under_test, session, statuses)
            except Exception as exc:  # one operation's failure must not hide another's
                failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
    summary = "\n".join(f"{label}: {dict(sorted(codes.items()))}" for label, codes in seen.items())
    # conformance of 401s only would prove nothing: the token must work everywhere
    assert not any(codes[401] for codes in seen.values()), summary
    if mode == GenerationMode.POSITIVE:  # and the happy paths must be reached, not only the refusals
        answered = [label for label, codes in seen.items() if any(200 <= c < 300 for c in codes)]
        assert len(answered) >= len(operations) - 2, summary


def _exercise(strategy: Any, api: ApiUnderTest, session: requests.Session, statuses: Counter[int]) -> None:
    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case: schemathesis.Case) -> None:
        _bound_watch(case)
        response = case.call_and_validate(base_url=api.url + "/api/v1", session=session, headers=api.headers,
                                          checks=CHECKS, timeout=10)
        statuses[response.status_code] += 1

    run()


def _bound_watch(case: schemathesis.Case) -> None:
    """A generated watch whose revision happens to be the current one would be held for its
    whole wait (30 s by default); the hold is tested in test_serving.py, so here a valid wait
    becomes 0.1 s. Invalid waits stay, and must be refused."""
    query = case.query
    if not isinstance(query, dict) or "revision" not in query:
        return
    try:
        wait_seconds(0, query.get("wait") if isinstance(query.get("wait"), str) else None)
    except ModelbotError:
        return
    if query.get("wait") is None or isinstance(query.get("wait"), str):
        query["wait"] = "0.1s"


def test_the_spec_covers_every_route(api_schema: Any) -> None:
    """A route added without appearing in the spec would escape the checks above."""
    paths = set(api_schema.raw_schema["paths"])
    assert {"/models", "/models/{model}/versions", "/models/{model}/environments/{environment}",
            "/requests/{request_id}/approve", "/metrics"} <= paths
