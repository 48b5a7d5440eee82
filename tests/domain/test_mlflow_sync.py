"""MLflow stays the registry of record: live two-way sync against a real `mlflow server` (issue 14, acceptance 1).

Everything is real except Slack: MLflow 3.17.2 (SQL backend, started here from the MLflow
virtualenv) sends its signed webhooks over HTTP to the bot's web app on 127.0.0.1; versions
are registered and aliases moved with MLflow's own `MlflowClient` (tests/support/mlflow_rpc.py);
people act through signed Slack requests; the outbox worker delivers cards to the strict fake
Slack and alias writes to MLflow, where `get_model_version_by_alias` checks them.

MLflow refuses webhooks to loopback addresses and plain http unless its server sets
MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true and MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https; this
module's server sets both (tests/support/mlflow_server.py). The refusal itself, and delivery
by polling alone, are covered against a server without them in test_mlflow_import.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.blocks import approvals as cards
from bot.blocks import mlflow as mlflow_cards
from bot.cli.main import main
from bot.config.mlflow import mlflow_config
from bot.delivery.mlflow_aliases import KIND, build_sender
from bot.delivery.worker import DeliveryWorker
from bot.domain.mlflow.inbound import MlflowSync, PollReport
from bot.listeners.app import build_app
from bot.services import Services, open_services
from bot.slack.client import make_web_client
from bot.sources.mlflow import sync_client
from bot.web import mlflow_webhook
from bot.web.app import create_web_app
from bot.web.server import ServerThread
from storage.models import AuditEvent, MlflowDelivery, OutboxMessage
from storage.queries import registry as queries
from tests.delivery.support import Clock, drain, eventually
from tests.slack_fake import Message as SlackMessage
from tests.slack_fake import ResponsePost, SlackFake
from tests.slack_support import CompletionTracker, RunningBot, bot_settings, buttons, section_texts
from tests.support.mlflow_server import MlflowProcess, MlflowRpc, mlflow_python
from tests.web.test_mlflow_webhook import mlflow_signature

MODELS = "C0MODELS"
APPROVALS = "C0APPROVALS"
SECRET_ENV = "MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET"
SECRET = "mlflow-whsec-0123456789abcdef"
POLICY = """
[roles]
deployers = ["U0ALICE", "U0BOB"]

[environments.staging]
approvals = 0

[environments.production]
approvals = 1
approvers = ["U0APPR"]
approval_channel = "C0APPROVALS"

[mlflow]
tracking_uri = "{tracking_uri}"
webhook_secret_env = "MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET"
new_version_channel = "C0MODELS"
models = ["{model}"]
aliases = {{ staging = "staging", production = "champion" }}
poll_interval = "5s"
external_moves = "{moves}"
"""


@dataclass
class Mlflow:
    server: MlflowProcess
    rpc: MlflowRpc


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlflow]:
    python = mlflow_python()
    root = tmp_path_factory.mktemp("mlflow-sync")
    server = MlflowProcess(python, root, webhooks=True).start()
    rpc = MlflowRpc(python, server.url)
    try:
        yield Mlflow(server, rpc)
    finally:
        rpc.close()
        server.stop()


class Synced:
    """The HTTP-mode bot following one MLflow model, plus helpers that act like people and like MLflow users."""

    def __init__(self, bot: RunningBot, worker: DeliveryWorker, mlflow: Mlflow, model: str, policy: Path) -> None:
        self.bot, self.worker, self.mlflow, self.model, self.policy = bot, worker, mlflow, model, policy
        self.slack = bot.slack
        self.rpc = mlflow.rpc

    @property
    def services(self) -> Services:
        return self.bot.services

    def cli(self, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    def register(self, **metrics: float) -> int:
        """A new version, registered the MLflow way; returns once modelbot has it (webhook or poll)."""
        answer = self.rpc.call("register", name=self.model, metrics=metrics, params={"depth": "5"})
        number = int(answer["version"])
        eventually(lambda: self.has_version(number), timeout=30, what=f"{self.model} v{number} in modelbot")
        return number

    def has_version(self, number: int) -> bool:
        with self.bot.registry.reading() as session:
            model = queries.model_by_key(session, self.model)
            return model is not None and queries.version(session, model.id, number) is not None  # type: ignore[arg-type]

    def deliver(self) -> None:
        """Run the outbox worker until nothing is due; every row must be delivered."""
        for _ in range(200):
            if self.worker.run_once() == 0:
                break
        with self.bot.registry.reading() as session:
            stuck = session.execute(sa.select(OutboxMessage.id, OutboxMessage.template, OutboxMessage.status,
                                              OutboxMessage.last_error)
                                    .where(OutboxMessage.status != "delivered")).all()
        assert not stuck, stuck

    def click(self, message: SlackMessage | ResponsePost, action_id: str, user: str, channel: str) -> ResponsePost:
        value = next(b["value"] for b in buttons(message.blocks) if b["action_id"] == action_id)
        name = self.bot.unique("click")
        body = self.slack.block_actions_body(action_id, value, response_name=name, user_id=user, channel_id=channel)
        response = self.bot.signed_post(body)
        assert response.status_code == 200, (response.status_code, response.text)
        return self.slack.wait_for_responses(name, 1, 10)[0]

    def card_of(self, number: int) -> SlackMessage:
        return next(m for m in self.slack.messages(MODELS) if f"{self.model} v{number}" in m.text)

    def alias(self, alias: str) -> int | None:
        return self.rpc.call("alias", name=self.model, alias=alias)

    def pointer(self, environment: str) -> int | None:
        return self.bot.registry.environment_state(self.model, environment).stable

    def audit(self, action: str) -> list[AuditEvent]:
        with self.bot.registry.reading() as session:
            return list(session.execute(sa.select(AuditEvent).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.id)).scalars())

    def poll(self) -> PollReport:
        """One run of the `mlflow-poll` job's reconciliation."""
        settings = mlflow_config(self.services.policy)
        assert settings is not None
        with sync_client(settings) as client:
            return MlflowSync(self.services.registry, self.services.policy, settings, client).poll()

    def deliveries(self) -> int:
        with self.bot.registry.reading() as session:
            return session.execute(sa.select(sa.func.count()).select_from(MlflowDelivery)).scalar_one()


def start_synced(database_url: str, mlflow: Mlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 slack: SlackFake, *, moves: str = "report", clock: Any = None) -> tuple[Synced, Any]:
    model = f"churn-{uuid.uuid4().hex[:8]}"
    policy = tmp_path / "modelbot.toml"
    policy.write_text(POLICY.format(tracking_uri=mlflow.server.url, model=model, moves=moves))
    slack.add_user("U0APPR", name="appr")
    slack.add_channel(APPROVALS, name="model-approvals")
    monkeypatch.setenv(SECRET_ENV, SECRET)
    env = {"MODELBOT_CONFIG": str(policy), "MODELBOT_DATABASE_URL": database_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    services = open_services(bot_settings(database_url, slack, **env), **({"clock": clock} if clock else {}))
    app = build_app(services, "http")
    tracker = CompletionTracker(app.listener_runner.listener_completion_handler)
    app.listener_runner.listener_completion_handler = tracker
    server = ServerThread(create_web_app(services, app, routers=[mlflow_webhook.router(services)])).start()
    bot = RunningBot(url=server.url, slack=slack, services=services, app=app, listeners=tracker)
    sender = build_sender(services)
    assert sender is not None
    worker = DeliveryWorker(services.db, make_web_client(slack.bot_token, slack.api_url, retries=0),
                            clock=clock or services.clock, post_interval_s=0.0, concurrency=2,
                            backoff_base_s=2.0, backoff_cap_s=30.0, senders={KIND: sender.send})

    def stop() -> None:
        worker.close()
        bot.http.close()
        server.stop()
        app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
        services.close()

    return Synced(bot, worker, mlflow, model, policy), stop


@pytest.fixture
def synced(database_url: str, mlflow: Mlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack: SlackFake,
           capsys: pytest.CaptureFixture[str]) -> Iterator[Synced]:
    s, stop = start_synced(database_url, mlflow, tmp_path, monkeypatch, slack)
    try:
        setup(s, capsys)
        yield s
    finally:
        stop()


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


def setup(s: Synced, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`modelbot mlflow setup`, pointing MLflow's webhook at this bot, with a test delivery."""
    code, out, err = s.cli("mlflow", "setup", "--public-url", s.bot.url, "--json", capsys=capsys)
    assert code == 0, err
    return json.loads(out)


def approve_production(s: Synced, reply: ResponsePost) -> None:
    """The request the click opened, approved by the approver on its card in the approval channel."""
    text = section_texts(reply.blocks)[0]
    assert "Request *#" in text, text
    s.deliver()
    card = s.slack.messages(APPROVALS)[-1]
    answer = s.click(card, cards.APPROVE_ACTION, "U0APPR", APPROVALS)
    assert "approved" in "\n".join(section_texts(answer.blocks)).lower(), section_texts(answer.blocks)
    s.deliver()


# ---- acceptance 1: MLflow → Slack → MLflow -----------------------------------------------------------


def test_a_version_registered_in_mlflow_reaches_slack_and_slack_decisions_move_the_alias(
    synced: Synced, capsys: pytest.CaptureFixture[str]
) -> None:
    s = synced
    hook = setup(s, capsys)  # again: the webhook named "modelbot" is updated, not duplicated
    assert hook["action"] == "updated" and hook["test"]["success"] and hook["url"].endswith(mlflow_webhook.WEBHOOK_PATH)
    assert set(hook["events"]) >= {"model_version.created", "model_version_alias.created"}

    v1 = s.register(auc=0.90, log_loss=0.30)
    s.deliver()
    card = s.card_of(v1)
    shown = s.bot.registry.show(s.model, str(v1))
    assert shown.metrics == {"auc": 0.90, "log_loss": 0.30} and shown.params == {"depth": "5"}
    assert shown.run_id and shown.source == f"runs:/{shown.run_id}/model"
    text = "\n".join(section_texts(card.blocks))
    assert f"New version in MLflow: {s.model} v{v1}" in card.text and "nothing serves production yet" in text
    assert [b["text"]["text"] for b in buttons(card.blocks)] == ["Promote to staging", "Request production"]

    # Promote to staging (no approvals there) moves at once; the alias follows
    reply = s.click(card, mlflow_cards.PROMOTE_ACTION, "U0ALICE", MODELS)
    assert s.pointer("staging") == v1, section_texts(reply.blocks)
    s.deliver()
    assert s.alias("staging") == v1

    # Request production opens a request; approving it in Slack sets MLflow's champion
    reply = s.click(card, mlflow_cards.REQUEST_ACTION, "U0ALICE", MODELS)
    approve_production(s, reply)
    assert s.pointer("production") == v1 and s.alias("champion") == v1

    # a better v2: its card compares with what production serves, ▲ by each metric's direction
    v2 = s.register(auc=0.93, log_loss=0.25)
    s.deliver()
    card = s.card_of(v2)
    table = "\n".join(section_texts(card.blocks))
    rows = {line.split()[0]: line.rstrip("`") for line in table.splitlines() if line.startswith(("auc", "log_loss"))}
    assert f"v{v1} (production)" in table and rows["auc"].endswith("+0.03 ▲") and rows["log_loss"].endswith("-0.05 ▲")
    assert buttons(card.blocks)[0]["text"]["text"] == f"Compare with v{v1}"
    compared = s.click(card, mlflow_cards.COMPARE_ACTION, "U0BOB", MODELS)
    assert compared.text == f"{s.model} v{v1} vs v{v2}: auc better in v{v2}; log_loss better in v{v2}"
    approve_production(s, s.click(card, mlflow_cards.REQUEST_ACTION, "U0ALICE", MODELS))
    assert s.pointer("production") == v2 and s.alias("champion") == v2

    # a rollback in Slack moves it back
    reply = s.bot.command(f"rollback {s.model} production", user_id="U0ALICE")
    s.click(reply, cards.ROLLBACK_ACTION, "U0ALICE", "C0GENERAL")
    s.deliver()
    assert s.pointer("production") == v1 and s.alias("champion") == v1

    # every write audited once, by the alias it set; `/model show @production` says it is in sync
    writes = [(e.environment, e.to_version) for e in s.audit("mlflow_alias_set")]
    assert writes == [("staging", v1), ("production", v1), ("production", v2), ("production", v1)]
    shown = s.bot.command(f"show {s.model} @production")
    assert f"MLflow alias champion → v{v1} ✓" in json.dumps(shown.blocks, ensure_ascii=False)
    # MLflow echoed each write back as a webhook: none of them counts as a move made outside modelbot
    eventually(lambda: s.deliveries() >= 6, timeout=30, what="MLflow's webhooks for our own alias writes")
    assert s.audit("mlflow_external_move") == []
    assert not [m for m in s.slack.messages(APPROVALS) if "outside modelbot" in m.text]

    # the status verb: followed, last event, no drift (aliases read from MLflow just now)
    code, out, err = s.cli("mlflow", "status", "--json", capsys=capsys)
    status = json.loads(out)
    assert code == 0, err
    assert status["followed"] == [s.model] and status["live"] and status["drift"] == []
    assert status["last_event"]["event"].startswith("model_version") and status["failed_writes"] == []


@pytest.mark.parametrize("moves", ["report", "accept", "revert"])
def test_an_alias_moved_in_mlflow_directly_is_handled_per_the_setting(
    sqlite_url: str, mlflow: Mlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack: SlackFake,
    capsys: pytest.CaptureFixture[str], moves: str,
) -> None:
    s, stop = start_synced(sqlite_url, mlflow, tmp_path, monkeypatch, slack, moves=moves)
    try:
        setup(s, capsys)
        v1, v2 = s.register(auc=0.9), s.register(auc=0.8)
        s.deliver()
        approve_production(s, s.click(s.card_of(v1), mlflow_cards.REQUEST_ACTION, "U0ALICE", MODELS))
        assert s.alias("champion") == v1

        s.rpc.call("set_alias", name=s.model, alias="champion", version=v2)  # someone in MLflow's UI
        eventually(lambda: s.audit("mlflow_external_move") or s.pointer("production") == v2, timeout=30,
                   what="the external move handled")
        s.deliver()
        notices = [m for m in s.slack.messages(APPROVALS) if "outside modelbot" in m.text]
        history = s.bot.registry.history(s.model, "production", limit=100)
        if moves == "report":
            assert s.pointer("production") == v1 and s.alias("champion") == v2
            (notice,) = notices
            assert f"moved to *v{v2}*" in section_texts(notice.blocks)[0] and "production stays at v1" in notice.text
            (row,) = s.audit("mlflow_external_move")
            assert (row.actor, row.from_version, row.to_version) == ("mlflow-external", v1, v2)
        elif moves == "accept":
            assert s.pointer("production") == v2 and s.alias("champion") == v2
            move = history[-1]
            assert (move.action, move.actor, move.to_version) == ("promote", "mlflow-external", v2)
            assert "outside modelbot (external_moves = accept)" in (move.reason or "")
        else:
            eventually(lambda: s.alias("champion") == v1, timeout=30, what="champion put back")
            assert s.pointer("production") == v1
            (notice,) = notices
            assert "put back to v1" in notice.text
            (row,) = s.audit("mlflow_external_move")
            assert "(external_moves = revert)" in (row.reason or "")
        # handled once: the echo of a revert, and a poll after it all, change nothing more
        before = (len(s.audit("mlflow_external_move")), len(history))
        s.poll()
        s.deliver()
        assert (len(s.audit("mlflow_external_move")), len(s.bot.registry.history(s.model, "production",
                                                                                  limit=100))) == before
    finally:
        stop()


def test_with_mlflow_down_for_two_minutes_alias_writes_queue_and_complete_once(
    sqlite_url: str, mlflow: Mlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack: SlackFake,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock(start=datetime.now(UTC))
    s, stop = start_synced(sqlite_url, mlflow, tmp_path, monkeypatch, slack, clock=clock)
    try:
        setup(s, capsys)
        versions = [s.register(auc=0.8 + n / 100) for n in range(3)]
        drain(s.services.db, s.worker, clock)  # the cards
        mlflow.server.stop()
        try:
            for number in versions:  # three decisions while MLflow is away
                s.services.deployments.request_promotion(s.model, str(number), "staging", requester="U0ALICE")
            outage_end = clock() + timedelta(minutes=2)
            while clock() < outage_end:
                s.worker.run_once()
                clock.advance(5)
            with s.bot.registry.reading() as session:
                rows = session.execute(sa.select(OutboxMessage).where(OutboxMessage.kind == KIND)
                                       .order_by(OutboxMessage.id)).scalars().all()
            assert [r.status for r in rows] == ["pending"] * 3
            assert rows[0].attempts >= 3 and rows[1].attempts == rows[2].attempts == 0  # in order, head first
            assert "could not be reached" in (rows[0].last_error or "")
            shown = json.dumps(s.bot.command(f"show {s.model} @staging").blocks, ensure_ascii=False)
            assert f"MLflow alias staging: v{versions[-1]} waiting to be written (3 writes queued; attempt" in shown
            assert "could not be reached" in shown and "staging-canary" not in shown
        finally:
            mlflow.server.start()
        drain(s.services.db, s.worker, clock)
        assert s.alias("staging") == versions[-1]
        with s.bot.registry.reading() as session:
            rows = session.execute(sa.select(OutboxMessage).where(OutboxMessage.kind == KIND)
                                   .order_by(OutboxMessage.id)).scalars().all()
        assert [r.status for r in rows] == ["delivered"] * 3
        assert [(e.environment, e.to_version) for e in s.audit("mlflow_alias_set")] == [
            ("staging", n) for n in versions]  # each write once, in the order decided
        assert s.audit("mlflow_external_move") == []
    finally:
        stop()


def test_a_delivery_mlflow_repeats_and_the_poll_after_it_change_nothing(
    sqlite_url: str, mlflow: Mlflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack: SlackFake,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s, stop = start_synced(sqlite_url, mlflow, tmp_path, monkeypatch, slack)
    try:
        setup(s, capsys)
        number = s.register(auc=0.9)
        s.deliver()
        before = (s.bot.row_counts(), len(s.slack.messages(MODELS)), s.deliveries())
        body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "2026-12-06T00:00:00Z",
                           "data": {"name": s.model, "version": str(number), "source": "x", "run_id": None,
                                    "tags": {}, "description": None}}).encode()
        stamp = str(int(datetime.now(UTC).timestamp()))
        answers = []
        for delivery_id in ("repeated-id", "repeated-id", "another-id"):  # MLflow's retry, then a second event
            headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id,
                       "X-MLflow-Timestamp": stamp,
                       "X-MLflow-Signature": mlflow_signature(SECRET, delivery_id, stamp, body)}
            response = s.bot.http.post(s.bot.url + mlflow_webhook.WEBHOOK_PATH, data=body, headers=headers,
                                       timeout=10)
            assert response.status_code == 200, response.text
            answers.append(response.json()["status"])
        assert answers == ["applied", "duplicate", "applied"]
        assert s.poll().errors == []
        s.deliver()
        after = (s.bot.row_counts(), len(s.slack.messages(MODELS)), s.deliveries())
        assert after == (before[0], before[1], before[2] + 2)  # two new delivery ids recorded; nothing else
    finally:
        stop()
