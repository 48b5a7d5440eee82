"""The outbox worker against the strict fake Slack and a real webhook receiver, on both backends."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.cli import main as cli
from bot.config.settings import ConfigError
from bot.delivery import DeliverySettings, verify_webhook
from bot.delivery.jobs import outbox_metadata
from bot.delivery.webhooks import encode_body, sign_webhook
from bot.domain.deployments import Deployments
from bot.domain.registry import NewVersion, Registry
from bot.observability import REGISTRY
from storage.db import Database, DatabaseSettings
from storage.models import OutboxMessage
from storage.queries import outbox
from tests.delivery import support
from tests.delivery.support import (  # noqa: F401  (fixtures)
    APPROVALS,
    HOOK_SECRET,
    HOOK_SECRET_ENV,
    Clock,
    WebhookReceiver,
    clock_fixture,
    hooks_fixture,
    slack_fixture,
)
from tests.slack_fake import SlackFake


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---- order per topic ------------------------------------------------------------------------------


def test_card_post_update_and_thread_arrive_in_order(
    db: Database, slack: SlackFake, clock: Clock, hooks: WebhookReceiver
) -> None:
    registry = Registry(db, clock=clock)
    deployments = Deployments(registry, support.policy(approvals=1, hook_url=hooks.url), clock=clock)
    registry.register(NewVersion(model="churn", artifact_uri="s3://m/churn/1", actor="ci", metrics={"auc": 0.9}))
    request = deployments.request_promotion("churn", "1", "production", requester="U0DEPLOY",
                                            origin_channel="C0GENERAL").request
    assert request is not None
    deployments.vote(request.id, "U0APPR1", "approve")

    support.drain(db, support.worker(db, slack, clock), clock)

    everything = support.rows(db)
    # the approvers' App Home refresh (one row for both changes: it renders at send time); this
    # worker has no Home renderer, so it is skipped (tests/test_app_home.py delivers it)
    [home] = [r for r in everything if r.kind == "home"]
    assert home.status == "delivered" and home.result.get("skipped")
    rows = [r for r in everything if r.kind != "home"]
    assert [(r.kind, r.template) for r in rows] == [
        ("post", "approval_card"), ("ephemeral", "approval_link"), ("update", "approval_card"),
        ("thread", "request_outcome"), ("webhook", "deployment.changed"),
    ]
    assert {r.status for r in rows} == {"delivered"}
    [card] = slack.messages(APPROVALS)
    assert card.metadata == outbox_metadata(rows[2].id)  # the update names the last row applied
    assert len(card.history) == 1  # posted once, updated once, in place
    [reply] = slack.thread(APPROVALS, card.ts)
    assert reply.metadata == outbox_metadata(rows[3].id)
    assert len(slack.ephemerals("C0GENERAL", "U0DEPLOY")) == 1
    assert slack.calls_to("chat.getPermalink")[0].args["message_ts"] == card.ts
    calls = [c.method for c in slack.calls if c.method.startswith("chat.")]
    assert calls == ["chat.postMessage", "chat.getPermalink", "chat.postEphemeral", "chat.update",
                     "chat.postMessage"]
    [delivery] = hooks.deliveries
    assert delivery.json["event"] == "deployment.changed" and delivery.json["to_version"] == 1
    assert delivery.id == str(rows[4].id)


def test_posts_into_one_channel_are_paced_without_blocking_others(db: Database, slack: SlackFake,
                                                                   clock: Clock) -> None:
    """Three cards (three destinations: each its own message) into one channel, one into another."""
    busy = [support.enqueue(db, clock, topic=f"model:{i}", channel="C0ONE", message_key=f"request:{i}")
            for i in range(3)]
    other = support.enqueue(db, clock, topic="model:9", channel="C0TWO")
    work = support.worker(db, slack, clock)
    start = clock()

    assert work.run_once() == 2  # the first of the busy channel and the other channel's
    assert support.row(db, busy[0]).status == "delivered" and support.row(db, other).status == "delivered"
    waiting = [support.row(db, i) for i in busy[1:]]
    assert [r.status for r in waiting] == ["pending", "pending"]
    assert [r.next_attempt_at.replace(tzinfo=None) for r in waiting] == [
        (start + timedelta(seconds=1)).replace(tzinfo=None), (start + timedelta(seconds=2)).replace(tzinfo=None),
    ]
    assert work.run_once() == 0  # nothing due yet: no sleeping, no sending
    clock.advance(1)
    assert work.run_once() == 1
    clock.advance(1)
    assert work.run_once() == 1
    assert [m.text for m in slack.messages("C0ONE")] and len(slack.messages("C0ONE")) == 3


# ---- retries ----------------------------------------------------------------------------------------


def test_rate_limit_waits_for_retry_after(db: Database, slack: SlackFake, clock: Clock) -> None:
    outbox_id = support.enqueue(db, clock)
    slack.rate_limit("chat.postMessage", retry_after=2)
    work = support.worker(db, slack, clock)
    before = metric("modelbot_outbox_deliveries_total", kind="post", outcome="retried")

    assert work.run_once() == 1
    waiting = support.row(db, outbox_id)
    assert waiting.status == "pending" and waiting.attempts == 1
    assert waiting.next_attempt_at.replace(tzinfo=None) == (clock() + timedelta(seconds=2)).replace(tzinfo=None)
    assert "rate limited" in (waiting.last_error or "")
    assert waiting.result["maybe_sent"] is False  # a 429 means Slack did not post it
    assert metric("modelbot_outbox_deliveries_total", kind="post", outcome="retried") == before + 1

    clock.advance(1.5)
    assert work.run_once() == 0
    clock.advance(0.5)
    assert work.run_once() == 1
    assert support.row(db, outbox_id).status == "delivered"
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert slack.calls_to("conversations.history") == []  # nothing to look up after a 429
    assert len(slack.messages("C0GENERAL")) == 1


def test_server_errors_back_off_exponentially_then_check_before_posting(
    db: Database, slack: SlackFake, clock: Clock
) -> None:
    outbox_id = support.enqueue(db, clock)
    slack.fail_next("chat.postMessage", status=500, count=2)
    work = support.worker(db, slack, clock)

    delays = []
    for _ in range(2):
        assert work.run_once() == 1
        waiting = support.row(db, outbox_id)
        assert waiting.status == "pending" and waiting.result["maybe_sent"] is True
        delays.append((support.next_due(db) - clock()).total_seconds())  # type: ignore[operator]
        clock.advance(delays[-1])
    assert 1.0 <= delays[0] <= 2.0 and 2.0 <= delays[1] <= 4.0  # base 2 s, equal jitter
    assert work.run_once() == 1
    assert support.row(db, outbox_id).status == "delivered"
    # the 500 may have hidden a post: each retry looked before posting again
    assert len(slack.calls_to("conversations.history")) == 2
    assert len(slack.messages("C0GENERAL")) == 1


def test_gives_up_after_failing_for_too_long(db: Database, slack: SlackFake, clock: Clock) -> None:
    outbox_id = support.enqueue(db, clock)
    slack.fail_next("chat.postMessage", status=503, count=5)
    work = support.worker(db, slack, clock, give_up_after=timedelta(seconds=30))
    assert work.run_once() == 1
    clock.advance(31)  # long after the row was written is fine; failing for 31 s is not
    assert work.run_once() == 1
    given_up = support.row(db, outbox_id)
    assert given_up.status == "failed" and given_up.last_error is not None
    assert given_up.last_error.startswith("gave up after 2 attempts failing since 2023-11-14T21:56:40Z")


def test_timeouts_are_retried_and_do_not_duplicate(db: Database, slack: SlackFake, clock: Clock) -> None:
    outbox_id = support.enqueue(db, clock)
    slack.hang("chat.postMessage", seconds=1.5)  # the fake posts it after the client gave up
    work = support.DeliveryWorker(db, support.web_client(slack, timeout=1), clock=clock, http_timeout_s=1)
    assert work.run_once() == 1
    waiting = support.row(db, outbox_id)
    assert waiting.status == "pending" and waiting.result["maybe_sent"] is True
    assert (support.next_due(db) - clock()).total_seconds() >= 1  # type: ignore[operator]
    slack.wait_for_calls("chat.postMessage", 1, timeout=5)  # the held request lands
    clock.advance(5)
    assert work.run_once() == 1
    assert support.row(db, outbox_id).status == "delivered"
    assert len(slack.messages("C0GENERAL")) == 1 and len(slack.calls_to("chat.postMessage")) == 1


# ---- permanent failures -------------------------------------------------------------------------------


def test_permanent_error_fails_and_shows_in_cli(
    db: Database, database_url: str, slack: SlackFake, clock: Clock, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    post = support.enqueue(db, clock, message_key="request:1", channel=APPROVALS)
    update = support.enqueue(db, clock, kind="update", channel=None, message_key="request:1")
    later = support.enqueue(db, clock, topic="model:2")
    slack.error_for("chat.postMessage", "not_in_channel")
    work = support.worker(db, slack, clock, concurrency=1)  # one at a time: the card meets the error
    failed_before = metric("modelbot_outbox_deliveries_total", kind="post", outcome="failed")

    support.drain(db, work, clock)

    assert support.row(db, post).status == "failed"
    assert support.row(db, post).last_error == "chat.postMessage: not_in_channel"
    dependent = support.row(db, update)
    assert dependent.status == "failed"
    assert f"never posted: outbox row {post} failed" in (dependent.last_error or "")
    assert support.row(db, later).status == "delivered"  # other topics carry on
    assert metric("modelbot_outbox_deliveries_total", kind="post", outcome="failed") == failed_before + 1
    work.refresh_gauges()
    assert metric("modelbot_outbox_failed") == 2 and metric("modelbot_outbox_pending") == 0

    monkeypatch.setenv("MODELBOT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["outbox", "--failed", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["id"], r["kind"], r["status"]) for r in listed] == [(update, "update", "failed"),
                                                                   (post, "post", "failed")]
    assert listed[1]["last_error"] == "chat.postMessage: not_in_channel"
    assert cli.main(["outbox", "--failed"]) == 0
    assert "not_in_channel" in capsys.readouterr().out

    # fixed (the bot was invited): retry by hand, and the card and its update go out
    assert cli.main(["outbox", "retry", str(post)]) == 0
    assert cli.main(["outbox", "retry", str(update)]) == 0
    assert "pending again" in capsys.readouterr().out
    assert cli.main(["outbox", "retry", str(later)]) == 2  # delivered rows are not retried
    assert "only failed rows" in capsys.readouterr().err
    support.drain(db, work, clock)
    assert support.row(db, post).status == "delivered" and support.row(db, update).status == "delivered"
    assert len(slack.messages(APPROVALS)[0].history) == 1


def test_update_without_any_card_is_skipped(db: Database, slack: SlackFake, clock: Clock) -> None:
    """No approval channel, so no card was posted: there is nothing to edit, and nothing failed."""
    update = support.enqueue(db, clock, kind="update", channel=None, message_key="request:7")
    support.drain(db, support.worker(db, slack, clock), clock)
    done = support.row(db, update)
    assert done.status == "delivered" and "no message was ever posted" in done.result["skipped"]
    assert slack.calls == []


# ---- crash between send and record ---------------------------------------------------------------


def _lease_and_send_by_hand(db: Database, now: Clock, outbox_id: int, send: object) -> None:
    """What a worker that dies after Slack accepted the call leaves behind: a `sending` row."""
    with db.write() as session:
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        outbox.lease(row, now=now(), seconds=60)
        session.add(row)
    send()  # type: ignore[operator]


def test_crash_after_post_does_not_post_twice(db: Database, slack: SlackFake, clock: Clock) -> None:
    post = support.enqueue(db, clock, message_key="request:1", channel=APPROVALS)
    update = support.enqueue(db, clock, kind="update", channel=None, message_key="request:1")
    client = WebClient(base_url=slack.api_url, token=slack.bot_token)
    posted: dict[str, str] = {}
    _lease_and_send_by_hand(db, clock, post, lambda: posted.update(ts=client.chat_postMessage(
        channel=APPROVALS, text="card", metadata=outbox_metadata(post))["ts"]))
    slack.add_message(APPROVALS, "people talk in between")
    work = support.worker(db, slack, clock)

    assert work.run_once() == 0  # the dead worker's lease still holds
    clock.advance(61)
    support.drain(db, work, clock)

    assert support.row(db, post).status == "delivered"
    assert support.row(db, post).result["ts"] == posted["ts"]
    assert len(slack.calls_to("chat.postMessage")) == 1  # only the one by hand
    assert len(slack.calls_to("conversations.history")) == 1
    # the recorded ts is the real card: the update edits it
    assert support.row(db, update).status == "delivered"
    assert slack.message(APPROVALS, posted["ts"]).metadata == outbox_metadata(update)


def test_crash_after_update_or_thread_reply_does_not_repeat_them(
    db: Database, slack: SlackFake, clock: Clock
) -> None:
    client = WebClient(base_url=slack.api_url, token=slack.bot_token)
    card = client.chat_postMessage(channel=APPROVALS, text="card v1")["ts"]
    with db.write() as session:
        outbox.remember_message(session, key="request:1", channel=APPROVALS, ts=card, outbox_id=None, now=clock())
    update = support.enqueue(db, clock, kind="update", channel=None, message_key="request:1")
    thread = support.enqueue(db, clock, kind="thread", channel=None, message_key="request:1")
    _lease_and_send_by_hand(db, clock, update, lambda: client.chat_update(
        channel=APPROVALS, ts=card, text="card v2", metadata=outbox_metadata(update)))
    work = support.worker(db, slack, clock)
    clock.advance(61)
    assert work.run_once() == 1
    assert support.row(db, update).status == "delivered"
    assert len(slack.calls_to("chat.update")) == 1  # found by its metadata, not repeated

    with db.write() as session:  # now the thread reply: sent by a worker that then died
        row = session.get(OutboxMessage, thread)
        assert row is not None
        outbox.lease(row, now=clock(), seconds=60)
        session.add(row)
    client.chat_postMessage(channel=APPROVALS, thread_ts=card, text="approved", metadata=outbox_metadata(thread))
    clock.advance(61)
    assert work.run_once() == 1
    assert support.row(db, thread).status == "delivered"
    assert len(slack.thread(APPROVALS, card)) == 1
    assert len(slack.calls_to("conversations.replies")) == 1


# ---- webhooks ---------------------------------------------------------------------------------------


def _webhook_row(db: Database, now: Clock, url: str, secret_env: str = HOOK_SECRET_ENV) -> int:
    body = {"event": "deployment.changed", "model": "churn", "environment": "production", "from_version": 1,
            "to_version": 2, "actor": "U0APPR1", "note": "naïve ✓"}
    return support.enqueue(db, now, kind="webhook", template="deployment.changed", channel=None,
                           data={"url": url, "secret_env": secret_env, "hook": 0, "body": body})


def test_webhook_is_signed_retried_and_verifiable(db: Database, slack: SlackFake, clock: Clock,
                                                  hooks: WebhookReceiver) -> None:
    outbox_id = _webhook_row(db, clock, hooks.url)
    hooks.answer(503)
    hooks.answer(429, **{"Retry-After": "7"})
    work = support.worker(db, slack, clock)

    assert work.run_once() == 1
    assert support.row(db, outbox_id).status == "pending"
    assert "HTTP 503" in (support.row(db, outbox_id).last_error or "")
    clock.advance(2)
    assert work.run_once() == 1
    assert (support.next_due(db) - clock()).total_seconds() == 7  # type: ignore[operator]
    clock.advance(7)
    assert work.run_once() == 1
    assert support.row(db, outbox_id).status == "delivered"

    [delivery] = hooks.deliveries
    now = clock().timestamp()
    headers = delivery.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-modelbot-event"] == "deployment.changed"
    assert headers["x-modelbot-delivery"] == str(outbox_id)
    assert headers["x-modelbot-timestamp"] == str(int(now))
    assert headers["x-modelbot-signature"] == sign_webhook(HOOK_SECRET, int(now), delivery.body)
    assert delivery.body == encode_body(delivery.json) and delivery.json["note"] == "naïve ✓"
    assert verify_webhook(HOOK_SECRET, headers, delivery.body, now=now)
    assert not verify_webhook("another-secret", headers, delivery.body, now=now)
    assert not verify_webhook(HOOK_SECRET, headers, delivery.body.replace(b"churn", b"chum"), now=now)
    assert not verify_webhook(HOOK_SECRET, headers, delivery.body, now=now + 301)  # a replay, too late
    rotated = {**headers, "X-Modelbot-Signature": f"v1=00ff, {headers['x-modelbot-signature']}"}
    assert verify_webhook(HOOK_SECRET, rotated, delivery.body, now=now)
    assert HOOK_SECRET not in json.dumps(support.row(db, outbox_id).data)  # only the variable's name is stored


def test_webhook_gone_is_permanent(db: Database, slack: SlackFake, clock: Clock, hooks: WebhookReceiver) -> None:
    outbox_id = _webhook_row(db, clock, hooks.url)
    hooks.answer(410)
    assert support.worker(db, slack, clock).run_once() == 1
    failed = support.row(db, outbox_id)
    assert failed.status == "failed" and "HTTP 410" in (failed.last_error or "")


def test_missing_webhook_secret_fails_naming_the_variable(db: Database, slack: SlackFake, clock: Clock,
                                                          hooks: WebhookReceiver) -> None:
    outbox_id = _webhook_row(db, clock, hooks.url, secret_env="MODELBOT_SECRET_NOBODY_SET")
    assert support.worker(db, slack, clock, env={}).run_once() == 1
    failed = support.row(db, outbox_id)
    assert failed.status == "failed"
    assert "MODELBOT_SECRET_NOBODY_SET" in (failed.last_error or "")
    assert f"modelbot outbox retry {outbox_id}" in (failed.last_error or "")
    assert hooks.deliveries == [] and hooks.refused == 0  # nothing unsigned went out


# ---- several workers --------------------------------------------------------------------------------


def test_two_workers_deliver_200_rows_once_each_in_order(db: Database, database_url: str, slack: SlackFake,
                                                         clock: Clock) -> None:
    channels = ("C0ONE", "C0TWO", "C0THREE", "C0FOUR")
    ids = [support.enqueue(db, clock, topic=f"model:{t}", channel=channels[t % 4], data={"n": n})
           for n in range(10) for t in range(20)]
    databases = [Database(DatabaseSettings(url=database_url, lock_timeout_s=10, pool_size=10)) for _ in range(2)]
    workers = [support.worker(d, slack, clock, post_interval_s=0, concurrency=4) for d in databases]
    errors: list[BaseException] = []
    attempted = [0, 0]
    start = threading.Barrier(2)

    def run(index: int) -> None:
        try:
            start.wait()
            while support.unfinished(databases[index]):
                attempted[index] += workers[index].run_once()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for d in databases:
        d.dispose()
    assert not errors, errors
    assert sum(attempted) == 200  # every row attempted exactly once: no failures, no double claims
    assert all(attempted)  # both workers took part
    posted = support.outbox_ids_in(slack, *channels)
    assert sorted(posted) == sorted(ids) and len(set(posted)) == 200
    assert len(slack.calls_to("chat.postMessage")) == 200
    for topic in range(20):  # rows of one topic were posted in the order they were written
        topic_ids = [i for i in posted if i in set(ids[topic::20])]
        assert topic_ids == sorted(topic_ids)


# ---- settings ---------------------------------------------------------------------------------------


def test_settings_from_env() -> None:
    settings = DeliverySettings.from_env({"MODELBOT_OUTBOX_LEASE_SECONDS": "2", "MODELBOT_OUTBOX_HTTP_TIMEOUT": "1",
                                          "MODELBOT_OUTBOX_POST_INTERVAL": "0"})
    assert (settings.lease_seconds, settings.http_timeout_s, settings.post_interval_s) == (2.0, 1, 0.0)
    with pytest.raises(ConfigError, match="at least twice"):
        DeliverySettings.from_env({"MODELBOT_OUTBOX_LEASE_SECONDS": "5"})
    with pytest.raises(ConfigError, match="MODELBOT_OUTBOX_HTTP_TIMEOUT must be a whole number"):
        DeliverySettings.from_env({"MODELBOT_OUTBOX_HTTP_TIMEOUT": "1.5"})
    with pytest.raises(ConfigError, match="MODELBOT_OUTBOX_POLL_SECONDS must be a positive number"):
        DeliverySettings.from_env({"MODELBOT_OUTBOX_POLL_SECONDS": "-1"})
