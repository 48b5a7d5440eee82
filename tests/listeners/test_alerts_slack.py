"""Alerting end to end over Slack (issue 6, acceptance 3, 4 and 7).

Everything is real except Slack: signed slash commands and button clicks travel over HTTP into
the web app (uvicorn → Bolt → listeners → dispatch → domain → SQLite/PostgreSQL); the alert
cycle runs as the scheduler job runs it (`run_cycle`), and the outbox worker delivers what it
wrote to the strict fake Slack (cards, in-place edits, thread replies, the chart upload).
Time is a clock the test moves; nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.blocks import alerts as cards
from bot.delivery.worker import DeliveryWorker
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.registry import NewVersion
from bot.jobs.alerting import chart_pending, run_cycle
from bot.listeners.app import build_app
from bot.services import open_services
from bot.slack.client import make_web_client
from bot.web.app import create_web_app
from bot.web.server import ServerThread
from storage.models import AlertRule, OutboxMessage, Silence
from tests.slack_fake import Message as SlackMessage
from tests.slack_fake import ResponsePost, SlackFake
from tests.slack_support import CompletionTracker, RunningBot, bot_settings, buttons, section_texts
from tests.slack_support import slack_fixture as slack_fixture

ALERTS = "C0ALERTS"
DEPLOYS = "C0DEPLOYS"
DEPLOYER, OTHER_DEPLOYER, VIEWER = "U0ALICE", "U0CAROL", "U0BOB"
POLICY = """
announce_channel = "C0DEPLOYS"

[roles]
admins = ["U0ADMIN"]
deployers = ["U0ALICE", "U0CAROL"]

[environments.staging]

[environments.production]

[alerts]
channel = "C0ALERTS"
group_wait = "30s"
repeat_interval = "30m"
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


class Alerting:
    """The running bot, its delivery worker and the clock, with helpers that act like people."""

    def __init__(self, bot: RunningBot, worker: DeliveryWorker, clock: Clock) -> None:
        self.bot, self.worker, self.clock = bot, worker, clock
        self.slack = bot.slack
        self.samples = Samples(bot.registry)

    def command(self, text: str, user: str = DEPLOYER) -> ResponsePost:
        return self.bot.command(text, user_id=user)

    def click(self, action_id: str, value: str, user: str, message_ts: str = "1.000100") -> ResponsePost:
        name = self.bot.unique("click")
        body = self.slack.block_actions_body(action_id, value, response_name=name, user_id=user, channel_id=ALERTS,
                                             message_ts=message_ts)
        assert self.bot.signed_post(body).status_code == 200
        return self.slack.wait_for_responses(name, 1, 10)[0]

    def observe(self, metric: str, value: float, version: int | None = None) -> None:
        self.samples.record([SampleIn("churn", "production", metric, value, self.clock.now, version=version)],
                            source="test")

    def minute(self, minutes: int = 1, **values: float) -> None:
        """Time passes: the sources report, the scheduler evaluates, the worker delivers."""
        self.clock.now += timedelta(minutes=minutes)
        for metric, value in values.items():
            self.observe(metric, value)
        run_cycle(self.bot.services)  # the two scheduler jobs, `evaluate-alerts` and `alert-charts`
        chart_pending(self.bot.services)
        self.deliver()

    def deliver(self) -> None:
        for _ in range(100):
            if self.worker.run_once() == 0:
                break
        with self.bot.registry.reading() as session:
            stuck = session.execute(sa.select(OutboxMessage.id, OutboxMessage.template, OutboxMessage.last_error)
                                    .where(OutboxMessage.status != "delivered")).all()
        assert not stuck, stuck

    def card(self) -> SlackMessage:
        cards_posted = [m for m in self.slack.messages(ALERTS) if (m.blocks or [{}])[0].get("type") == "header"]
        assert cards_posted, "no alert card was posted"
        return cards_posted[-1]

    def thread(self) -> list[SlackMessage]:
        return self.slack.thread(ALERTS, self.card().ts)

    def count(self, model: Any) -> int:
        with self.bot.registry.reading() as session:
            return session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


@pytest.fixture
def alerting(database_url: str, slack: SlackFake, tmp_path: Path) -> Iterator[Alerting]:
    slack.add_user("U0ADMIN", name="admin")
    slack.add_channel(DEPLOYS, name="deploys")
    policy = tmp_path / "modelbot.toml"
    policy.write_text(POLICY)
    clock = Clock()
    services = open_services(bot_settings(database_url, slack, MODELBOT_CONFIG=str(policy)), clock=clock)
    app = build_app(services, "http")
    tracker = CompletionTracker(app.listener_runner.listener_completion_handler)
    app.listener_runner.listener_completion_handler = tracker
    server = ServerThread(create_web_app(services, app)).start()
    bot = RunningBot(url=server.url, slack=slack, services=services, app=app, listeners=tracker)
    worker = DeliveryWorker(services.db, make_web_client(slack.bot_token, slack.api_url, retries=0), clock=clock,
                            post_interval_s=0.0, concurrency=2)
    registry = services.registry
    for version in (1, 2, 3):
        registry.register(NewVersion(model="churn", artifact_uri=f"s3://models/churn/{version}", actor="ci",
                                     metrics={"auc": 0.9}))
    registry.promote("churn", "1", "production", actor="ci")
    registry.promote("churn", "2", "production", actor="ci")  # v1 is kept warm for rollback
    a = Alerting(bot, worker, clock)
    a.observe("error_rate", 0.01)
    a.observe("latency_p95_ms", 120.0)
    try:
        yield a
    finally:
        worker.close()
        bot.http.close()
        server.stop()
        app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
        services.close()


def text_of(message: SlackMessage | ResponsePost) -> str:
    return "\n".join(section_texts(message.blocks))


def value_of(message: SlackMessage, action_id: str) -> str:
    return next(b["value"] for b in buttons(message.blocks) if b["action_id"] == action_id)


def warning(reply: ResponsePost) -> str:
    text = text_of(reply)
    assert reply.response_type == "ephemeral" and text.startswith(":warning:"), text
    return text


# ---- acceptance 3 -----------------------------------------------------------------------------------


def test_card_buttons_obey_roles_ack_shows_who_and_a_silence_mutes_until_it_ends(alerting: Alerting) -> None:
    a = alerting
    reply = a.command(f"alert add churn error_rate > 0.05 critical <#{ALERTS}|ml-alerts>")
    assert "Rule *#1* added" in text_of(reply), text_of(reply)
    for _ in range(2):  # fires at once; the card waits group_wait (30 s) so alerts firing together arrive together
        a.minute(error_rate=0.09)
    card = a.card()
    assert card.blocks[0]["text"]["text"] == "1 alert firing: churn · production"
    assert "*error_rate* 0.09 &gt; 0.05 · critical · stable v2" in text_of(card)
    assert "Not acknowledged yet" in text_of(card)
    assert {b["action_id"] for b in buttons(card.blocks)} == {
        cards.ACK_ACTION, cards.SILENCE_1H_ACTION, cards.SILENCE_1D_ACTION, cards.SILENCE_CUSTOM_ACTION,
        cards.ROLLBACK_ACTION}
    [chart] = a.slack.files()  # the chart of the metric around the breach, in the card's thread
    assert chart.filename.endswith(".png") and chart.thread_ts == card.ts and chart.content[:4] == b"\x89PNG"

    # Bob is no deployer: every button refuses him with the reason, and nothing changes
    for action in (cards.ACK_ACTION, cards.SILENCE_1D_ACTION, cards.ROLLBACK_ACTION):
        refusal = warning(a.click(action, value_of(card, action), VIEWER))
        assert "only deployers (U0ALICE, U0CAROL) and admins" in refusal, refusal
    assert a.count(Silence) == 0
    assert a.bot.registry.environment_state("churn", "production").stable == 2

    # Carol acknowledges: she is told, and the card (edited through the outbox) shows who is on it
    note = a.click(cards.ACK_ACTION, value_of(card, cards.ACK_ACTION), OTHER_DEPLOYER)
    assert "You acknowledged alert #1" in text_of(note)
    a.deliver()
    card = a.card()
    assert "Acknowledged by <@U0CAROL>" in text_of(card)
    assert cards.ACK_ACTION not in {b["action_id"] for b in buttons(card.blocks)}
    again = a.click(cards.ACK_ACTION, json.dumps({"g": 1}), DEPLOYER)
    assert "already acknowledged by <@U0CAROL>" in text_of(again)

    # Alice silences it for an hour from the card: no repeat while muted (repeat_interval is 30 min)
    silenced = a.click(cards.SILENCE_1H_ACTION, value_of(card, cards.SILENCE_1H_ACTION), DEPLOYER)
    assert "Silenced churn production for 1 h" in text_of(silenced)
    a.deliver()
    assert ":mute: silenced until" in text_of(a.card())
    before = len(a.thread())
    for _ in range(4):  # minutes 17, 32, 47, 61: past the repeat interval, but muted
        a.minute(15 if _ < 3 else 14, error_rate=0.09)
    assert len(a.thread()) == before  # an hour firing, nothing said
    assert [e["metric"] for e in _overview(a)["silenced"]] == ["error_rate"]
    for _ in range(3):  # the silence ends at minute 62: the still-firing alert notifies again, once
        a.minute(error_rate=0.09)
    replies = a.thread()[before:]
    assert len(replies) == 1 and ":repeat: Still firing" in text_of(replies[0]), [text_of(r) for r in replies]
    assert "silenced until" not in text_of(a.card())

    # recovery: the card says for how long, and a thread reply says it is over
    a.minute(error_rate=0.01)
    card = a.card()
    assert card.blocks[0]["text"]["text"] == "Resolved: churn · production"
    assert "resolved after 1 h 4 min" in text_of(card) and not buttons(card.blocks)
    assert "Resolved after *1 h 4 min*" in text_of(a.thread()[-1])


def _overview(a: Alerting) -> dict[str, Any]:
    from bot.domain.alerting.actions import AlertActions

    return AlertActions(a.bot.registry).overview(a.clock.now)


def test_silence_modal_and_roll_back_from_the_card(alerting: Alerting) -> None:
    a = alerting
    a.command("alert add churn latency_p95_ms > 250")
    for _ in range(2):
        a.minute(latency_p95_ms=400.0)
    card = a.card()

    # Silence…: a modal asks for how long and why; a bad duration is shown beside the input
    opened = len(a.slack.calls_to("views.open"))
    body = a.slack.block_actions_body(cards.SILENCE_CUSTOM_ACTION, value_of(card, cards.SILENCE_CUSTOM_ACTION),
                                      response_name=a.bot.unique("modal"), user_id=DEPLOYER, channel_id=ALERTS,
                                      message_ts=card.ts)
    assert a.bot.signed_post(body).status_code == 200
    view = a.slack.wait_for_calls("views.open", opened + 1, 10)[-1].args["view"]
    assert view["callback_id"] == cards.SILENCE_VIEW

    def submit(duration: str, user: str) -> dict[str, Any]:
        body = a.slack.view_submission_body(view["callback_id"], {
            cards.DURATION_BLOCK: {cards.DURATION_INPUT: duration},
            cards.REASON_BLOCK: {cards.REASON_INPUT: "retraining <!channel>"}},
            user_id=user, private_metadata=view["private_metadata"], blocks=view["blocks"])
        response = a.bot.signed_post(body)
        assert response.status_code == 200, response.text
        return response.json() if response.content else {}

    bad = submit("forever", DEPLOYER)
    assert bad["response_action"] == "errors" and "is not a silence duration" in bad["errors"][cards.DURATION_BLOCK]
    refused = submit("2h", VIEWER)
    assert "only deployers" in refused["errors"][cards.DURATION_BLOCK]
    assert a.count(Silence) == 0
    done = submit("2h", DEPLOYER)
    assert done["response_action"] == "update" and "for 2 h" in json.dumps(done["view"])
    listed = text_of(a.command("silences churn", user=VIEWER))  # anyone may look
    assert "all rules · until" in listed and "retraining &lt;!channel&gt;" in listed

    # Roll back: the danger button with a confirm dialog; the deployments domain does it, audited
    [rollback] = [b for b in buttons(card.blocks) if b["action_id"] == cards.ROLLBACK_ACTION]
    assert rollback["style"] == "danger" and rollback["confirm"]["title"]["text"] == "Roll back now?"
    moved = a.click(cards.ROLLBACK_ACTION, rollback["value"], DEPLOYER, message_ts=card.ts)
    assert "Rolled back churn production: v2 → v1" in text_of(moved)
    assert a.bot.registry.environment_state("churn", "production").stable == 1
    [entry] = [e for e in a.bot.registry.history("churn", "production") if e.action == "rollback"]
    assert (entry.actor, entry.reason) == (DEPLOYER, "from alert #1")
    stale = warning(a.click(cards.ROLLBACK_ACTION, rollback["value"], DEPLOYER, message_ts=card.ts))
    assert "changed since the alert" in stale


# ---- acceptance 7 -----------------------------------------------------------------------------------


BAD_INPUT = [
    ("alert add churn accuracy > 0.5", "No source reports a metric named accuracy: known metrics are error_rate, "
                                       "latency_p95_ms"),
    ("alert add churn error_rate => 0.05", "'=&gt;' is not a comparison: use one of &lt; &lt;= &gt; &gt;= == !="),
    ("alert add churn error_rate > 0.05 for abc", "'abc' is not a `for` duration"),
    ("alert add churn error_rate > NaN", "The threshold must be a finite number, not NaN"),
    ("alert add churn error_rate > inf", "The threshold must be a finite number, not inf"),
    ("alert add churn error_rate > 0.05 #ml-oncall", "There is no public channel named #ml-oncall that I can see"),
    ("alert add churn@moon error_rate > 0.05", "There is no environment 'moon'"),
    ("alert add nosuchmodel error_rate > 0.05", "nosuchmodel"),
    ("silence churn 45d", "Silences last at most 30 days"),
]


def test_bad_input_is_refused_clearly_and_stores_nothing(alerting: Alerting) -> None:
    a = alerting
    for text, expected in BAD_INPUT:
        message = warning(a.command(text))
        assert expected in message, (text, message)
    assert a.count(AlertRule) == 0 and a.count(Silence) == 0


def test_only_deployers_change_rules_and_config_rules_stay_in_the_file(alerting: Alerting) -> None:
    a = alerting
    refusal = warning(a.command("alert add churn error_rate > 0.05", user=VIEWER))
    assert "You may not add alert rules: only deployers (U0ALICE, U0CAROL) and admins (U0ADMIN) may." in refusal
    assert "silence alerts" in warning(a.command("silence churn 1h", user=VIEWER))
    assert a.count(AlertRule) == 0 and a.count(Silence) == 0
    a.command("alert add churn latency_p95_ms anomalous k 3 window 3d", user="U0ADMIN")
    listed = text_of(a.command("alert list churn", user=VIEWER))
    assert "`latency_p95_ms anomalous (k 3, window 3d)`" in listed
    assert "remove alert rules" in warning(a.command("alert rm 1", user=VIEWER))
    assert "Rule *#1* removed" in text_of(a.command("alert rm 1"))
    assert "There is no alert rule 1" in warning(a.command("alert rm 1"))
    with a.bot.registry.writing() as session:  # as if synced from modelbot.toml
        session.execute(sa.update(AlertRule).values(enabled=True, origin="config"))
    assert "comes from modelbot.toml: remove it there" in warning(a.command("alert rm 1"))


# ---- acceptance 4 (and the inconclusive canary) -------------------------------------------------------


def test_failing_canary_is_aborted_after_the_failure_limit_and_says_why(alerting: Alerting) -> None:
    a = alerting
    a.bot.services.deployments.set_canary("churn", "3", "production", 10, actor=DEPLOYER)
    a.deliver()
    reply = a.command("alert add churn error_rate > 0.02 critical canary failure-limit 3")
    assert "aborts the canary after 3 failing evaluations" in text_of(reply)
    for minute in range(3):
        a.clock.now += timedelta(minutes=1)
        a.observe("error_rate", 0.01, version=2)
        a.observe("error_rate", 0.2, version=3)
        report = run_cycle(a.bot.services)
        assert report.canary_aborts == (["churn@production"] if minute == 2 else []), minute
        a.deliver()
    state = a.bot.registry.environment_state("churn", "production")
    assert (state.stable, state.canary, state.canary_weight) == (2, None, 0)  # production keeps serving v2
    [abort] = [e for e in a.bot.registry.history("churn", "production") if e.action == "canary_abort"]
    assert abort.actor == "modelbot"
    assert "error_rate = 0.2 breached > 0.02 for 3 consecutive evaluations (failure limit 3" in (abort.reason or "")
    [step] = a.slack.thread(DEPLOYS, a.slack.messages(DEPLOYS)[0].ts)
    assert "*modelbot*" in text_of(step) and "failure limit 3" in text_of(step)


def test_inconclusive_canary_asks_a_human(alerting: Alerting) -> None:
    a = alerting
    a.bot.services.deployments.set_canary("churn", "3", "production", 10, actor=DEPLOYER)
    a.command("alert add churn error_rate > 0.02 critical canary")
    a.minute()  # the canary reports nothing
    [question] = [m for m in a.slack.messages(ALERTS) if "inconclusive" in (m.text or "")]
    keep, abort = (value_of(question, cards.CANARY_KEEP_ACTION), value_of(question, cards.CANARY_ABORT_ACTION))
    assert "only deployers" in warning(a.click(cards.CANARY_KEEP_ACTION, keep, VIEWER))
    answer = a.click(cards.CANARY_ABORT_ACTION, abort, DEPLOYER)
    assert answer.replace_original and "<@U0ALICE> aborted the canary" in text_of(answer)
    assert a.bot.registry.environment_state("churn", "production").canary is None
    assert "No canary is running" in warning(a.click(cards.CANARY_KEEP_ACTION, keep, DEPLOYER))


def test_alerts_overview_status_and_the_scheduler_job(alerting: Alerting) -> None:
    from bot.jobs import jobs
    from bot.jobs.scheduler import alerts_jobs

    a = alerting
    a.command("alert add churn error_rate > 0.05 for 5m")
    a.command("alert add churn latency_p95_ms > 250")
    a.clock.now += timedelta(minutes=1)
    a.observe("error_rate", 0.09)
    a.observe("latency_p95_ms", 300.0)
    jobs.bind(a.bot.services)
    try:
        jobs.evaluate_alerts()  # what the scheduler runs every evaluation_interval
    finally:
        jobs.unbind()
    specs = alerts_jobs(a.bot.services)
    assert [s.id for s in specs] == ["evaluate-alerts", "alert-charts"]
    assert specs[0].trigger.interval == timedelta(minutes=1)  # type: ignore[attr-defined]
    now = text_of(a.command("alerts", user=VIEWER))
    assert "*Firing*" in now and "latency_p95_ms 300 &gt; 250" in now
    assert "*Pending*" in now and "error_rate 0.09 &gt; 0.05" in now
    status = text_of(a.command("status churn production", user=VIEWER))
    assert ":rotating_light: *latency_p95_ms* 300 &gt; 250 · warning · stable" in status
