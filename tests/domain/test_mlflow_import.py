"""`modelbot import mlflow` against a real `mlflow server` (issue 7, acceptance 5).

The server runs from the MLflow virtualenv (`bash tests/support/mlflow_env.sh` creates it;
MLflow does not import beside our pandas), on 127.0.0.1 with a SQLite backend in tmp, and is
filled by the MLflow client itself (`tests/support/mlflow_fill.py`), which also writes the MLflow
client's view of every version: the expected values come from MLflow, not from our client.

Without that virtualenv the server tests skip with the reason; with MODELBOT_REQUIRE_MLFLOW set
(CI) they fail instead. The error-path tests use a tiny local HTTP server and always run.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from bot.cli.main import main
from bot.config.settings import Settings
from bot.domain.mlflow_import import (
    IMPORT_ACTOR,
    ImportOptions,
    MlflowImporter,
    parse_since,
    resolve_alias_map,
)
from bot.domain.registry import Registry
from bot.services import open_services
from bot.sources.mlflow import MlflowClient, MlflowModel, MlflowRun, MlflowVersion
from storage.db import Database, DatabaseSettings
from storage.models import OutboxMessage
from storage.queries import registry as queries
from tests.support.mlflow_server import MlflowProcess, clean_env, free_port, mlflow_python

FILL_SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "support" / "mlflow_fill.py"
Cli = Callable[..., tuple[int, str, str]]


# ---- fixtures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MlflowServer:
    url: str
    view: dict[str, Any]  # the MLflow client's view after filling, from mlflow_fill.py


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    python = mlflow_python()
    root = tmp_path_factory.mktemp("mlflow")
    server = MlflowProcess(python, root).start()
    try:
        view_path = root / "view.json"
        fill = subprocess.run([str(python), str(FILL_SCRIPT), server.url, str(view_path)], capture_output=True,
                              text=True, timeout=180, env=clean_env(), cwd=root)
        assert fill.returncode == 0, fill.stderr[-3000:]
        yield MlflowServer(url=server.url, view=json.loads(view_path.read_text()))
    finally:
        server.stop()


def _cli_for(url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.setenv("MODELBOT_DATABASE_URL", url)
    monkeypatch.delenv("MODELBOT_CONFIG", raising=False)
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(key)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exited:  # argparse's own errors
            code = int(exited.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`modelbot ARGS` in-process on SQLite and on PostgreSQL."""
    return _cli_for(database_url, monkeypatch, capsys)


@pytest.fixture
def sqlite_cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    return _cli_for(sqlite_url, monkeypatch, capsys)


def counts() -> dict[str, int]:
    db = Database(DatabaseSettings(url=os.environ["MODELBOT_DATABASE_URL"]))
    try:
        with db.read() as session:
            return queries.row_counts(session)
    finally:
        db.dispose()


def run_import(cli: Cli, *args: str) -> dict[str, Any]:
    code, out, err = cli("import", "mlflow", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def dump(cli: Cli) -> dict[str, Any]:
    """Everything `list`/`show`/`history --json` say about the registry."""
    def read(*args: str) -> Any:
        code, out, err = cli(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    doc: dict[str, Any] = {"list": read("list", "--limit", "500")}
    for model in doc["list"]["models"]:
        name = model["name"]
        versions = read("list", name, "--limit", "500")
        doc[name] = {"versions": versions, "history": read("history", name, "--limit", "500"),
                     "show": {v["version"]: read("show", name, str(v["version"])) for v in versions["versions"]}}
    return doc


# ---- acceptance 5 -----------------------------------------------------------------------------


IMPORTED = {"churn", "fraud-detector", "ranker.v2"}
# default alias map: champion → production, challenger → staging ("shadow" maps to nothing);
# ranker.v2 has no aliases, so its legacy stages decide
EXPECTED_SERVING = {"churn": {"production": 3, "staging": 5}, "fraud-detector": {"production": 5, "staging": 4},
                    "ranker.v2": {"production": 2, "staging": 4}}


def test_import_twice_gives_the_same_registry_matching_mlflow(cli: Cli, mlflow_server: MlflowServer) -> None:
    first = run_import(cli, "--tracking-uri", mlflow_server.url)
    assert first["totals"] | {"warnings": 0} == {
        "models_created": 3, "models_updated": 0, "models_unchanged": 0, "models_skipped": 1,
        "versions_created": 15, "versions_updated": 0, "versions_unchanged": 0, "versions_skipped": 0,
        "pointer_moves": 6, "warnings": 0,
    }
    warnings = "\n".join(first["warnings"])
    assert "model 'bad name' skipped" in warnings and "not a valid model name" in warnings
    assert "churn v2: metric 'val loss' skipped" in warnings
    assert "fraud-detector v1: param 'notes' skipped" in warnings and "one line" in warnings
    after_first, registry_first = counts(), dump(cli)

    second = run_import(cli, "--tracking-uri", mlflow_server.url)
    totals = second["totals"]
    assert (totals["versions_created"], totals["versions_updated"], totals["pointer_moves"]) == (0, 0, 0)
    assert (totals["models_created"], totals["models_updated"], totals["versions_unchanged"]) == (0, 0, 15)
    assert counts() == after_first
    assert dump(cli) == registry_first

    # ---- lineage and metrics, field by field against the MLflow client's view
    view = mlflow_server.view
    assert "val loss" in view["churn"]["versions"][1]["metrics"]  # the skips above were real
    assert "notes" in view["fraud-detector"]["versions"][0]["params"]
    assert {m["name"] for m in registry_first["list"]["models"]} == IMPORTED
    for name in IMPORTED:
        shown = registry_first[name]["show"]
        assert sorted(shown) == [v["version"] for v in view[name]["versions"]] == [1, 2, 3, 4, 5]
        for expected in view[name]["versions"]:
            got = shown[expected["version"]]
            assert got["source"] == expected["source"] and got["artifact_uri"] == expected["source"]
            assert got["run_id"] == expected["run_id"]
            assert got["description"] == expected["description"]
            assert got["tags"] == expected["tags"]
            assert got["metrics"] == {k: v for k, v in expected["metrics"].items() if k != "val loss"}
            assert got["params"] == {k: v for k, v in expected["params"].items() if "\n" not in v}
            assert got["created_by"] == (expected["user_id"] or IMPORT_ACTOR)
            created = datetime.fromtimestamp(expected["creation_timestamp"] / 1000, tz=UTC)
            assert datetime.fromisoformat(got["created_at"]) == created
            assert got["status"] == "ready" and expected["status"] == "READY"
        assert view[name]["versions"][2]["metrics"]["auc"] == 0.83  # the run's latest value, not its first

    # ---- aliases (and legacy stages) → environments, each move audited once
    serving = {m["name"]: m["serving"] for m in registry_first["list"]["models"]}
    assert serving == EXPECTED_SERVING
    assert {a: int(v) for a, v in view["churn"]["aliases"].items()} == {"champion": 3, "challenger": 5}
    history = registry_first["churn"]["history"]["events"]
    assert [(e["environment"], e["action"], e["to_version"], e["actor"], e["reason"]) for e in history] == [
        ("production", "promote", 3, IMPORT_ACTOR, "imported from MLflow alias champion"),
        ("staging", "promote", 5, IMPORT_ACTOR, "imported from MLflow alias challenger"),
    ]
    ranker = registry_first["ranker.v2"]["history"]["events"]
    assert {(e["environment"], e["reason"]) for e in ranker} == {
        ("production", "imported from MLflow stage Production"), ("staging", "imported from MLflow stage Staging")}
    # after an import, modelbot hands out the next number after MLflow's
    code, out, _ = cli("register", "churn", "--artifact", "s3://b/churn/6", "--actor", "alice")
    assert (code, out) == (0, "6\n")


def test_client_pages_through_models_and_versions(mlflow_server: MlflowServer) -> None:
    """Page size 2 forces `next_page_token` round trips on both search endpoints."""
    with MlflowClient(mlflow_server.url, page_size=2) as client:
        models = {m.name: m for m in client.search_registered_models()}
        assert set(models) == {*IMPORTED, "bad name"}
        assert models["churn"].aliases == {"champion": 3, "challenger": 5}
        versions = client.search_model_versions("ranker.v2")
        assert [v.version for v in versions] == [1, 2, 3, 4, 5]
        assert [v.current_stage for v in versions] == ["None", "Production", "None", "Staging", "None"]
        assert client.get_registered_model("no-such-model") is None
        assert client.get_run("0" * 32) is None


def _rest(server: MlflowServer, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change MLflow the way a user would (through its REST API)."""
    response = requests.request(method, f"{server.url}/api/2.0/mlflow/{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_changes_in_mlflow_flow_in_without_duplicates(sqlite_cli: Cli, mlflow_server: MlflowServer) -> None:
    """--since, --model, --alias-map, an updated description, a moved alias and a deleted version."""
    cli = sqlite_cli
    url = mlflow_server.url
    future = run_import(cli, "--tracking-uri", url, "--model", "churn", "--since", "2999-01-01")
    assert future["models"][0]["versions"]["before_since"] == [1, 2, 3, 4, 5]
    assert future["totals"]["versions_created"] == 0 and counts()["registered_models"] == 0

    dry = run_import(cli, "--tracking-uri", url, "--model", "churn", "--alias-map", "champion=staging", "--dry-run")
    assert dry["dry_run"] and dry["totals"]["versions_created"] == 5 and counts()["model_versions"] == 0

    # only the given alias map applies: champion → staging, and challenger maps to nothing now
    report = run_import(cli, "--tracking-uri", url, "--model", "churn", "--alias-map", "champion=staging")
    assert report["models"][0]["pointer_moves"] == [{"environment": "staging", "from_version": None, "to_version": 3,
                                                     "reason": "imported from MLflow alias champion"}]
    original = mlflow_server.view["churn"]["versions"][1]
    run_id = original["run_id"]
    try:
        _rest(mlflow_server, "PATCH", "model-versions/update",
              {"name": "churn", "version": "2", "description": "retrained description"})
        _rest(mlflow_server, "POST", "registered-models/alias", {"name": "churn", "alias": "champion", "version": "4"})
        _rest(mlflow_server, "POST", "model-versions/create",
              {"name": "churn", "source": f"runs:/{run_id}/model", "run_id": run_id})
        before = counts()
        report = run_import(cli, "--tracking-uri", url, "--model", "churn", "--alias-map", "champion=staging")
        churn = report["models"][0]
        assert (churn["outcome"], churn["versions"]["created"]) == ("updated", [6])
        assert churn["versions"]["updated"] == [{"version": 2, "fields": ["description"]}]
        assert [(m["from_version"], m["to_version"]) for m in churn["pointer_moves"]] == [(3, 4)]
        # one version row, one register + one update + one promote audit row
        assert counts()["model_versions"] == before["model_versions"] + 1
        assert counts()["audit_events"] == before["audit_events"] + 3
        _, out, _ = cli("show", "churn", "2", "--json")
        assert json.loads(out)["description"] == "retrained description"

        _rest(mlflow_server, "DELETE", "model-versions/delete", {"name": "churn", "version": "6"})
        before = counts()
        report = run_import(cli, "--tracking-uri", url, "--model", "churn", "--alias-map", "champion=staging")
        churn = report["models"][0]
        assert churn["deleted_in_mlflow"] == [6] and any("no longer exist in MLflow" in w for w in churn["warnings"])
        assert report["totals"]["versions_created"] == report["totals"]["versions_updated"] == 0
        assert report["totals"]["pointer_moves"] == 0 and counts() == before
        assert cli("show", "churn", "6")[0] == 0  # left alone
    finally:  # the server is shared by the module: put MLflow back as the fill script left it
        _rest(mlflow_server, "PATCH", "model-versions/update",
              {"name": "churn", "version": "2", "description": original["description"]})
        _rest(mlflow_server, "POST", "registered-models/alias", {"name": "churn", "alias": "champion", "version": "3"})


def test_mlflow_refuses_webhooks_to_loopback_so_the_poll_brings_versions_in(
    sqlite_url: str, mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """This module's server runs without MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS: `mlflow setup` says what MLflow
    refused and which setting allows it, and the scheduler's poll job alone follows MLflow."""
    from bot.jobs import jobs
    from bot.jobs import mlflow as mlflow_job

    policy = tmp_path / "modelbot.toml"
    policy.write_text(f"""[environments.staging]
[environments.production]
[mlflow]
tracking_uri = "{mlflow_server.url}"
webhook_secret_env = "MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET"
new_version_channel = "C0MODELS"
models = ["ranker.*"]
""")
    cli = _cli_for(sqlite_url, monkeypatch, capsys)
    monkeypatch.setenv("MODELBOT_CONFIG", str(policy))
    monkeypatch.setenv("MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET", "whsec-test")
    code, out, err = cli("mlflow", "setup", "--public-url", f"http://127.0.0.1:{free_port()}")
    assert (code, out) == (1, "")
    assert "MLflow refused the webhook URL" in _one_line(err) and "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true" in err
    assert "MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https" in err and "polling every 1 min" in err

    services = open_services(Settings.from_env())
    try:
        jobs.bind(services)
        for _ in range(2):  # the second run finds nothing new
            mlflow_job.poll()
        with services.registry.reading() as session:
            cards = session.execute(sa.select(OutboxMessage.data).where(
                OutboxMessage.template == "mlflow_new_version")).scalars().all()
    finally:
        jobs.unbind()
        services.close()
    shown = dump(cli)
    assert [v["version"] for v in shown["ranker.v2"]["versions"]["versions"]] == [5, 4, 3, 2, 1]
    assert sorted(c["version"] for c in cards) == [1, 2, 3, 4, 5]
    expected = mlflow_server.view["ranker.v2"]["versions"][2]
    assert shown["ranker.v2"]["show"][3]["metrics"] == expected["metrics"]
    code, out, _ = cli("mlflow", "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["followed"] == ["ranker.v2"] and status["last_event"] is None
    assert status["last_poll"]["error"] is None and status["last_poll"]["models_checked"] == 1


def test_models_with_their_own_versions_are_refused_not_renumbered(
    sqlite_cli: Cli, mlflow_server: MlflowServer
) -> None:
    cli = sqlite_cli
    assert cli("register", "churn", "--artifact", "s3://own/1", "--actor", "alice")[0] == 0
    assert cli("register", "RANKER.V2", "--artifact", "s3://own/1", "--actor", "alice")[0] == 0
    before = counts()
    report = run_import(cli, "--tracking-uri", mlflow_server.url, "--model", "churn", "--model", "ranker.v2",
                        "--model", "no-such-model")
    outcomes = {m["name"]: m["outcome"] for m in report["models"]}
    assert outcomes == {"churn": "refused", "ranker.v2": "refused"}
    warnings = "\n".join(report["warnings"])
    assert "did not come from MLflow (v1)" in warnings and "unique regardless of case" in warnings
    assert "no-such-model: there is no registered model by that name in MLflow" in warnings
    assert counts() == before


# ---- failures: one line on stderr, the right exit code, nothing written ----------------------


@contextlib.contextmanager
def http_server(status: int, body: bytes, content_type: str = "application/json") -> Iterator[tuple[str, list[Any]]]:
    """A local HTTP server answering every request with one canned response; records requests."""
    seen: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err


def test_unreachable_server_exits_1_with_one_line(sqlite_cli: Cli) -> None:
    code, out, err = sqlite_cli("import", "mlflow", "--tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and out == ""
    assert "could not be reached" in _one_line(err) and "--tracking-uri" in err


def test_server_error_is_retried_then_reported(sqlite_cli: Cli) -> None:
    with http_server(500, b'{"error_code": "INTERNAL_ERROR", "message": "database is on fire"}') as (url, seen):
        code, out, err = sqlite_cli("import", "mlflow", "--tracking-uri", url)
    assert code == 1 and out == ""
    line = _one_line(err)
    assert "answered 500" in line and "after 4 tries" in line and "database is on fire" in line
    assert len(seen) == 4  # the first try and three retries with backoff
    assert counts()["registered_models"] == 0


def test_auth_failure_names_the_variables_and_never_the_secret(
    sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with http_server(401, b'{"error_code": "UNAUTHENTICATED"}') as (url, seen):
        code, _, err = sqlite_cli("import", "mlflow", "--tracking-uri", url)
        assert code == 1 and "401" in _one_line(err) and "MLFLOW_TRACKING_TOKEN" in err
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cret-token")
        code, out, err = sqlite_cli("import", "mlflow", "--tracking-uri", url)
    assert code == 1 and "s3cret" not in out + err and "refused access (401" in err
    assert seen[-1]["Authorization"] == "Bearer s3cret-token" and len(seen) == 2  # 401 is not retried


def test_non_json_answer_is_a_clear_error(sqlite_cli: Cli) -> None:
    with http_server(200, b"<html>please log in</html>", "text/html") as (url, _):
        code, _, err = sqlite_cli("import", "mlflow", "--tracking-uri", url)
    assert code == 1 and "text/html, not MLflow's JSON" in _one_line(err)


@pytest.mark.parametrize(("args", "message"), [
    (["--tracking-uri", "ftp://example.org"], "not an http(s) URL"),
    (["--tracking-uri", "http://user:pw@127.0.0.1:1"], "Do not put credentials"),
    (["--tracking-uri", "http://127.0.0.1:1", "--alias-map", "champion=moon"], "no environment 'moon'"),
    (["--tracking-uri", "http://127.0.0.1:1", "--alias-map", "champion"], "is not ALIAS=ENV"),
    (["--tracking-uri", "http://127.0.0.1:1", "--since", "last tuesday"], "is not a date"),
    (["--tracking-uri", "http://127.0.0.1:1", "--model", "bad name"], "not a valid model name"),
])
def test_bad_input_exits_2_and_writes_nothing(sqlite_cli: Cli, args: list[str], message: str) -> None:
    code, out, err = sqlite_cli("import", "mlflow", *args)
    assert (code, out) == (2, "")
    assert message in _one_line(err)
    assert "pw" not in err
    assert sum(counts().values()) == 0


# ---- mapping rules on hand-made MLflow answers (no server needed) ---------------------------


class ListSource:
    """MLflow's answers as the REST client would return them, for the cases a live server cannot
    easily produce (failed registrations, NaN metrics, control characters, clashing aliases)."""

    def __init__(self, models: list[MlflowModel], versions: dict[str, list[MlflowVersion]],
                 runs: dict[str, MlflowRun]) -> None:
        self.models, self.versions, self.runs = models, versions, runs

    def search_registered_models(self) -> list[MlflowModel]:
        return list(self.models)

    def get_registered_model(self, name: str) -> MlflowModel | None:
        return next((m for m in self.models if m.name == name), None)

    def search_model_versions(self, name: str) -> list[MlflowVersion]:
        return list(self.versions.get(name, []))

    def get_run(self, run_id: str) -> MlflowRun | None:
        return self.runs.get(run_id)


def _mv(name: str, n: int, *, status: str = "READY", stage: str = "None", description: str | None = None,
        user: str | None = None, day: int = 1) -> MlflowVersion:
    return MlflowVersion(
        name=name, version=n, created_at=datetime(2026, 3, day, tzinfo=UTC), updated_at=None, user_id=user,
        description=description, source=f"s3://m/{name}/{n}", run_id=f"run{n}", run_link=None,
        storage_location=None, status=status, status_message="boom" if status != "READY" else None,
        current_stage=stage, tags={},
    )


def test_mapping_rules(registry: Registry) -> None:
    models = [
        MlflowModel("churn", None, None, None, aliases={"champion": 2, "production": 1, "Challenger": 3}),
        MlflowModel("prompt-x", None, None, None, tags={"mlflow.prompt.is_prompt": "true"}),
    ]
    versions = {"churn": [
        _mv("churn", 1, user="alice@example.com", stage="Staging"),
        _mv("churn", 2, description="line\x07bell", day=5),
        _mv("churn", 3, status="FAILED_REGISTRATION", day=6),
        _mv("churn", 4, status="PENDING_REGISTRATION", day=7),
    ]}
    runs = {"run1": MlflowRun("run1", metrics={"auc": 0.9, "bad": float("nan")}, params={"p": "1"}),
            "run2": MlflowRun("run2", metrics={"auc": 0.95})}
    source = ListSource(models, versions, runs)
    importer = MlflowImporter(registry, source)
    options = ImportOptions(alias_map=resolve_alias_map(None, registry.environments))
    report = importer.run(options)
    churn, prompt = report.models
    assert prompt.outcome == "skipped" and "prompt" in prompt.warnings[0]
    assert churn.created == [1, 2] and churn.skipped == [3, 4]
    warnings = "\n".join(churn.warnings)
    assert "v3 skipped: its MLflow status is FAILED_REGISTRATION (boom)" in warnings
    assert "v4 skipped: its MLflow status is PENDING_REGISTRATION" in warnings
    assert "metric 'bad' skipped" in warnings and "finite" in warnings
    assert "description cleaned" in warnings
    # champion (v2) and production (v1) both map to production and disagree: production untouched.
    # Challenger (matched regardless of case) maps to staging but points to v3, which was not imported:
    # staging is untouched too, and the legacy stage does not step in for an environment an alias maps to.
    assert "aliases that map to production disagree (champion → v2, production → v1)" in warnings
    assert "Challenger points to v3, which is not in modelbot (status FAILED_REGISTRATION)" in warnings
    assert churn.moves == []
    v1, v2 = registry.show("churn", "1"), registry.show("churn", "2")
    assert (v1.created_by, v1.metrics, v1.params, v1.artifact_uri) == (
        "alice@example.com", {"auc": 0.9}, {"p": "1"}, "s3://m/churn/1")
    assert (v2.created_by, v2.description) == (IMPORT_ACTOR, "line?bell")

    # --since keeps older versions out; the second run over the same answers changes nothing
    again = importer.run(ImportOptions(alias_map=options.alias_map, since=parse_since("2026-03-05")))
    assert again.models[0].before_since == [1] and again.models[0].unchanged == [2]
    assert again.totals()["versions_created"] == again.totals()["versions_updated"] == 0
    assert again.totals()["pointer_moves"] == 0
