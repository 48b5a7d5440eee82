"""Outage and restart (issue 6, acceptance 5): 200 alerts fire and resolve while Slack fails.

The alert engine runs here on a clock the test moves (one evaluation per simulated minute);
delivery is the real `modelbot deliver` in a child process, talking to the strict fake Slack
over HTTP. Slack answers 500, then 429 with Retry-After, then hangs; then a post hangs and the
deliverer is killed with SIGKILL before it hears back (Slack applies the post anyway), and a new
deliverer is started, which must find that post rather than send it again. Afterwards every outbox row is
delivered, and Slack shows every state change exactly once and in order per alert group: one
card per incident whose edits came in outbox order, the thread replies in outbox order, one
chart each. (The issue's two minutes of outage are compressed into seconds: the deliverer's
HTTP timeout, lease and backoff are shortened through MODELBOT_OUTBOX_*, and the simulated
clock of the engine does not depend on the wall clock.)
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.config.settings import Settings
from bot.delivery.jobs import metadata_outbox_id
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.registry import NewVersion
from bot.jobs.alerting import chart_pending, run_cycle
from bot.services import Services, open_services
from storage.models import OutboxMessage
from tests.delivery.support import eventually
from tests.slack_fake import SlackFake
from tests.slack_support import REPO, stderr_lines, wait_for_line

ALERTS = "C0ALERTS"
MODELS, METRICS = 40, ("error_rate", "latency_ms", "drift", "timeouts", "nulls")  # 40 × 5 = 200 alerts
# Before the fake's first message ts (1700000000): rows are written before Slack stamps their messages.
T0 = datetime.fromtimestamp(1_699_990_000, UTC)
POLICY = """
[alerts]
channel = "C0ALERTS"
group_wait = "30s"
group_interval = "5m"
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def policy_text() -> str:
    rules = "".join(f'\n[[alerts.rules]]\nmodel = "m{m:02d}"\nmetric = "{metric}"\nop = ">"\nthreshold = 1\n'
                    for m in range(MODELS) for metric in METRICS)
    return POLICY + rules


def deliverer_env(database_url: str, slack: SlackFake, policy: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MODELBOT_DATABASE_URL": database_url, "MODELBOT_CONFIG": str(policy), "MODELBOT_DB_LOCK_TIMEOUT": "10",
        "MODELBOT_SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token,
        "MODELBOT_OUTBOX_HTTP_TIMEOUT": "1", "MODELBOT_OUTBOX_LEASE_SECONDS": "3", "MODELBOT_OUTBOX_POLL_SECONDS": "0.05",
        "MODELBOT_OUTBOX_POST_INTERVAL": "0", "MODELBOT_OUTBOX_BACKOFF_BASE": "0.2", "MODELBOT_OUTBOX_BACKOFF_CAP": "1",
        "MODELBOT_OUTBOX_CONCURRENCY": "4",
        # rows carry the simulated (2023) clock; the deliverer's wall clock must not give up on them
        "MODELBOT_OUTBOX_GIVE_UP_HOURS": "1000000",
    }


class Deliverers:
    """`modelbot deliver` child processes; every one started is stopped at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[str] = []

    def start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "deliver"], cwd=REPO, env=self.env, text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        wait_for_line(stderr_lines(proc), r"outbox delivery started", self.logs, timeout=60)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# A valid 1×1 PNG: this test is about delivery; drawing 40 real charts on a loaded CI box takes minutes.
TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


@pytest.fixture
def world(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, Clock, SlackFake, Deliverers]]:
    policy = tmp_path / "modelbot.toml"
    policy.write_text(policy_text())
    monkeypatch.setattr("bot.blocks.digest_chart.render_png", lambda chart: TINY_PNG)
    clock = Clock()
    services = open_services(Settings(database_url=database_url, config_path=policy, config_required=True,
                                      db_lock_timeout_s=10), clock=clock)
    for m in range(MODELS):
        services.registry.register(NewVersion(model=f"m{m:02d}", artifact_uri="s3://x", actor="ci"))
        services.registry.promote(f"m{m:02d}", "1", "production", actor="ci")
    with SlackFake() as slack:
        deliverers = Deliverers(deliverer_env(database_url, slack, policy))
        try:
            yield services, clock, slack, deliverers
        finally:
            deliverers.close()
            services.close()


def minute(services: Services, clock: Clock, breaching: dict[int, set[str]]) -> None:
    """One simulated minute: every series reports (over the threshold where `breaching` says), then a cycle."""
    clock.now += timedelta(minutes=1)
    Samples(services.registry).record(
        [SampleIn(f"m{m:02d}", "production", metric, 5.0 if metric in breaching.get(m, ()) else 0.5, clock.now)
         for m in range(MODELS) for metric in METRICS], source="test")
    run_cycle(services)  # the two scheduler jobs
    chart_pending(services)


def unfinished(services: Services) -> int:
    with services.registry.reading() as session:
        return session.execute(sa.select(sa.func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status != "delivered")).scalar_one()


def test_outage_and_sigkill_deliver_every_state_change_once_in_order(world) -> None:  # type: ignore[no-untyped-def]
    services, clock, slack, deliverers = world
    first, second = range(0, MODELS // 2), range(MODELS // 2, MODELS)
    breaching: dict[int, set[str]] = {}
    first_deliverer = deliverers.start()

    slack.set_outage("fail", status=500)
    breaching.update({m: set(METRICS) for m in first})
    minute(services, clock, breaching)  # 100 alerts fire
    minute(services, clock, breaching)  # after group_wait: 20 cards
    breaching.update({m: set(METRICS) for m in second})
    minute(services, clock, breaching)
    minute(services, clock, breaching)  # 20 more cards
    slack.wait_for(lambda: sum(c.status == 500 for c in slack.calls) >= 10, 30, "the deliverer meets the 500s")

    slack.set_outage("rate_limit", retry_after=1)
    breaching.update({m: set(METRICS[2:]) for m in first})  # two alerts of each first-half model resolve
    minute(services, clock, breaching)
    minute(services, clock, breaching)
    minute(services, clock, breaching)  # group_interval after the cards: "changed" notices
    slack.wait_for(lambda: sum(c.status == 429 for c in slack.calls) >= 5, 30, "the deliverer meets 429s")

    slack.set_outage("hang", seconds=None)  # every call hangs past the deliverer's 1 s timeout
    slack.wait_for_hanging(3, timeout=30)
    slack.clear_outage()  # the held calls are answered now, to a client that gave up on them

    # the last straw: a post hangs, and the deliverer is killed before it hears back
    slack.hang("chat.postMessage", seconds=None, count=1)
    breaching.update({m: set(METRICS[2:]) for m in second})
    minute(services, clock, breaching)
    minute(services, clock, breaching)  # "changed" notices of the second half
    slack.wait_for_hanging(1, timeout=30)
    first_deliverer.send_signal(signal.SIGKILL)  # with that post in flight and rows leased
    assert first_deliverer.wait(timeout=20) == -signal.SIGKILL
    slack.release()  # Slack applies the post of the dead process, which never heard back
    deliverers.start()  # its successor must find it instead of posting it again

    for m in first:
        breaching[m] = set()
    minute(services, clock, breaching)  # the first incidents resolve
    minute(services, clock, breaching)
    for m in second:
        breaching[m] = set()
    minute(services, clock, breaching)  # the rest resolve
    slack.fail_next("chat.update", status=500, count=3)  # and a last stumble after the restart
    eventually(lambda: unfinished(services) == 0, timeout=60, what="every outbox row delivered")

    with services.registry.reading() as session:
        rows = session.execute(sa.select(OutboxMessage.id, OutboxMessage.topic, OutboxMessage.kind,
                                         OutboxMessage.template, OutboxMessage.message_key, OutboxMessage.data)
                               .order_by(OutboxMessage.id)).all()
    by_key: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for outbox_id, _topic, kind, template, key, _data in rows:
        by_key[key].append((outbox_id, kind, template))
    assert len(by_key) == MODELS  # one incident (card) per model
    assert {t for _, _, _, t, _, _ in rows} == {"alert_card", "alert_chart", "alert_changed", "alert_resolved"}

    cards = [m for m in slack.messages(ALERTS) if m.thread_ts in (None, m.ts)]
    assert len(cards) == MODELS, "every card posted exactly once"
    card_by_id = {metadata_outbox_id(c.history[0] if c.history else c.to_slack()): c for c in cards}
    files = slack.files()
    for key, entries in by_key.items():
        post = [i for i, kind, _ in entries if kind == "post"]
        assert len(post) == 1
        card = card_by_id[post[0]]
        # the card's versions, oldest first: the post, then every update once, in outbox order
        versions = [metadata_outbox_id(v) for v in card.history] + [metadata_outbox_id(card.to_slack())]
        assert versions == [i for i, kind, _ in entries if kind in ("post", "update")], key
        # thread replies: every one once, in outbox order
        replies = [metadata_outbox_id(r.to_slack()) for r in slack.thread(ALERTS, card.ts)]
        assert [r for r in replies if r is not None] == [i for i, kind, _ in entries if kind == "thread"], key
        assert [t for _, kind, t in entries if kind == "thread"] == ["alert_changed", "alert_resolved"], key
        group = key.split(":")[1]
        charts = [f for f in files if f.completed and f.filename == f"modelbot-alert-{group}.png"]
        assert len(charts) == 1 and charts[0].thread_ts == card.ts, key
        assert "Resolved" in card.blocks[0]["text"]["text"]
    statuses = {c.status for c in slack.calls}
    assert {500, 429} <= statuses  # the outage really happened
    with services.registry.reading() as session:
        results = session.execute(sa.select(OutboxMessage.result).where(OutboxMessage.attempts > 1)).scalars().all()
    assert any("found" in (r or {}) for r in results), "no unknown outcome was resolved by looking in Slack"
