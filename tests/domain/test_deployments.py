"""Promotion requests, four-eyes votes, gates, rollback and canary rules (both backends)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.config.policy_file import load_policy, parse_policy
from bot.config.settings import ConfigError
from bot.config.toml_file import PolicyFile
from bot.domain.deployments import Deployments
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.domain.registry import NewVersion, Registry
from storage.db import Database
from storage.models import AuditEvent, OutboxMessage
from storage.queries import registry as queries

POLICY = """
[roles]
admins = ["U0ADMIN"]
deployers = ["U0DEPLOY", "U0APPR1", "@ml-eng"]

[environments.staging]
approvals = 0

[environments.production]
approvals = 2
approvers = ["U0APPR1", "U0APPR2", "U0APPR3", "@ml-leads"]
approval_channel = "C0APPROVALS"
expires_after = "24h"
requires = "staging"
gates = ["auc >= current.auc - 0.005", "latency_p95_ms <= 250"]

[[webhooks]]
url = "http://127.0.0.1:9/hook"
secret_env = "MODELBOT_WEBHOOK_SECRET"
events = ["deployment.changed"]
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deployments(db: Database, tmp_path: Path, clock: Clock) -> Deployments:
    path = tmp_path / "modelbot.toml"
    path.write_text(POLICY)
    policy = load_policy(path)
    registry = Registry(db, environments=policy.environment_names, clock=clock)
    groups = {"ml-eng": frozenset({"U0GROUPDEPLOY"}), "ml-leads": frozenset({"U0LEAD"})}
    return Deployments(registry, policy, groups=lambda h: groups.get(h, frozenset()), clock=clock)


def seed(d: Deployments, *metrics: dict[str, float]) -> None:
    for m in metrics:
        d.registry.register(NewVersion(model="churn", artifact_uri="s3://x", actor="ci", metrics=m))


def counts(d: Deployments) -> dict[str, int]:
    with d.registry.reading() as session:
        c = queries.row_counts(session)
        c["outbox"] = session.execute(sa.select(sa.func.count()).select_from(OutboxMessage)).scalar_one()
        return c


GOOD = {"auc": 0.91, "latency_p95_ms": 120.0}


def staged(d: Deployments, *versions: str) -> None:
    for v in versions:
        d.request_promotion("churn", v, "staging", requester="U0DEPLOY")


def test_staging_promotes_at_once_production_needs_two_distinct_approvers(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD, {"auc": 0.912, "latency_p95_ms": 110.0})
    staged(d, "1", "2")
    d.registry.promote("churn", "1", "production", actor="bootstrap")
    outcome = d.request_promotion("churn", "2", "production", requester="U0DEPLOY", reason="better auc",
                                  origin_channel="C0GENERAL")
    request = outcome.request
    assert request is not None and outcome.move is None
    assert request.status == "pending" and request.approvals_needed == 2 and request.gates_pass
    first = d.vote(request.id, "U0APPR1", "approve")
    assert first.result == "counted"
    again = d.vote(request.id, "U0APPR1", "approve")
    assert again.result == "duplicate"
    final = d.vote(request.id, "U0LEAD", "approve")  # member of @ml-leads
    assert final.result == "approved" and final.move is not None
    assert d.registry.environment_state("churn", "production").stable == 2
    late = d.vote(request.id, "U0APPR2", "approve")
    assert late.result == "already_decided"
    actions = [e.action for e in d.registry.history("churn", "production")]
    assert actions == ["promote", "promote_requested", "approve", "approve", "promote"]


def test_non_approver_and_requester_are_refused_with_an_audit_row(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD)
    staged(d, "1")
    request = d.request_promotion("churn", "1", "production", requester="U0APPR1").request
    assert request is not None
    with pytest.raises(Forbidden, match="not an approver"):
        d.vote(request.id, "U0RANDOM", "approve")
    with pytest.raises(Forbidden, match="cannot approve it yourself"):
        d.vote(request.id, "U0APPR1", "approve")
    refused = [e for e in d.registry.history("churn", "production") if e.action == "approve_refused"]
    assert [e.actor for e in refused] == ["U0RANDOM", "U0APPR1"]
    assert d.get_request(request.id).approvals == ()


def refused_once(before: dict[str, int], after: dict[str, int]) -> bool:
    """A refusal changes nothing but one audit row."""
    return after == {**before, "audit_events": before["audit_events"] + 1}


def test_only_deployers_request(deployments: Deployments) -> None:
    seed(deployments, GOOD)
    before = counts(deployments)
    with pytest.raises(Forbidden, match="only deployers"):
        deployments.request_promotion("churn", "1", "staging", requester="U0RANDOM")
    assert refused_once(before, counts(deployments))
    (refusal,) = deployments.registry.history("churn", "staging")
    assert (refusal.action, refusal.actor, refusal.to_version) == ("promote_refused", "U0RANDOM", 1)
    assert refusal.reason is not None and "only deployers" in refusal.reason
    # a member of the @ml-eng group is a deployer
    deployments.request_promotion("churn", "1", "staging", requester="U0GROUPDEPLOY")


def test_requires_staging_first(deployments: Deployments) -> None:
    seed(deployments, GOOD)
    before = counts(deployments)
    with pytest.raises(Conflict, match="promote it to staging first"):
        deployments.request_promotion("churn", "1", "production", requester="U0DEPLOY")
    assert refused_once(before, counts(deployments))


def test_failing_gate_blocks_approval_admin_override_needs_reason(deployments: Deployments) -> None:
    d = deployments
    seed(d, {"auc": 0.95, "latency_p95_ms": 100.0}, {"auc": 0.90, "latency_p95_ms": 300.0})
    staged(d, "1", "2")
    d.registry.promote("churn", "1", "production", actor="bootstrap")
    request = d.request_promotion("churn", "2", "production", requester="U0DEPLOY").request
    assert request is not None and not request.gates_pass
    failing = [g for g in request.gates if not g["passed"]]
    assert {g["gate"] for g in failing} == {"auc >= current.auc - 0.005", "latency_p95_ms <= 250"}
    assert failing[0]["left"] is not None  # the card shows the numbers
    # a plain approval is not half-counted while a gate fails (issue 10, defect 3)
    with pytest.raises(Conflict, match="A gate fails, so this cannot be approved"):
        d.vote(request.id, "U0APPR1", "approve")
    with pytest.raises(Forbidden, match="Only an admin"):
        d.vote(request.id, "U0APPR2", "approve", override_reason="ship it")
    with pytest.raises(InvalidInput, match="Write why"):
        d.vote(request.id, "U0ADMIN", "approve", override_reason="  ")
    assert d.get_request(request.id).approvals == ()
    # the override belongs to the request, and counts as the admin's approval (defect 4)
    counted = d.vote(request.id, "U0ADMIN", "approve", override_reason="latency fixed by new hardware")
    assert counted.result == "counted"
    view = d.get_request(request.id)
    assert view.override_by == "U0ADMIN" and "hardware" in (view.override_reason or "")
    assert view.override_at == d.clock()
    with pytest.raises(Conflict, match="already overridden by U0ADMIN"):
        d.vote(request.id, "U0APPR2", "approve", override_reason="me too")
    outcome = d.vote(request.id, "U0APPR1", "approve")
    assert outcome.result == "approved" and outcome.move is not None
    promote = d.registry.history("churn", "production")[-1]
    assert promote.action == "promote" and "gate override: latency fixed" in (promote.reason or "")
    assert [e.action for e in d.registry.history("churn", "production")][-7:] == [
        "promote_requested", "approve_refused", "override_refused", "override", "override_refused", "approve",
        "promote"]


def test_reject_needs_reason_and_decides(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD)
    staged(d, "1")
    request = d.request_promotion("churn", "1", "production", requester="U0DEPLOY").request
    assert request is not None
    with pytest.raises(InvalidInput, match="Say why"):
        d.vote(request.id, "U0APPR1", "reject")
    outcome = d.vote(request.id, "U0APPR1", "reject", reason="drift on tenure")
    assert outcome.result == "rejected" and outcome.request.decision_reason == "drift on tenure"
    assert d.registry.environment_state("churn", "production").stable is None


def test_newer_request_supersedes_older(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD, GOOD)
    staged(d, "1", "2")
    first = d.request_promotion("churn", "1", "production", requester="U0DEPLOY").request
    second = d.request_promotion("churn", "2", "production", requester="U0DEPLOY").request
    assert first is not None and second is not None
    old = d.get_request(first.id)
    assert old.status == "superseded" and old.superseded_by == second.id
    assert d.vote(first.id, "U0APPR1", "approve").result == "already_decided"


def test_expiry_at_click_and_by_job(deployments: Deployments, clock: Clock) -> None:
    d = deployments
    seed(d, GOOD, GOOD)
    staged(d, "1", "2")
    first = d.request_promotion("churn", "1", "production", requester="U0DEPLOY").request
    assert first is not None
    clock.now += timedelta(hours=25)
    before = d.registry.environment_state("churn", "production")
    outcome = d.vote(first.id, "U0APPR1", "approve")
    assert outcome.result == "already_decided" and outcome.request.status == "expired"
    assert d.registry.environment_state("churn", "production") == before
    second = d.request_promotion("churn", "2", "production", requester="U0DEPLOY").request
    assert second is not None
    clock.now += timedelta(hours=25)
    assert d.expire_due() == 1
    assert d.get_request(second.id).status == "expired"


def test_bad_request_ids(deployments: Deployments) -> None:
    with pytest.raises(InvalidInput):
        deployments.vote("abc", "U0APPR1", "approve")
    with pytest.raises(NotFound):
        deployments.vote(999, "U0APPR1", "approve")


def test_rollback_is_immediate_announced_and_hooked(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD, GOOD)
    d.registry.promote("churn", "1", "production", actor="a")
    d.registry.promote("churn", "2", "production", actor="a")
    with pytest.raises(Forbidden):
        d.rollback("churn", "production", actor="U0RANDOM")
    outcome = d.rollback("churn", "production", actor="U0DEPLOY", reason="latency spike")
    assert outcome.move is not None and outcome.move.state.stable == 1
    with d.registry.reading() as session:
        rows = session.execute(sa.select(OutboxMessage.kind, OutboxMessage.template)).all()
    assert ("post", "deployment_announcement") in rows and ("webhook", "deployment.changed") in rows


@pytest.mark.parametrize(("percent", "message"), [(0, "abort"), (100, "promote"), (150, "between 1 and 99"),
                                                  ("abc", "not a percentage")])
def test_canary_percent_validation(deployments: Deployments, percent: object, message: str) -> None:
    d = deployments
    seed(d, GOOD, GOOD)
    d.registry.promote("churn", "1", "production", actor="a")
    before = counts(d)
    with pytest.raises(InvalidInput, match=message):
        d.set_canary("churn", "2", "production", percent, actor="U0DEPLOY")  # type: ignore[arg-type]
    assert counts(d) == before


def test_canary_ladder_abort_and_promote(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD, GOOD)
    staged(d, "1", "2")
    d.registry.promote("churn", "1", "production", actor="a")
    state = d.set_canary("churn", "2", "production", 5, actor="U0DEPLOY").state
    assert state is not None and (state.stable, state.canary, state.canary_weight) == (1, 2, 5)
    assert d.next_canary_step(5, "production") == 25
    state = d.set_canary("churn", None, "production", 25, actor="U0DEPLOY").state
    assert state is not None and state.canary_weight == 25
    state = d.abort_canary("churn", "production", actor="U0DEPLOY", reason="errors")
    assert (state.stable, state.canary, state.canary_weight) == (1, None, 0)
    d.set_canary("churn", "2", "production", 50, actor="U0DEPLOY")
    request = d.promote_canary("churn", "production", actor="U0DEPLOY").request
    assert request is not None and request.version == 2
    d.vote(request.id, "U0APPR1", "approve")
    outcome = d.vote(request.id, "U0APPR2", "approve")
    assert outcome.move is not None
    final = d.registry.environment_state("churn", "production")
    assert (final.stable, final.previous, final.canary, final.canary_weight) == (2, 1, None, 0)
    history = d.registry.history("churn", "production", limit=100)
    revisions = [e.revision for e in history if e.revision is not None]
    assert revisions == list(range(1, len(revisions) + 1))


def test_concurrent_votes_decide_once(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD)
    staged(d, "1")
    request = d.request_promotion("churn", "1", "production", requester="U0DEPLOY").request
    assert request is not None
    voters = ["U0APPR1", "U0APPR2", "U0APPR3"] * 4
    barrier = threading.Barrier(len(voters))
    results: list[str] = []
    lock = threading.Lock()

    def click(voter: str) -> None:
        barrier.wait(timeout=30)
        outcome = d.vote(request.id, voter, "approve")
        with lock:
            results.append(outcome.result)

    threads = [threading.Thread(target=click, args=(v,)) for v in voters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results.count("approved") == 1 and results.count("counted") == 1
    with d.registry.reading() as session:
        moves = session.execute(
            sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "promote",
                                                                     AuditEvent.environment == "production")
        ).scalar_one()
    assert moves == 1


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("[environments.production]\napprovals = 'two'\napproval_channel = 'C0A'\n", ":2:", "whole number"),
        ("[environments.production]\napprovals = 2\n", ":2:", "approval_channel"),
        ("[roles]\nadmins = 'U1'\n", ":2:", "list of Slack user ids"),
        ("[environments.production]\ngates = ['auc >>> 1']\n", ":2:", "comparison"),
        ("[environments.production]\nexpires_after = 'soon'\n", ":2:", "duration"),
        ("[environments.production]\nrequires = 'qa'\n", ":2:", "names no environment"),
        ("[environment.production]\n", ":1:", "unknown section"),
        ("[roles\n", ":1:", "check quotes"),
    ],
)
def test_bad_policy_names_file_line_and_fix(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "modelbot.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_policy(path)
    assert str(path) in str(error.value) and where in str(error.value) and message in str(error.value)


def test_example_policy_parses() -> None:
    example = Path(__file__).resolve().parents[2] / "modelbot.example.toml"
    policy = load_policy(example)
    assert policy.env("production").approvals == 2
    assert parse_policy({}, PolicyFile(example, "")).env("production").approvals == 0


def test_expiry_and_operator_moves_close_requests_on_the_sweep_audited(deployments: Deployments,
                                                                      clock: Clock) -> None:
    d = deployments
    seed(d, GOOD, GOOD)
    staged(d, "1", "2")
    d.registry.promote("churn", "1", "production", actor="bootstrap")
    first = d.request_promotion("churn", "2", "production", requester="U0DEPLOY").request
    assert first is not None
    d.registry.promote("churn", "2", "production", actor="operator")  # outside the rule book
    assert d.expire_due() == 0
    moot = d.get_request(first.id)
    assert (moot.status, moot.decided_by, moot.decision_reason) == ("moot", "modelbot", "v2 already serves production")
    second = d.request_promotion("churn", "1", "production", requester="U0DEPLOY").request
    assert second is not None
    clock.now += timedelta(hours=25)
    assert d.expire_due() == 1
    actions = [(e.action, e.actor, e.request_id) for e in d.registry.history("churn", "production")]
    assert ("moot", "modelbot", str(first.id)) in actions and actions[-1] == ("expire", "modelbot", str(second.id))
    with d.registry.reading() as session:
        cards = session.execute(sa.select(OutboxMessage.kind, OutboxMessage.message_key)
                                .where(OutboxMessage.template == "approval_card")).all()
    assert ("update", f"request:{first.id}") in cards and ("update", f"request:{second.id}") in cards


def test_a_canary_ended_by_a_rollback_is_recorded_and_its_promotion_request_closes(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD, GOOD, GOOD)
    staged(d, "1", "2", "3")
    d.registry.promote("churn", "1", "production", actor="a")
    d.registry.promote("churn", "2", "production", actor="a")
    d.set_canary("churn", "3", "production", 10, actor="U0DEPLOY")
    request = d.promote_canary("churn", "production", actor="U0DEPLOY").request
    assert request is not None
    outcome = d.rollback("churn", "production", actor="U0DEPLOY", reason="errors")
    assert outcome.move is not None and outcome.move.state.canary is None
    assert [e.action for e in d.registry.history("churn", "production")][-3:] == ["canary_abort", "rollback", "moot"]
    assert d.get_request(request.id).decision_reason == "the canary of v3 no longer runs in production"


def test_cancel_is_the_requesters_or_an_admins_and_is_audited(deployments: Deployments) -> None:
    d = deployments
    seed(d, GOOD)
    staged(d, "1")
    request = d.request_promotion("churn", "1", "production", requester="U0DEPLOY").request
    assert request is not None
    with pytest.raises(Forbidden, match="Only the requester or an admin"):
        d.cancel(request.id, "U0APPR1")
    view = d.cancel(request.id, "U0ADMIN", reason="wrong version")
    assert (view.status, view.decided_by, view.decision_reason) == ("cancelled", "U0ADMIN", "wrong version")
    with pytest.raises(Conflict, match="already cancelled"):
        d.cancel(request.id, "U0DEPLOY")
    assert [(e.action, e.actor) for e in d.registry.history("churn", "production")] == [
        ("promote_requested", "U0DEPLOY"), ("cancel_refused", "U0APPR1"), ("cancel", "U0ADMIN"),
        ("cancel_refused", "U0DEPLOY")]


def test_group_members_are_resolved_once_before_the_transaction(db: Database, tmp_path: Path, clock: Clock) -> None:
    """The resolver (Slack, in production) is asked before any write lock is taken: here it
    checks that nothing holds the database while it answers (issue 11, defect 4)."""
    path = tmp_path / "modelbot.toml"
    path.write_text(POLICY)
    policy = load_policy(path)
    registry = Registry(db, environments=policy.environment_names, clock=clock)
    asked: list[str] = []

    def groups(handle: str) -> frozenset[str]:
        asked.append(handle)
        with db.write() as session:  # BEGIN IMMEDIATE: fails if this process's decision held SQLite's lock
            session.execute(sa.text("SELECT 1"))
        return frozenset({"U0LEAD"}) if handle == "ml-leads" else frozenset()

    d = Deployments(registry, policy, groups=groups, clock=clock)
    seed(d, GOOD)
    d.registry.promote("churn", "1", "staging", actor="a")
    request = d.request_promotion("churn", "1", "production", requester="U0DEPLOY").request
    assert request is not None
    asked.clear()
    assert d.vote(request.id, "U0LEAD", "approve").result == "counted"
    assert sorted(asked) == ["ml-eng", "ml-leads"]  # each group once per decision


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[environments.production]\napprovals = 2\napprovers = ['U1']\napproval_channel = 'C0A'\n", "approvals",
         "approvals = 2 can never be met: at most 1"),
        ("[roles]\ndeployers = ['U1', 'U2']\n[environments.production]\napprovals = 2\napprovers = ['U1', 'U2']\n"
         "approval_channel = 'C0A'\n", "approvals", "the requester cannot approve their own request"),
        ("[environments.production]\nrollback_approvals = 3\napprovers = ['U1', 'U2']\napproval_channel = 'C0A'\n",
         "rollback_approvals", "rollback_approvals = 3 can never be met"),
        ("[environments.production]\ncanary_approvals = 2\napprovers = ['U1']\napproval_channel = 'C0A'\n",
         "canary_approvals", "canary_approvals = 2 can never be met"),
    ],
)
def test_unsatisfiable_approvals_stop_start_up_at_their_line(tmp_path: Path, text: str, key: str,
                                                             message: str) -> None:
    path = tmp_path / "modelbot.toml"
    path.write_text("# approvals\n" + text)
    with pytest.raises(ConfigError) as error:
        load_policy(path)
    line = next(i for i, row in enumerate(path.read_text().splitlines(), 1) if row.startswith(key))
    assert f"{path}:{line}: " in str(error.value) and message in str(error.value)


@pytest.mark.parametrize(
    "text",
    [
        # a deployer who is not an approver may ask, and both approvers can vote
        "[roles]\ndeployers = ['ci']\n[environments.production]\napprovals = 2\napprovers = ['U1', 'U2']\n"
        "approval_channel = 'C0A'\n",
        # self-approval allowed: the requester's vote counts
        "[roles]\ndeployers = ['U1', 'U2']\n[environments.production]\napprovals = 2\napprovers = ['U1', 'U2']\n"
        "allow_self_approval = true\napproval_channel = 'C0A'\n",
        # a group's members are not known before Slack answers
        "[environments.production]\napprovals = 3\napprovers = ['@ml-leads']\napproval_channel = 'C0A'\n",
        # admins approve too
        "[roles]\nadmins = ['A1']\n[environments.production]\napprovals = 2\napprovers = ['U1']\n"
        "approval_channel = 'C0A'\n",
    ],
)
def test_satisfiable_approvals_start(tmp_path: Path, text: str) -> None:
    path = tmp_path / "modelbot.toml"
    path.write_text(text)
    assert load_policy(path).env("production").approvals >= 2
