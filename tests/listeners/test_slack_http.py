"""HTTP mode end to end (issue 3, acceptance 2 and 3, plus /healthz, /metrics and `modelbot serve`).

Signed form posts travel over real HTTP into the real web app (uvicorn → FastAPI → Bolt →
listeners → SQLite/PostgreSQL); replies travel over real HTTP to the strict fake Slack, which
rejects invalid Block Kit, so "a reply arrived" already means "a valid reply arrived".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from bot.blocks.registry import PAGE_ACTION
from bot.cli import main as cli
from bot.cli.serving import SafeOneLineFormatter, choose_mode
from bot.config.settings import Settings
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.registry import NewVersion
from bot.redaction import redact_text
from bot.services import open_services
from bot.web.app import create_web_app
from bot.web.server import ServerThread
from storage.models import RegisteredModel
from tests.slack_fake import SlackFake, sign_request
from tests.slack_support import (  # noqa: F401  (the *_fixture names register fixtures)
    HOSTILE_TEXT,
    MODEL_SECTION,
    REPO,
    SIGNING_SECRET,
    RunningBot,
    bot_fixture,
    bot_settings,
    buttons,
    now,
    section_texts,
    seed_registry,
    slack_fixture,
    stderr_lines,
    wait_for_line,
)

# ---- acceptance 2: every command answers with a valid reply ---------------------------------------


def test_help_lists_every_command_and_help_topic_explains_one(bot: RunningBot) -> None:
    reply = bot.command("help")
    assert reply.response_type == "ephemeral"
    text = "\n".join(section_texts(reply.blocks))
    for usage in ("list [MODEL]", "show MODEL [REF]", "compare MODEL", "history MODEL [ENV]"):
        assert usage in text
    topic = bot.command("help compare")
    assert "/model compare MODEL" in "\n".join(section_texts(topic.blocks))
    assert bot.command("").blocks == reply.blocks  # bare /model is help


def test_list_and_list_model(bot: RunningBot) -> None:
    seed_registry(bot.registry)
    models = bot.command("list")
    names = [m.group(1) for t in section_texts(models.blocks) if (m := MODEL_SECTION.match(t))]
    assert names == ["churn", "fraud"]
    assert "production *v2*" in "\n".join(section_texts(models.blocks))  # after the rollback

    versions = bot.command("list churn")
    texts = section_texts(versions.blocks)
    assert texts[0] == "churn: versions (6)"
    assert [t.split("*")[1] for t in texts if t.startswith("*v")] == ["v6", "v5", "v4", "v3", "v2", "v1"]


def test_show_by_number_and_by_environment(bot: RunningBot) -> None:
    seed_registry(bot.registry)
    v4 = bot.command("show churn v4")
    assert v4.blocks[0]["text"]["text"] == "churn v4"
    assert any("auc = 0.84" in t for t in section_texts(v4.blocks))
    prod = bot.command("show churn @production")
    assert prod.blocks[0]["text"]["text"] == "churn v2"
    assert bot.command("show churn").blocks[0]["text"]["text"] == "churn v6"  # latest by default


@pytest.mark.parametrize("refs", [["1", "2"], ["1", "2", "3", "4", "v5"]], ids=["2-versions", "5-versions"])
def test_compare(bot: RunningBot, refs: list[str]) -> None:
    seed_registry(bot.registry)
    reply = bot.command("compare churn " + " ".join(refs))
    labels = [f"v{r.lstrip('v')}" for r in refs]
    assert reply.blocks[0]["text"]["text"] == "churn: " + " vs ".join(labels)
    table = next(t for t in section_texts(reply.blocks) if t.startswith("```"))
    header = table.splitlines()[0]
    for label in labels:
        assert label in header
    assert "auc" in table and "loss" in table and "▲" in table  # deltas with direction


def test_compare_without_refs_is_production_against_latest(bot: RunningBot) -> None:
    seed_registry(bot.registry)
    assert bot.command("compare churn").blocks[0]["text"]["text"] == "churn: v2 vs v6"  # @production vs latest


def test_history_all_environments_and_one(bot: RunningBot) -> None:
    seed_registry(bot.registry)
    text = "\n".join(section_texts(bot.command("history churn").blocks))
    assert text.index("*promote* staging") < text.index("*rollback* production")
    assert "latency regression" in text and "better auc" in text
    prod = "\n".join(section_texts(bot.command("history churn production").blocks))
    assert "staging" not in prod.split("History")[-1] and "*rollback* production v4 → v2" in prod


def test_list_of_300_models_pages_within_50_blocks_and_shows_each_model_once(bot: RunningBot) -> None:
    for i in range(300):
        bot.registry.register(NewVersion(model=f"m{i:03d}", artifact_uri=f"s3://m/{i}", actor="ci"))
    seen: list[str] = []
    reply = bot.command("list")
    pages = 1
    while True:
        assert reply.blocks is not None and len(reply.blocks) <= 50
        seen += [m.group(1) for t in section_texts(reply.blocks) if (m := MODEL_SECTION.match(t))]
        next_buttons = [b for b in buttons(reply.blocks) if b["action_id"] == PAGE_ACTION]
        if not next_buttons:
            break
        assert len(next_buttons) == 1
        reply = bot.click(PAGE_ACTION, next_buttons[0]["value"])
        assert reply.replace_original  # the page replaces the message it was clicked on
        pages += 1
    assert sorted(seen) == [f"m{i:03d}" for i in range(300)] and len(seen) == 300
    assert pages > 1


def test_hostile_descriptions_render_as_literal_text(bot: RunningBot) -> None:
    seed_registry(bot.registry)  # fraud v1 has the hostile version description
    with bot.registry.writing() as session:  # the model description has no command yet: set it directly
        session.execute(sa.update(RegisteredModel).where(RegisteredModel.name_key == "fraud")
                        .values(description=HOSTILE_TEXT))
    escaped = "&lt;!channel&gt; &amp; &lt;@U123&gt;"
    for text in ("show fraud", "list"):
        reply = bot.command(text)
        raw = json.dumps(reply.body, ensure_ascii=False)
        assert "<!channel>" not in raw and "<@U123>" not in raw, text
        matching = [b for b in reply.blocks or [] if escaped in json.dumps(b.get("text") or {}, ensure_ascii=False)]
        assert matching, f"{text}: escaped description not shown"
        for block in matching:
            assert block["text"]["type"] == "mrkdwn" and block["text"].get("verbatim") is True


@pytest.mark.parametrize(
    ("text", "usage"),
    [("frobnicate churn", "/model help"), ("show", "/model show MODEL [REF]"),
     ("compare churn 1", "/model compare MODEL"), ("history churn prod uction", "/model history MODEL [ENV]"),
     ('show "churn', None)],
)
def test_bad_command_gets_an_ephemeral_reply_with_the_usage_line(bot: RunningBot, text: str, usage: str | None) -> None:
    reply = bot.command(text)
    assert reply.response_type == "ephemeral"
    body = "\n".join(section_texts(reply.blocks))
    assert body.startswith(":warning:")
    if usage:
        assert f"Usage: `{usage}" in body


def test_unknown_model_is_a_friendly_ephemeral_error(bot: RunningBot) -> None:
    reply = bot.command("show nosuchmodel")
    assert reply.response_type == "ephemeral"
    assert section_texts(reply.blocks)[0].startswith(":warning:")


def test_share_posts_in_channel(bot: RunningBot) -> None:
    seed_registry(bot.registry)
    assert bot.command("show churn 2 share").response_type == "in_channel"
    assert bot.command("list").response_type == "ephemeral"


def test_digest_now_answers_only_the_asker(bot: RunningBot) -> None:
    """`/model digest` in Slack: the same digest as the shell's, ephemeral, and no file is uploaded
    (a command reply cannot carry one; the shell writes the chart to disk instead)."""
    seed_registry(bot.registry)
    at = datetime.now(UTC) - timedelta(hours=1)
    Samples(bot.registry).record([SampleIn("churn", "production", "latency_ms", 21.0 + i, at + timedelta(minutes=i),
                                           version=2) for i in range(3)], source="test")
    reply = bot.command("digest churn production")
    assert reply.response_type == "ephemeral"
    body = "\n".join(section_texts(reply.blocks))
    assert reply.blocks[0]["text"]["text"] == "On-demand digest: churn"
    assert "*production* · v2" in body and "latency_ms" in body and "*staging*" not in body
    assert not [c for c in bot.slack.calls if c.method.startswith("files.")]
    assert "Did you mean production?" in section_texts(bot.command("digest churn prod").blocks)[0]


# ---- acceptance 3: unsigned, forged, stale and replayed requests change nothing ---------------------


# Slack allows a timestamp 5 minutes off; a minute more, so a loaded machine's slow request does
# not bring a forged timestamp back inside the window before the server reads it.
OUTSIDE_THE_WINDOW = 300 + 60


def _forged(bot: RunningBot, kind: str, body: bytes) -> requests.Response:
    if kind == "wrong-secret":
        return bot.signed_post(body, secret="not-the-signing-secret")
    if kind == "stale-timestamp":
        return bot.signed_post(body, timestamp=now() - OUTSIDE_THE_WINDOW)
    if kind == "future-timestamp":
        return bot.signed_post(body, timestamp=now() + OUTSIDE_THE_WINDOW)
    if kind == "missing-headers":
        return bot.post(body)
    if kind == "missing-signature":
        return bot.post(body, {"X-Slack-Request-Timestamp": str(now())})
    if kind == "missing-timestamp":
        headers = sign_request(SIGNING_SECRET, body)
        del headers["X-Slack-Request-Timestamp"]
        return bot.post(body, headers)
    if kind == "garbage-signature":
        return bot.post(body, {"X-Slack-Signature": "v0=zz", "X-Slack-Request-Timestamp": "not-a-number"})
    if kind == "replay-changed-body":
        original = bot.slack.slash_command_body("list", response_name="replay-original")
        return bot.post(body, sign_request(SIGNING_SECRET, original))
    raise AssertionError(kind)


FORGERIES = ["wrong-secret", "stale-timestamp", "future-timestamp", "missing-headers", "missing-signature",
             "missing-timestamp", "garbage-signature", "replay-changed-body"]


@pytest.mark.parametrize("kind", FORGERIES)
def test_unverified_requests_get_401_and_change_nothing(bot: RunningBot, kind: str) -> None:
    seed_registry(bot.registry)
    before = bot.row_counts()
    command = bot.slack.slash_command_body("show churn share", response_name="forged-command")
    click = bot.slack.block_actions_body(PAGE_ACTION, '{"c":"list","o":0}', response_name="forged-click")
    for body in (command, click):
        response = _forged(bot, kind, body)
        assert response.status_code == 401, (kind, response.status_code, response.text)
    # Positive control: the same server answers a correctly signed request, so silence above is real.
    assert bot.command("help").text
    bot.listeners.wait_for(1)
    assert bot.row_counts() == before
    # only the control's reply (and Bolt's one-time auth.test for it)
    assert [c.method for c in bot.slack.calls if c.method != "auth.test"] == ["response_url"]
    assert bot.slack.responses("forged-command") == [] and bot.slack.responses("forged-click") == []


def test_a_valid_request_replayed_with_a_valid_signature_still_works(bot: RunningBot) -> None:
    """Control for the replay case: Bolt (like Slack's docs) only bounds replays by the 5-minute window."""
    body = bot.slack.slash_command_body("help", response_name="twice")
    headers = sign_request(SIGNING_SECRET, body)
    assert bot.post(body, headers).status_code == 200
    assert bot.post(body, headers).status_code == 200
    assert len(bot.slack.wait_for_responses("twice", 2)) == 2


def test_non_utf8_and_oversized_bodies_are_rejected_before_bolt(bot: RunningBot) -> None:
    assert bot.signed_post(b"text=\xff\xfe").status_code == 400
    assert bot.signed_post(b"x" * 1_000_001).status_code == 413
    assert bot.slack.calls == []


# ---- /healthz and /metrics --------------------------------------------------------------------------


def test_healthz_ok_when_the_database_answers(bot: RunningBot) -> None:
    response = bot.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("backend", ["sqlite-folder-removed", "postgres-closed-port"])
def test_healthz_503_when_the_database_is_unreachable(tmp_path: Path, backend: str) -> None:
    if backend == "sqlite-folder-removed":
        folder = tmp_path / "db"
        folder.mkdir()
        url = f"sqlite:///{folder / 'modelbot.db'}"
    else:
        url = f"postgresql+psycopg://modelbot:secret@127.0.0.1:{_closed_port()}/modelbot"
    services = open_services(Settings(database_url=url), upgrade=False)  # lazy: nothing connects yet
    if backend == "sqlite-folder-removed":
        shutil.rmtree(tmp_path / "db")
    with ServerThread(create_web_app(services, None)) as server:
        response = requests.get(server.url + "/healthz", timeout=10)
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert requests.get(server.url + "/metrics", timeout=10).status_code == 200
        assert requests.post(server.url + "/slack/events", timeout=10).status_code in (404, 405)  # no Bolt here
    services.close()


def _sample(metrics_text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_count_commands_by_outcome_and_time_acks(bot: RunningBot) -> None:
    seed_registry(bot.registry)
    before = bot.get("/metrics").text
    bot.command("list")
    bot.command("show nosuchmodel")
    bot.listeners.wait_for(2)  # the counter is bumped after the reply is sent
    response = bot.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = response.text
    assert 'modelbot_commands_total{command="list",outcome="ok"}' in after
    for labels in ({"command": "list", "outcome": "ok"}, {"command": "show", "outcome": "not_found"}):
        assert _sample(after, "modelbot_commands_total", labels) == _sample(before, "modelbot_commands_total", labels) + 1
    assert _sample(after, "modelbot_ack_seconds_count", {}) >= _sample(before, "modelbot_ack_seconds_count", {}) + 2
    route = {"method": "POST", "route": "/slack/events", "status": "200"}
    assert _sample(after, "modelbot_http_requests_total", route) >= _sample(before, "modelbot_http_requests_total", route) + 2


def test_http_metrics_label_routes_by_template_including_mounted_apps(tmp_path: Path) -> None:
    """Labels are route templates, never raw paths, so scanners cannot explode the metric's cardinality."""
    from fastapi import APIRouter, FastAPI

    sub = FastAPI()

    @sub.get("/items/{item}")
    def item(item: str) -> dict[str, str]:
        return {"item": item}

    extra = APIRouter()

    @extra.get("/extra")
    def extra_route() -> dict[str, bool]:
        return {"ok": True}

    services = open_services(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}"), upgrade=False)
    try:
        with ServerThread(create_web_app(services, None, routers=[extra], mounts={"/sub": sub})) as server:
            for path in ("/sub/items/a", "/sub/items/b", "/sub/nothing", "/random-scan-1", "/random-scan-2", "/extra"):
                requests.get(server.url + path, timeout=10)
            text = requests.get(server.url + "/metrics", timeout=10).text
    finally:
        services.close()
    labels = {(s.labels["route"], s.labels["status"]) for f in text_string_to_metric_families(text)
              for s in f.samples if s.name == "modelbot_http_requests_total"}
    assert ("/sub/items/{item}", "200") in labels and ("/extra", "200") in labels
    assert ("/sub/unmatched", "404") in labels and ("unmatched", "404") in labels
    assert not any("random-scan" in route or route == "/sub/items/a" for route, _ in labels)


# ---- `modelbot serve` ---------------------------------------------------------------------------------


def test_serve_picks_socket_mode_only_with_an_app_token() -> None:
    assert choose_mode(Settings(slack_app_token="xapp-1")) == "socket"
    assert choose_mode(Settings()) == "http"
    assert choose_mode(Settings(slack_app_token="xapp-1"), http=True) == "http"
    assert choose_mode(Settings(), socket=True) == "socket"


@pytest.mark.parametrize(
    ("env", "argv", "named"),
    # no Slack setting at all with --http is the REST API alone (tests/web/test_serving_replicas.py)
    [({"SLACK_SIGNING_SECRET": "s3cret"}, ["serve", "--http"], "SLACK_BOT_TOKEN"),
     ({"SLACK_BOT_TOKEN": "xoxb-1"}, ["serve", "--http"], "SLACK_SIGNING_SECRET"),
     ({"SLACK_BOT_TOKEN": "xoxb-1"}, ["serve"], "SLACK_SIGNING_SECRET"),
     ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret"}, ["serve", "--socket"], "SLACK_APP_TOKEN"),
     ({"SLACK_BOT_TOKEN": "oops"}, ["serve"], "SLACK_BOT_TOKEN")],
)
def test_serve_without_settings_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    env: dict[str, str], argv: list[str], named: str,
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "MODELBOT_SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and "oops" not in err[0]


def test_modelbot_serve_http_answers_signed_commands_and_stops_gracefully_on_sigterm(
    slack: SlackFake, tmp_path: Path
) -> None:
    """The production entry point as a process: env config, uvicorn, signed command, SIGTERM → exit 0."""
    settings = bot_settings(f"sqlite:///{tmp_path / 'serve.db'}", slack)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MODELBOT_"))}
    env.update({"MODELBOT_DATABASE_URL": settings.database_url, "MODELBOT_SLACK_API_URL": slack.api_url,
                "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET})
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--log-level", "debug"],
                            cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    try:
        lines = stderr_lines(proc)
        url = wait_for_line(lines, r"listening on (http://\S+)", seen).group(1)
        assert requests.get(url + "/healthz", timeout=10).json() == {"status": "ok"}
        assert requests.get(url + "/api/v1/openapi.json", timeout=10).json()["openapi"].startswith("3.")
        body = slack.slash_command_body("help", response_name="served")
        assert requests.post(url + "/slack/events", data=body, timeout=10,
                             headers={**sign_request(SIGNING_SECRET, body),
                                      "Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
        assert slack.wait_for_responses("served", 1, timeout=10)[0].blocks
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        wait_for_line(lines, r"modelbot stopped", seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = "".join(seen)
    assert SIGNING_SECRET not in log and slack.bot_token not in log
    assert all(line.endswith("\n") and "\n" not in line[:-1] for line in seen)


def test_log_lines_are_single_line_and_redact_secrets() -> None:
    import logging

    formatter = SafeOneLineFormatter(["my-signing-secret"])
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "token %s and %s at %s", (
            "xoxb-123-456-abc", "my-signing-secret", "postgresql://u:hunter2@db/x"), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line and "Traceback" in line
    for secret in ("xoxb-123-456-abc", "my-signing-secret", "hunter2"):
        assert secret not in line
    assert redact_text("xapp-1-A0-123 xoxp-9") == "xapp-[redacted] xoxp-[redacted]"


# ---- acks never wait for replies ----------------------------------------------------------------


def test_acks_do_not_wait_behind_replies_stuck_on_a_slow_slack(bot: RunningBot) -> None:
    """Slack's 3-second ack limit must hold even while earlier replies hang on Slack's side.

    Bolt acks from inside the listener, which runs in its executor: with a small pool, a few
    replies stuck on a slow response_url would hold every worker and new commands would not be
    acked at all (the user sees `operation_timeout`). 12 stuck replies, then one more command.
    """
    stuck = 12
    bot.slack.hang("response_url", seconds=30, count=stuck)
    try:
        for _ in range(stuck):
            assert bot.signed_post(bot.slack.slash_command_body("help", response_name=bot.unique("stuck"))).ok
        bot.slack.wait_for_hanging(stuck, timeout=10)
        body = bot.slack.slash_command_body("help", response_name="after")
        response = bot.http.post(bot.url + "/slack/events", data=body, timeout=3,  # Slack's own limit
                                 headers={**sign_request(SIGNING_SECRET, body),
                                          "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200
    finally:
        bot.slack.release()
    assert bot.slack.wait_for_responses("after", 1)
