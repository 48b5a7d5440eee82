"""Metric sources at the boundary (issue 11, defects 3, 7 and 8), against real local HTTP servers.

A credential in a source URL (`user:password@`, `?api_key=`) reaches the server and nowhere
else: not `last_error`, not the log, not the `/model status` notes every Slack user sees. An
answer larger than the cap is refused without reading it all; a redirect chain longer than
three is refused; a missing table in a prediction-log database is one plain sentence.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.config import jsonpath
from bot.config.policy_file import load_policy
from bot.config.sources import (
    HttpOptions,
    JsonMetric,
    JsonSource,
    PrometheusSource,
    PromQuery,
    configured_sources,
)
from bot.domain.monitoring import status
from bot.domain.monitoring.recording import source_status
from bot.services import Services
from bot.sources.http import MAX_REDIRECTS
from bot.sources.pull import pull_source
from storage.models import SourceStatus
from tests.sources.conftest import Clock, LocalServer

PASSWORD, KEY = "pw-s3cret-41", "key-s3cret-42"


def json_source(url: str, *, max_bytes: int = 10 * 1024 * 1024) -> JsonSource:
    return JsonSource(
        name="serving-stats", type="json", interval=timedelta(minutes=1),
        http=HttpOptions(timeout_s=2, retries=0, max_bytes=max_bytes), url=url, model="churn",
        environment="production", metrics=(JsonMetric("auc", jsonpath.parse("auc"), "mean"),), version_path=None,
    )


def prometheus_source(url: str) -> PrometheusSource:
    return PrometheusSource(
        name="prom-churn", type="prometheus", interval=timedelta(minutes=1), http=HttpOptions(timeout_s=2, retries=0),
        url=url, models=("churn",), environments=("production",),
        queries=(PromQuery("error_rate", 'sum(rate(errors{model="{model}"}[5m]))'),),
    )


def everything_shown(services: Services, name: str, caplog: pytest.LogCaptureFixture) -> str:
    """What a person can see of a source's failure: its status row, the log, `/model status`."""
    row = source_status(services.registry, [name])[name]
    query = status.StatusQuery(now=services.clock(), sources=(status.SourceRef(name, "json"),))
    notes = status.model_status(services.registry, "churn", "production", query).to_dict()
    with services.db.read() as session:
        stored = [r.model_dump_json() for r in session.exec(select(SourceStatus)).all()]
    return json.dumps([row.last_error, notes, stored]) + caplog.text


@pytest.mark.parametrize("failure", ["refused query", "unreachable", "500", "not json"])
def test_credentials_in_a_source_url_are_sent_but_never_shown(
    services: Services, http_server: LocalServer, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.INFO)
    if failure == "refused query":
        http_server.json("/api/v1/query", json.dumps({"status": "error", "error": "parse error"}))
    elif failure == "500":
        http_server.json("/api/v1/query", json.dumps({"error": "busy"}), status=500)
    elif failure == "not json":
        http_server.routes["/api/v1/query"] = lambda _h: (200, "text/html", b"<html>login</html>")
    base = http_server.url if failure != "unreachable" else "http://127.0.0.1:9"
    url = base.replace("http://", f"http://metrics:{PASSWORD}@") + f"?api_key={KEY}"
    result = pull_source(services, prometheus_source(url))
    assert not result.ok and result.error
    shown = everything_shown(services, "prom-churn", caplog)
    assert "metrics:[redacted]@" in shown
    assert PASSWORD not in shown and KEY not in shown and PASSWORD not in result.error
    if failure != "unreachable":
        assert http_server.requests and KEY in http_server.requests[0]  # the real URL was used


def test_basic_auth_from_the_url_reaches_the_server(services: Services, http_server: LocalServer) -> None:
    seen: list[str] = []

    def answer(handler: object) -> tuple[int, str, bytes]:
        seen.append(handler.headers.get("Authorization", ""))  # type: ignore[attr-defined]
        return 200, "application/json", b'{"auc": 0.9}'

    http_server.routes["/stats"] = answer
    result = pull_source(services, json_source(http_server.url.replace("http://", f"http://u:{PASSWORD}@") + "/stats"))
    assert result.ok and seen == ["Basic " + base64.b64encode(f"u:{PASSWORD}".encode()).decode()]


def test_an_answer_over_the_cap_is_refused_and_the_cap_is_configurable(
    services: Services, http_server: LocalServer, clock: Clock
) -> None:
    big = json.dumps({"auc": 0.9, "pad": "x" * (11 * 1024 * 1024)}).encode()
    http_server.json("/stats", big)
    result = pull_source(services, json_source(f"{http_server.url}/stats"))
    assert not result.ok and "more than 10 MB" in (result.error or "") and "max_response_mb" in (result.error or "")
    clock.advance(timedelta(minutes=1))
    assert pull_source(services, json_source(f"{http_server.url}/stats", max_bytes=12 * 1024 * 1024)).ok


def test_an_answer_without_content_length_is_cut_at_the_cap(services: Services, tmp_path: Path) -> None:
    """A chunked answer announces no size: it is counted while it streams and dropped at the cap."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sent = {"bytes": 0}

    class Endless(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(1000):  # 64 MB if nobody stops reading
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent["bytes"] += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = pull_source(services, json_source(f"http://127.0.0.1:{server.server_address[1]}/stats",
                                                   max_bytes=1024 * 1024))
    finally:
        server.shutdown()
        server.server_close()
    assert not result.ok and "more than 1 MB" in (result.error or "")
    assert sent["bytes"] < 32 * 1024 * 1024


@pytest.mark.parametrize(("hops", "ok"), [(MAX_REDIRECTS, True), (MAX_REDIRECTS + 1, False)])
def test_at_most_three_redirects(services: Services, http_server: LocalServer, hops: int, ok: bool) -> None:
    for hop in range(hops):
        http_server.redirects[f"/hop{hop}"] = f"/hop{hop + 1}" if hop + 1 < hops else "/stats"
    http_server.json("/stats", '{"auc": 0.9}')
    result = pull_source(services, json_source(f"{http_server.url}/hop0"))
    assert result.ok is ok, result.error
    if not ok:
        assert f"redirected more than {MAX_REDIRECTS} times" in (result.error or "")


def log_source(tmp_path: Path, sql_url: str) -> Any:
    policy = tmp_path / "modelbot.toml"
    policy.write_text(f"""
[[sources]]
name = "churn-log"
type = "prediction_log"
sql_url = "{sql_url}"
table = "predictions"
model = "churn"
environment = "production"
""")
    [source] = configured_sources(load_policy(policy))
    return source


def test_a_missing_table_in_a_prediction_log_database_is_one_plain_sentence(
    services: Services, tmp_path: Path
) -> None:
    logs = tmp_path / "logs.db"
    sqlite3.connect(logs).close()
    result = pull_source(services, log_source(tmp_path, f"sqlite:///{logs}"))
    assert not result.ok
    assert result.error == f"there is no table predictions in the database at sqlite:///{logs}: check table = \"…\" " \
                           "in this source."
    assert "SELECT" not in result.error and "unexpected" not in result.error


@pytest.mark.postgres
def test_a_password_in_a_prediction_log_url_stays_out_of_its_error(services: Services, tmp_path: Path,
                                                                   postgres_url: str) -> None:
    """The missing-table sentence names the database (a PostgreSQL URL with its password), redacted."""
    password = sa.engine.make_url(postgres_url).password
    assert password
    result = pull_source(services, log_source(tmp_path, postgres_url))
    assert not result.ok and result.error and "there is no table predictions in the database at" in result.error
    assert ":[redacted]@" in result.error
    stored = source_status(services.registry, ["churn-log"])["churn-log"].last_error or ""
    assert f":{password}@" not in result.error and f":{password}@" not in stored  # (the test user is its password)


def test_source_credentials_stay_out_of_what_the_programs_show(http_server: LocalServer, tmp_path: Path) -> None:
    """Defect 3 through the `modelbot` program: `modelbot scheduler` pulls a source whose URL carries a
    password and an API key from a server answering 500; its log, `modelbot status` (text and JSON),
    the digest on demand (`/model digest` in `modelbot shell`) and every row in the database show the
    URL redacted, never the secrets. Beside it, a prediction-log source whose table is missing
    (defect 7) is one plain sentence in `modelbot status`, without SQL."""
    import os
    import subprocess
    import sys
    import time

    from tests.slack_support import REPO

    http_server.json("/stats", json.dumps({"error": "busy"}), status=500)
    url = http_server.url.replace("http://", f"http://metrics:{PASSWORD}@") + f"/stats?api_key={KEY}"
    policy = tmp_path / "modelbot.toml"
    logs = tmp_path / "logs.db"
    sqlite3.connect(logs).close()
    policy.write_text(f'[[sources]]\nname = "serving-stats"\ntype = "json"\ninterval = "5s"\nretries = 0\n'
                      f'url = "{url}"\nmodel = "churn"\nenvironment = "production"\n[sources.metrics]\nauc = "auc"\n'
                      f'[[sources]]\nname = "churn-log"\ntype = "prediction_log"\ninterval = "5s"\n'
                      f'sql_url = "sqlite:///{logs}"\ntable = "predictions"\nmodel = "churn"\nenvironment = "production"\n')
    database = tmp_path / "modelbot.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MODELBOT_"))}
    env.update({"MODELBOT_DATABASE_URL": f"sqlite:///{database}", "MODELBOT_CONFIG": str(policy)})

    def modelbot(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=REPO, env=env, input=stdin,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    modelbot("register", "churn", "--artifact", "s3://m/churn/1")
    modelbot("promote", "churn", "1", "production", "--actor", "ci")
    scheduler = subprocess.Popen([sys.executable, "-m", "bot.cli", "scheduler", "--no-delivery", "--log-level", "info"],
                                 cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not http_server.requests or not _last_error(database, "serving-stats") or not _last_error(database,
                                                                                                        "churn-log"):
            assert time.monotonic() < deadline and scheduler.poll() is None, "the scheduler did not pull the source"
            time.sleep(0.2)
    finally:
        scheduler.terminate()
        scheduler_log = scheduler.communicate(timeout=60)[0]
    assert KEY in http_server.requests[0]  # the real URL was used

    shown = {
        "scheduler log": scheduler_log,
        "status": modelbot("status", "churn", "production"),
        "status --json": modelbot("status", "churn", "production", "--json"),
        "digest": modelbot("shell", "--no-preview", stdin="/model digest churn production\n"),
        "database": "\n".join(" ".join(map(str, row)) for row in _all_rows(database)),
    }
    for where in ("status", "status --json", "digest", "database"):
        assert "metrics:[redacted]@" in shown[where] and "api_key=[redacted]" in shown[where], where
    for where, text in shown.items():
        assert PASSWORD not in text and KEY not in text, where
    assert "source churn-log: no data yet: there is no table predictions in the database" in shown["status"]
    assert "SELECT" not in shown["status"] and "unexpected" not in shown["status"]


def _last_error(database: Path, source: str) -> str | None:
    with sqlite3.connect(database) as conn:
        found = conn.execute("SELECT last_error FROM source_status WHERE name = ?", (source,)).fetchone()
    return found[0] if found else None


def _all_rows(database: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [row for table in tables for row in conn.execute(f'SELECT * FROM "{table}"')]
