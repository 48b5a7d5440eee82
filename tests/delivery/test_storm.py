"""Acceptance 2, the approval storm (PostgreSQL): 100 pending requests, each clicked Approve 10
times at once by 3 approvers. Every request is decided exactly once, the audit log holds one
row per counted approval and one promotion per request, production's pointer chain has no
gap, and once the outbox is drained through the worker every card shows exactly the updates
its state changes caused.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import col, select

from bot.domain.deployments import Deployments
from bot.domain.registry import NewVersion, Registry
from storage.db import Database, DatabaseSettings
from storage.models import AuditEvent, ChangeRequest, Deployment, OutboxMessage, RegisteredModel, RequestVote
from storage.queries import outbox
from tests.delivery import support
from tests.delivery.support import (  # noqa: F401  (fixtures)
    APPROVALS,
    Clock,
    WebhookReceiver,
    clock_fixture,
    hooks_fixture,
    slack_fixture,
)
from tests.slack_fake import SlackFake

pytestmark = pytest.mark.postgres

REQUESTS = 100
CLICKS = 10
APPROVERS = ("U0APPR1", "U0APPR2", "U0APPR3")


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    database = Database(DatabaseSettings(url=postgres_url, lock_timeout_s=20, pool_size=40))
    database.upgrade()
    yield database
    database.dispose()


def test_approval_storm(pg: Database, slack: SlackFake, clock: Clock, hooks: WebhookReceiver) -> None:
    registry = Registry(pg, clock=clock)
    deployments = Deployments(registry, support.policy(approvals=2, approvers=APPROVERS, hook_url=hooks.url),
                              clock=clock)
    def open_request(i: int) -> int:
        name = f"storm{i:03d}"
        for version in (1, 2):
            registry.register(NewVersion(model=name, artifact_uri=f"s3://m/{name}/{version}", actor="ci"))
        registry.promote(name, "1", "production", actor="ci")  # what serves now: the chain starts here
        outcome = deployments.request_promotion(name, "2", "production", requester="U0DEPLOY",
                                                origin_channel="C0GENERAL")
        assert outcome.request is not None
        return outcome.request.id

    with ThreadPoolExecutor(max_workers=16) as pool:
        request_ids = list(pool.map(open_request, range(REQUESTS)))

    # ---- the storm: 10 clicks per request by 3 approvers, many requests at once -------------------
    rng = random.Random(2)
    clicks = []
    for request_id in request_ids:
        voters = [APPROVERS[k % len(APPROVERS)] for k in range(CLICKS)]
        rng.shuffle(voters)
        clicks.extend((request_id, voter) for voter in voters)

    def click(task: tuple[int, str]) -> tuple[int, str, str]:
        request_id, voter = task
        return request_id, voter, deployments.vote(request_id, voter, "approve").result

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(click, clicks))

    outcomes: dict[int, Counter[str]] = defaultdict(Counter)
    for request_id, _voter, result in results:
        outcomes[request_id][result] += 1
    for request_id in request_ids:
        seen = outcomes[request_id]
        assert seen["approved"] == 1 and seen["counted"] == 1, (request_id, seen)
        assert seen["duplicate"] + seen["already_decided"] == CLICKS - 2

    with pg.read() as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
        requests = session.exec(select(ChangeRequest)).all()
        votes = session.exec(select(RequestVote)).all()
        serving = {d.model_id: d.stable_version for d in session.exec(select(Deployment)).all()}
        models = {m.id: m.name for m in session.exec(select(RegisteredModel)).all()}
    wanted = {str(i) for i in request_ids}
    assert {r.status for r in requests} == {"approved"} and all(r.decided_at and r.decided_by for r in requests)
    assert len(votes) == 2 * REQUESTS
    assert Counter(e.request_id for e in events if e.action == "approve") == dict.fromkeys(wanted, 2)
    assert Counter(e.request_id for e in events if e.action == "promote" and e.request_id in wanted) == \
        dict.fromkeys(wanted, 1)
    assert not [e for e in events if e.action.endswith("_refused")]
    assert set(serving.values()) == {2}
    chains: dict[int, list[AuditEvent]] = defaultdict(list)
    for event in events:
        if event.environment == "production" and event.revision is not None:
            chains[event.model_id].append(event)  # type: ignore[index]
    assert len(chains) == REQUESTS
    for model_id, chain in chains.items():
        chain.sort(key=lambda e: e.revision or 0)
        assert [e.revision for e in chain] == list(range(1, len(chain) + 1)), models[model_id]
        assert [e.from_version for e in chain] == [None] + [e.to_version for e in chain[:-1]], models[model_id]

    # ---- deliver everything, then look at the cards -----------------------------------------------
    with pg.write() as session:
        # what autovacuum does within a minute in production: without statistics the planner
        # takes the freshly filled outbox for empty and scans it once per row when claiming
        session.connection().exec_driver_sql("ANALYZE")
    # pacing (1 post per second per channel) has its own test; here it would only add clock jumps
    work = support.worker(pg, slack, clock, concurrency=16, post_interval_s=0)
    support.drain(pg, work, clock)
    work.close()

    rows = support.rows(pg)
    assert {r.status for r in rows} == {"delivered"}
    kinds = Counter(r.kind for r in rows if r.kind != "home")  # App Home refreshes coalesce: any number
    assert kinds == {"post": REQUESTS, "ephemeral": REQUESTS, "update": 2 * REQUESTS, "thread": REQUESTS,
                     "webhook": REQUESTS}
    assert len(slack.messages(APPROVALS)) == REQUESTS
    assert all(c.ok for c in slack.calls_to("chat.update")) and len(slack.calls_to("chat.update")) == 2 * REQUESTS
    assert len(slack.calls_to("chat.postMessage")) == 2 * REQUESTS  # cards and outcome replies, none twice
    updates_by_key = Counter(r.message_key for r in rows if r.kind == "update")
    with pg.read() as session:
        for request_id in request_ids:
            key = f"request:{request_id}"
            ref = outbox.message_ref(session, key)
            assert ref is not None and ref.channel == APPROVALS
            card = slack.message(APPROVALS, ref.ts)
            assert len(card.history) == updates_by_key[key] == 2  # one edit per state change: 1 of 2, approved
            versions = [(v["text"], v.get("blocks")) for v in card.history] + [(card.text, card.blocks)]
            assert all(a != b for a, b in itertools.pairwise(versions)), f"repeated card update on {key}"
            assert len(slack.thread(APPROVALS, ref.ts)) == 1
            last_update = session.exec(
                select(OutboxMessage.id).where(OutboxMessage.message_key == key, OutboxMessage.kind == "update")
                .order_by(col(OutboxMessage.id).desc())
            ).first()
            assert card.metadata == {"event_type": "modelbot_outbox", "event_payload": {"outbox_id": last_update}}
    assert sorted(d.id for d in hooks.deliveries) == sorted(str(r.id) for r in rows if r.kind == "webhook")
    assert {d.json["to_version"] for d in hooks.deliveries} == {2}
