"""Acceptance 4, the outage: Slack answers 500, then 429 (Retry-After: 2), then hangs, while 50
promotions and rollbacks happen; the `modelbot deliver` process is killed with SIGKILL in the
middle and started again. After Slack recovers every announcement and webhook is delivered,
none twice, in order per destination.

The worker is a real subprocess (the CLI entry point) with short timings from its
MODELBOT_OUTBOX_* variables: a 2 s lease, a 1 s HTTP timeout, backoff from 0.2 s capped at 1 s,
0.2 s between posts into one channel. The hang phase holds each request 0.5 s, shorter than
the timeout, so requests are slow but land; the kill comes while some are held, which leaves
rows `sending` whose messages Slack *did* post: the restarted worker must find them.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.delivery import verify_webhook
from bot.domain.deployments import Deployments
from bot.domain.registry import NewVersion, Registry
from storage.db import Database
from tests.delivery import support
from tests.delivery.support import HOOK_SECRET, Deliverer, WebhookReceiver, hooks_fixture  # noqa: F401
from tests.slack_fake import SlackFake

CHANNELS = ("C0STAGING", "C0PROD")
MODELS = tuple(f"outage{i}" for i in range(5))
# per model; 5 models x 10 = 50 pointer moves, each an announcement and a webhook
STEPS = (
    ("promote", "staging", "1"), ("promote", "staging", "2"), ("rollback", "staging", None),
    ("promote", "production", "1"), ("promote", "production", "2"), ("rollback", "production", None),
    ("promote", "staging", "3"), ("promote", "production", "3"), ("rollback", "production", None),
    ("rollback", "staging", None),
)


# the outage compressed into seconds: a 2 s lease, a 1 s HTTP timeout, backoff from 0.2 s capped at 1 s
SHORT_TIMINGS = {
    "MODELBOT_OUTBOX_LEASE_SECONDS": "2", "MODELBOT_OUTBOX_HTTP_TIMEOUT": "1", "MODELBOT_OUTBOX_POLL_SECONDS": "0.05",
    "MODELBOT_OUTBOX_BACKOFF_BASE": "0.2", "MODELBOT_OUTBOX_BACKOFF_CAP": "1", "MODELBOT_OUTBOX_POST_INTERVAL": "0.2",
}


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    """Stamped with wall-clock ts like Slack: a separate process on the real clock looks them up."""
    with support.slack_fake(ts_clock=time.time) as fake:
        yield fake


@pytest.fixture
def deliverer(database_url: str, slack: SlackFake, tmp_path: Path) -> Iterator[Deliverer]:
    runner = Deliverer(database_url, slack, tmp_path, **SHORT_TIMINGS)
    yield runner
    runner.kill_all()


def test_outage_kill_and_recovery(db: Database, slack: SlackFake, hooks: WebhookReceiver,
                                  deliverer: Deliverer) -> None:
    registry = Registry(db)  # the real clock: the worker is another process on it
    policy = support.policy(approvals=0, approval_channel="C0PROD", staging_channel="C0STAGING", hook_url=hooks.url)
    deployments = Deployments(registry, policy)
    for model in MODELS:
        for version in range(1, 4):
            registry.register(NewVersion(model=model, artifact_uri=f"s3://m/{model}/{version}", actor="ci"))
    moves = [(model, *step) for step in STEPS for model in MODELS]

    def move(index: int) -> None:
        model, action, env, ref = moves[index]
        if action == "promote":
            deployments.request_promotion(model, ref, env, requester="U0DEPLOY", reason=f"move {index}")
        else:
            deployments.rollback(model, env, actor="U0DEPLOY", reason=f"move {index}")

    def status_count(status: int) -> int:
        return sum(1 for c in slack.calls if c.status == status)

    def bot_messages() -> int:
        return sum(1 for ch in CHANNELS for m in slack.messages(ch) if m.metadata)

    hooks.answer(503, count=3)  # the deploy receiver has a bad moment too
    hooks.answer(429, count=1, **{"Retry-After": "1"})

    # 500s
    slack.set_outage("fail", status=500)
    first = deliverer.start()
    for index in range(20):
        move(index)
    slack.wait_for(lambda: status_count(500) >= 10, timeout=20, what="ten 500s")

    # 429 with Retry-After: 2
    slack.set_outage("rate_limit", retry_after=2)
    for index in range(20, 35):
        move(index)
    slack.wait_for(lambda: status_count(429) >= 5, timeout=20, what="five 429s")

    # hanging (0.5 s a request); SIGKILL while some requests are held
    slack.set_outage("hang", seconds=0.5)
    for index in range(35, 50):
        move(index)
    slack.wait_for(lambda: bot_messages() >= 5 and slack.hanging >= 1, timeout=20,
                   what="some messages delivered and a request held")
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL

    second = deliverer.start()
    slack.clear_outage()
    try:
        support.eventually(lambda: all(r.status == "delivered" for r in support.rows(db)), timeout=45,
                           what="every outbox row delivered")
    except TimeoutError:
        pytest.fail("not all delivered:\n" + "\n".join(
            f"{r.id} {r.kind} {r.status} {r.attempts} {r.last_error}" for r in support.rows(db)
            if r.status != "delivered") + "\n" + deliverer.logs())
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=10) == 0  # a graceful stop

    rows = support.rows(db)
    posts = [r for r in rows if r.kind == "post"]
    webhooks = [r for r in rows if r.kind == "webhook"]
    assert len(posts) == 50 and len(webhooks) == 50 and len(rows) == 100

    # every announcement exactly once: by metadata, and by accepted chat.postMessage calls
    posted = support.outbox_ids_in(slack, *CHANNELS)
    assert sorted(posted) == sorted(r.id for r in posts), "missing or duplicated announcements"
    accepted = [c for c in slack.calls_to("chat.postMessage") if c.ok]
    assert len(accepted) == 50
    assert slack.calls_to("conversations.history"), "uncertain attempts were checked before re-posting"

    # every webhook delivered; a receiver deduplicating on X-Modelbot-Delivery sees each once
    first_receipt: dict[str, support.Delivery] = {}
    for delivery in hooks.deliveries:
        first_receipt.setdefault(delivery.id, delivery)
        assert delivery.body == first_receipt[delivery.id].body  # a redelivery is the same event
        assert verify_webhook(HOOK_SECRET, delivery.headers, delivery.body)
    assert sorted(first_receipt) == sorted(str(r.id) for r in webhooks)
    # only rows in flight when the process was killed can arrive twice (at most one round)
    assert len(hooks.deliveries) - len(first_receipt) <= 4

    # in order per destination (one announcement channel, one webhook URL): each row reached Slack
    # or the receiver after the row before it
    when: dict[int, float] = {int(d.id): d.at for d in first_receipt.values()}
    for call in accepted:
        when[int(call.args["metadata"]["event_payload"]["outbox_id"])] = call.time
    by_destination: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        by_destination[r.destination].append(r.id)  # type: ignore[arg-type]
    assert sorted(by_destination) == ["slack:channel:C0PROD", "slack:channel:C0STAGING", f"webhook:{hooks.url}"]
    for destination, ids in by_destination.items():
        times = [when[i] for i in sorted(ids)]
        assert times == sorted(times), f"{destination} delivered out of order"
    for model in MODELS:  # and what arrived describes the moves in the order they were made
        reasons = [d.json["reason"] for d in sorted(first_receipt.values(), key=lambda d: d.at)
                   if d.json["model"] == model]
        assert reasons == [f"move {i}" for i, m in enumerate(moves) if m[0] == model]

    assert status_count(500) >= 10 and status_count(429) >= 5
