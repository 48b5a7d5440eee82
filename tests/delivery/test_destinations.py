"""Order per destination, lanes and circuit breakers (issue 11, defect 1 and acceptance 1).

A webhook receiver that is down (refusing connections, or accepting them and never answering)
must not delay Slack messages about the same model, and a Slack outage must not delay webhooks.
A receiver that keeps failing is paused, announced once in the announce channel and on the
admins' App Home, probed with backoff, and resumes by itself. Credentials in a webhook URL are
used for the request and appear nowhere else.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main as cli
from bot.config.policy_file import load_policy
from bot.config.settings import Settings
from bot.delivery import DeliverySettings, build_worker
from bot.delivery.circuits import CircuitSettings
from bot.delivery.worker import DeliveryWorker
from bot.domain.deliveries import paused_destinations
from bot.domain.deployments import Deployments
from bot.domain.entities import as_utc
from bot.domain.policy import EnvironmentPolicy, Members, Policy, Webhook
from bot.domain.registry import NewVersion, Registry, utc_now
from bot.services import Services, open_services
from storage.db import Database
from storage.models import OutboxCircuit
from tests.delivery import support
from tests.delivery.support import (  # noqa: F401  (fixtures)
    APPROVALS,
    HOOK_SECRET,
    HOOK_SECRET_ENV,
    Clock,
    DeadReceiver,
    Deliverer,
    WebhookReceiver,
    clock_fixture,
    hooks_fixture,
)
from tests.slack_fake import SlackFake

ANNOUNCE = "C0GENERAL"
ADMIN = "U0ADMIN"
DEADLINE_S = 5.0


def policy_toml(hook_urls: list[str]) -> str:
    hooks = "".join(f'\n[[webhooks]]\nurl = "{url}"\nsecret_env = "{HOOK_SECRET_ENV}"\n' for url in hook_urls)
    return f"""
announce_channel = "{ANNOUNCE}"
[roles]
admins = ["{ADMIN}"]
[environments.staging]
approvals = 0
[environments.production]
approvals = 1
approvers = ["U0APPR1", "U0APPR2"]
approval_channel = "{APPROVALS}"
""" + hooks


@pytest.fixture
def live_slack() -> Iterator[SlackFake]:
    """Stamped with wall-clock ts like Slack: the deliverer runs on the real clock."""
    with support.slack_fake(ts_clock=time.time) as fake:
        yield fake


@pytest.fixture
def clock_slack() -> Iterator[SlackFake]:
    with support.slack_fake() as fake:
        fake.add_user(ADMIN)
        yield fake


# ---- acceptance 1: a dead receiver delays nothing else ----------------------------------------------


@pytest.mark.parametrize("down", ["refused", "hanging"])
def test_a_dead_webhook_receiver_delays_neither_the_card_nor_the_announcement(
    db: Database, database_url: str, live_slack: SlackFake, tmp_path: Path, down: str
) -> None:
    """`modelbot deliver` with its production timings (10 s HTTP timeout): webhooks of the same
    model sit ahead of the announcement and the approval card in the outbox, yet both arrive
    within 5 s. Six hanging receivers occupy every webhook sending thread and then some."""
    slack = live_slack
    with DeadReceiver() as dead:
        urls = [dead.refused_url] if down == "refused" else [dead.hanging_url(f"hooks/{i}") for i in range(6)]
        path = tmp_path / "modelbot.toml"
        path.write_text(policy_toml(urls))
        deliverer = Deliverer(database_url, slack, tmp_path, MODELBOT_CONFIG=str(path))
        try:
            deliverer.start()
            support.eventually(lambda: "outbox delivery started" in deliverer.logs(), timeout=30,
                               what="the deliverer is up")
            registry = Registry(db)
            deployments = Deployments(registry, load_policy(path))
            for version in (1, 2):
                registry.register(NewVersion(model="churn", artifact_uri=f"s3://m/churn/{version}", actor="ci"))

            started = time.monotonic()
            deployments.request_promotion("churn", "1", "staging", requester="U0DEPLOY", reason="first")
            deployments.request_promotion("churn", "2", "production", requester="U0DEPLOY", reason="ship it")
            slack.wait_for(lambda: slack.messages(ANNOUNCE) and slack.messages(APPROVALS), timeout=DEADLINE_S,
                           what="the announcement and the approval card")
            elapsed = time.monotonic() - started

            [announcement] = slack.messages(ANNOUNCE)
            [card] = slack.messages(APPROVALS)
            assert "churn" in (announcement.text or "") and "churn" in (card.text or "")
            assert elapsed < DEADLINE_S
            hooks = [r for r in support.rows(db) if r.kind == "webhook"]
            assert len(hooks) == len(urls) and not any(r.status == "delivered" for r in hooks)  # really down
            assert all(r.id < card_row_id(db) for r in hooks)  # they were ahead of the card
            if down == "hanging":
                support.eventually(lambda: dead.held >= 4, timeout=5, what="sends hanging on the receiver")
        finally:
            deliverer.kill_all()


def card_row_id(db: Database) -> int:
    [card] = [r for r in support.rows(db) if r.template == "approval_card" and r.kind == "post"]
    assert card.id is not None
    return card.id


def test_a_slack_outage_does_not_delay_webhooks(db: Database, live_slack: SlackFake,
                                                hooks: WebhookReceiver) -> None:
    """Slack hangs every call; the Slack lane's threads are all held, and webhooks still go out."""
    slack = live_slack
    slack.set_outage("hang", seconds=None)
    worker = DeliveryWorker(db, support.web_client(slack), clock=utc_now, env={HOOK_SECRET_ENV: HOOK_SECRET},
                            post_interval_s=0)
    clock = Clock(utc_now())
    for channel in ("C0ONE", "C0TWO", "C0THREE", "C0FOUR", "C0STAGING", "C0PROD"):
        support.enqueue(db, clock, channel=channel)
    hook = support.enqueue(db, clock, kind="webhook", template="deployment.changed", channel=None,
                           data={"url": hooks.url, "secret_env": HOOK_SECRET_ENV, "body": {"event": "x"}})
    with running(worker):
        slack.wait_for(lambda: slack.hanging >= 4, timeout=DEADLINE_S, what="Slack calls held")
        started = time.monotonic()
        hooks.wait_for(lambda: hooks.deliveries, timeout=DEADLINE_S)
        assert time.monotonic() - started < DEADLINE_S
        assert hooks.deliveries[0].id == str(hook)
        slack.clear_outage()


class running:
    """`worker.run_forever` in a thread for the length of a `with` block."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker, self.stop = worker, threading.Event()
        self.thread = threading.Thread(target=worker.run_forever, args=(self.stop,), daemon=True)

    def __enter__(self) -> DeliveryWorker:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.worker.close()


# ---- circuit breaker --------------------------------------------------------------------------------


def services_for(database_url: str, slack: SlackFake, clock: Clock, hook_url: str) -> Services:
    policy = Policy(
        environments={"staging": EnvironmentPolicy("staging"),
                      "production": EnvironmentPolicy("production", approvals=1, approvers=Members(("U0APPR1",)),
                                                      approval_channel=APPROVALS)},
        admins=Members((ADMIN,)), webhooks=(Webhook(url=hook_url, secret_env=HOOK_SECRET_ENV),),
        announce_channel=ANNOUNCE,
    )
    settings = Settings(database_url=database_url, slack_api_url=slack.api_url, slack_bot_token=slack.bot_token)
    return open_services(settings, policy=policy, clock=clock)


def settle(worker: DeliveryWorker, clock: Clock, until: Callable[[], object], what: str, *, step_s: float = 0.5,
           max_steps: int = 2000) -> None:
    """Run rounds, moving the clock on when nothing is due, until `until()` holds."""
    for _ in range(max_steps):
        if until():
            return
        if worker.run_once() == 0:
            clock.advance(step_s)
    raise AssertionError(f"never: {what}")


def circuit(db: Database) -> OutboxCircuit:
    """The one circuit of the test (a closed one before the first failure)."""
    with db.read() as session:
        rows = session.exec(select(OutboxCircuit)).all()
    assert len(rows) <= 1
    return rows[0] if rows else OutboxCircuit(key="-", updated_at=utc_now())


def test_a_failing_receiver_is_paused_announced_once_probed_and_resumes(
    database_url: str, clock_slack: SlackFake, clock: Clock, hooks: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    slack = clock_slack
    monkeypatch.setenv(HOOK_SECRET_ENV, HOOK_SECRET)
    services = services_for(database_url, slack, clock, hooks.url)
    db = services.db
    worker = build_worker(services, DeliverySettings(
        post_interval_s=0, circuits=CircuitSettings(failures=3, pause_base_s=60, pause_cap_s=600)))
    registry = services.registry
    for version in (1, 2, 3):
        registry.register(NewVersion(model="churn", artifact_uri=f"s3://m/churn/{version}", actor="ci"))
    hooks.answer(503, count=4)  # three to open the circuit, one failed probe
    for version in ("1", "2", "3"):
        services.deployments.request_promotion("churn", version, "staging", requester="U0DEPLOY")

    # three failures of the head row open the circuit; Slack announcements are not held up meanwhile
    settle(worker, clock, lambda: circuit(db).state == "open", "the circuit opens")
    assert hooks.refused == 3 and len([m for m in slack.messages(ANNOUNCE) if "churn" in (m.text or "")]) == 3
    [paused] = paused_destinations(db)
    assert paused.key == f"webhook:{hooks.url}" and paused.waiting == 3 and paused.failures == 3
    assert "HTTP 503" in (paused.last_error or "")
    settle(worker, clock, lambda: any("paused" in (m.text or "") for m in slack.messages(ANNOUNCE)),
           "the announcement", step_s=0.1, max_steps=50)
    settle(worker, clock, lambda: "Deliveries paused" in json.dumps(slack.home_view(ADMIN) or {}),
           "the admins' Home shows it", step_s=0.1, max_steps=50)
    monkeypatch.setenv("MODELBOT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["outbox", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["destination"] for p in listed["paused"]] == [f"webhook:{hooks.url}"]
    assert listed["paused"][0]["waiting"] == 3

    # paused: nothing is sent to it, however often the worker looks
    pause_end = circuit(db).paused_until
    assert pause_end is not None
    while clock() + timedelta(seconds=1) < as_utc(pause_end):
        worker.run_once()
        clock.advance(1)
    assert hooks.refused == 3

    # the pause ends: one probe (not three rows), it fails, a longer pause, no second announcement
    settle(worker, clock, lambda: hooks.refused == 4, "a probe")
    assert circuit(db).state == "open" and circuit(db).trips == 2
    assert len([r for r in support.rows(db) if r.template == "delivery_paused"]) == 1

    # the receiver is back: the next probe closes the circuit and everything that waited goes, in order
    settle(worker, clock, lambda: len(hooks.deliveries) == 3, "the waiting webhooks")
    assert circuit(db).state == "closed" and paused_destinations(db) == []
    assert [int(d.id) for d in hooks.deliveries] == sorted(int(d.id) for d in hooks.deliveries)
    settle(worker, clock, lambda: support.unfinished(db) == 0, "the outbox drains", step_s=0.1)
    [notice] = [m for m in slack.messages(ANNOUNCE) if "Deliveries to" in (m.text or "")]
    assert "resumed" in (notice.text or "") and len(notice.history) == 1  # edited in place, never reposted
    assert "Deliveries paused" not in json.dumps(slack.home_view(ADMIN) or {})
    assert len(slack.home_views(ADMIN)) >= 2
    services.close()


# ---- credentials in a webhook URL -------------------------------------------------------------------


def test_webhook_url_credentials_are_sent_but_never_stored_logged_or_shown(
    database_url: str, clock_slack: SlackFake, clock: Clock, hooks: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    slack = clock_slack
    password, token = "pw-s3cret-1", "tok-s3cret-2"
    url = hooks.url.replace("http://", f"http://hookuser:{password}@") + f"?token={token}"
    monkeypatch.setenv(HOOK_SECRET_ENV, HOOK_SECRET)
    services = services_for(database_url, slack, clock, url)
    db = services.db
    worker = build_worker(services, DeliverySettings(post_interval_s=0))
    for version in (1, 2):
        services.registry.register(NewVersion(model="churn", artifact_uri=f"s3://m/churn/{version}", actor="ci"))
    hooks.answer(503)
    services.deployments.request_promotion("churn", "1", "staging", requester="U0DEPLOY")
    caplog.set_level(logging.INFO)

    settle(worker, clock, lambda: hooks.refused == 1, "a first, failing attempt")
    monkeypatch.setenv("MODELBOT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["outbox", "--all", "--json"]) == 0
    assert cli.main(["outbox", "--all"]) == 0
    shown = capsys.readouterr().out
    assert "hookuser:[redacted]@" in shown and "token=[redacted]" in shown

    settle(worker, clock, lambda: hooks.deliveries, "the delivery")
    [delivery] = hooks.deliveries
    assert delivery.headers["authorization"] == "Basic " + base64.b64encode(f"hookuser:{password}".encode()).decode()
    stored = json.dumps([{k: str(v) for k, v in r.model_dump().items()} for r in support.rows(db)])
    for secret in (password, token):
        assert secret not in stored and secret not in shown and secret not in caplog.text

    # a worker that has not loaded the policy cannot guess the credentials: it fails, saying so
    services.deployments.request_promotion("churn", "2", "staging", requester="U0DEPLOY")
    plain = support.worker(db, slack, clock)
    settle(plain, clock, lambda: support.unfinished(db) == 0, "the second webhook settles")
    [failed] = [r for r in support.rows(db) if r.status == "failed"]
    assert failed.kind == "webhook" and "credentials of this URL are not stored" in (failed.last_error or "")
    services.close()
