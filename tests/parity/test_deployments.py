"""Parity matrix for deployment decisions (issue 10): each case through every door — signed
Slack HTTP, the shell, the CLI, REST — with the same outcome, database state and audit rows,
on SQLite and PostgreSQL. The defects of issue 10 that were found at a door are cases here,
so each is tested through the door where it was found (and every other).

Versions of every cell's model: v1 auc 0.90, v2 0.92, v3 0.80 (fails production's gate
against v1), v4 0.93 (never served staging). v1 serves staging, production and eu; v2 then v3
served staging after it (staging: v3, previous v2).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.parity.deployment_acts import (
    Approve,
    CanaryAbort,
    CanaryPromote,
    CanarySet,
    Cancel,
    History,
    Promote,
    Reject,
    Rollback,
)
from tests.parity.doors import DOORS, Cell, World, both, running_world
from tests.parity.table import Case, Expect, Setup, run_case

POLICY = f"""
[roles]
admins = {both("admin")}
deployers = {both("alice", "dave", "admin")}

[environments.staging]
approvals = 0

[environments.production]
approvals = 2
approvers = {both("alice", "bob", "carol")}
allow_self_approval = false
approval_channel = "C0APPROVALS"
expires_after = "24h"
requires = "staging"
gates = ["auc >= current.auc - 0.005"]
rollback_approvals = 1

[environments.eu]
approvals = 1
approvers = {both("bob", "carol")}
approval_channel = "C0APPROVALS"
requires = "staging"
gates = ["auc >= current.auc - 0.005"]
canary_approvals = 1

[environments.dev]
approvals = 0
gates = ["auc >= 0.85"]
"""

NO_OVERRIDE_IN_SLACK = {"slack": "/model promote and /model canary take no gate override (admins use the CLI or "
                                 "REST; Slack overrides on the approval card)",
                        "shell": "the shell speaks the /model grammar, which has no override on promote or canary"}


def base(s: Setup) -> None:
    s.versions(0.90, 0.92, 0.80, 0.93)
    s.serve(1, "staging", "production", "eu")
    s.serve(2, "staging")
    s.serve(3, "staging")


def with_(*steps):  # type: ignore[no-untyped-def]
    """`base`, then more setup steps."""
    def setup(s: Setup) -> None:
        base(s)
        for step in steps:
            step(s)
    return setup


def request(who: str, version: int, env: str):  # type: ignore[no-untyped-def]
    return lambda s: s.request(who, version, env)


def approve(who: str, override: str | None = None):  # type: ignore[no-untyped-def]
    return lambda s: s.approve(who, override=override)


def canary(version: int, env: str, percent: int):  # type: ignore[no-untyped-def]
    return lambda s: s.canary("dave", version, env, percent)


def serve(version: int, env: str):  # type: ignore[no-untyped-def]
    return lambda s: s.serve(version, env)


def served(env: str, stable: int | None, canary_version: int | None = None, weight: int = 0):  # type: ignore[no-untyped-def]
    def check(cell: Cell) -> None:
        state = cell.services.registry.environment_state(cell.model, env)
        assert (state.stable, state.canary, state.canary_weight) == (stable, canary_version, weight), state
    return check


def status(index: int, expected: str):  # type: ignore[no-untyped-def]
    def check(cell: Cell) -> None:
        assert cell.services.deployments.get_request(cell.request(index)).status == expected
    return check


def history_shows(*actions: str):  # type: ignore[no-untyped-def]
    def check(cell: Cell) -> None:
        entries = cell.services.registry.history(cell.model, "production", limit=500)
        assert set(actions) <= {e.action for e in entries}
        assert any(e.action == "canary_start" and e.weight == 25 for e in entries)
    return check


CASES = [
    # ---- promote ----------------------------------------------------------------------------------
    Case("promote-opens-request", base, (Promote("alice", "2", "production"),), Expect("done"),
         ("promote_requested",), then=status(-1, "pending")),
    Case("promote-now", base, (Promote("alice", "2", "dev"),), Expect("done"), ("promote",), then=served("dev", 2)),
    Case("promote-not-deployer", base, (Promote("bob", "2", "production"),),
         Expect("refused", "only deployers"), ("promote_refused",)),
    Case("promote-requires-staging", base, (Promote("alice", "4", "production"),),
         Expect("refused", "v4 has not served staging yet"), ("promote_refused",)),
    Case("promote-already-serves", base, (Promote("alice", "1", "production"),),
         Expect("refused", "v1 already serves production"), ("promote_refused",)),
    Case("promote-gate-without-approvals", base, (Promote("alice", "3", "dev"),),
         Expect("refused", "A gate fails: auc >= 0.85"), ("promote_refused",)),
    Case("promote-gate-admin-override", base, (Promote("admin", "3", "dev", override="verified by hand"),),
         Expect("done"), ("promote",), not_offered=NO_OVERRIDE_IN_SLACK, then=served("dev", 3)),
    Case("promote-gate-override-not-admin", base, (Promote("alice", "3", "dev", override="trust me"),),
         Expect("refused", "only an admin may override it"), ("promote_refused",), not_offered=NO_OVERRIDE_IN_SLACK),
    Case("promote-unknown-environment", base, (Promote("alice", "2", "moon"),),
         Expect("invalid", "There is no environment 'moon'"), ()),
    Case("promote-unknown-version", base, (Promote("alice", "9", "production"),),
         Expect("invalid", "M has no version 9"), ()),
    # defect 6: a running canary is never dropped silently
    Case("promote-during-canary", with_(canary(2, "production", 25)), (Promote("alice", "2", "production"),),
         Expect("refused", "A canary of v2 runs at 25 % in production: promote or abort it first."),
         ("promote_refused",), then=served("production", 1, 2, 25)),
    Case("promote-aborting-canary", with_(canary(2, "production", 25)),
         (Promote("alice", "2", "production", abort_canary=True),), Expect("done"),
         ("canary_abort", "promote_requested"), then=served("production", 1)),
    # ---- votes ------------------------------------------------------------------------------------
    Case("approve-counted", with_(request("alice", 2, "production")), (Approve("bob"),), Expect("done"),
         ("approve",), then=status(-1, "pending")),
    Case("approve-completes", with_(request("alice", 2, "production"), approve("bob")), (Approve("carol"),),
         Expect("done"), ("approve", "promote"), then=served("production", 2)),
    Case("approve-own-request", with_(request("alice", 2, "production")), (Approve("alice"),),
         Expect("refused", "cannot approve it yourself"), ("approve_refused",)),
    Case("approve-not-approver", with_(request("alice", 2, "production")), (Approve("dave"),),
         Expect("refused", "You are not an approver for production"), ("approve_refused",)),
    Case("approve-twice", with_(request("alice", 2, "production"), approve("bob")), (Approve("bob"),),
         Expect("unchanged", "You already approved"), ()),
    Case("approve-superseded", with_(request("alice", 2, "production"), request("dave", 2, "production")),
         (Approve("bob", request=0),), Expect("decided", "is already superseded"), ()),
    Case("approve-expired", with_(request("alice", 2, "production"), lambda s: s.expire()), (Approve("bob"),),
         Expect("decided", "expired at"), ("expire",), then=status(-1, "expired")),
    # defect 3: a failing gate blocks plain approvals
    Case("approve-failing-gate", with_(request("alice", 3, "production")), (Approve("bob"),),
         Expect("refused", "A gate fails, so this cannot be approved"), ("approve_refused",)),
    # defect 4: the override belongs to the request, and the remaining approval completes it
    Case("override-then-approve", with_(request("alice", 3, "production")),
         (Approve("admin", override="old label set"), Approve("bob")), Expect("done"),
         ("override", "approve", "promote"), then=served("production", 3)),
    Case("override-not-admin", with_(request("alice", 3, "production")), (Approve("bob", override="fine"),),
         Expect("refused", "Only an admin may override a failing gate."), ("override_refused",)),
    Case("override-gates-pass", with_(request("alice", 2, "production")), (Approve("admin", override="why not"),),
         Expect("refused", "passes: approve it normally"), ("override_refused",)),
    Case("override-twice", with_(request("alice", 3, "production"), approve("admin", "old label set")),
         (Approve("bob", override="me too"),), Expect("refused", "was already overridden by admin"),
         ("override_refused",)),
    Case("reject", with_(request("alice", 2, "production")), (Reject("bob"),), Expect("done"), ("reject",),
         then=status(-1, "rejected")),
    Case("reject-not-approver", with_(request("alice", 2, "production")), (Reject("dave"),),
         Expect("refused", "You are not an approver for production"), ("reject_refused",)),
    Case("cancel-own", with_(request("alice", 2, "production")), (Cancel("alice"),), Expect("done"), ("cancel",),
         then=status(-1, "cancelled")),
    Case("cancel-someone-elses", with_(request("alice", 2, "production")), (Cancel("dave"),),
         Expect("refused", "Only the requester or an admin may cancel"), ("cancel_refused",)),
    # ---- rollback ---------------------------------------------------------------------------------
    # defect 1: a rollback target must have served the environment
    Case("rollback-to-a-version-new-to-it", base, (Rollback("dave", "production", to="4"),),
         Expect("refused", "v4 never served production, so it is not a rollback target"), ("rollback_refused",),
         then=served("production", 1)),
    Case("rollback-now", base, (Rollback("dave", "staging", reason="latency"),), Expect("done"), ("rollback",),
         then=served("staging", 2)),
    Case("rollback-not-deployer", base, (Rollback("bob", "staging"),), Expect("refused", "only deployers"),
         ("rollback_refused",)),
    Case("rollback-needs-approval", with_(serve(2, "production")), (Rollback("dave", "production"),),
         Expect("done"), ("rollback_requested",), then=served("production", 2)),
    Case("rollback-approved", with_(serve(2, "production"), lambda s: s.rollback("dave", "production")),
         (Approve("bob"),), Expect("done"), ("approve", "rollback"), then=served("production", 1)),
    # defect 7: a request the environment already satisfies closes as moot
    Case("moot-after-rollback", with_(serve(2, "eu"), request("alice", 1, "eu")), (Rollback("dave", "eu"),),
         Expect("done"), ("rollback", "moot"), then=status(-1, "moot")),
    Case("moot-at-vote", with_(request("alice", 2, "eu"), serve(2, "eu")), (Approve("bob"),),
         Expect("decided", "is moot (v2 already serves eu)"), ("moot",), then=status(-1, "moot")),
    # ---- canary -----------------------------------------------------------------------------------
    Case("canary-start", base, (CanarySet("dave", "production", 5, version="2"),), Expect("done"),
         ("canary_start",), then=served("production", 1, 2, 5)),
    # defect 2: starting a canary obeys `requires` and the gates
    Case("canary-requires-staging", base, (CanarySet("dave", "production", 99, version="4"),),
         Expect("refused", "v4 has not served staging yet"), ("canary_start_refused",)),
    Case("canary-failing-gate", base, (CanarySet("dave", "production", 5, version="3"),),
         Expect("refused", "A gate fails: auc >= current.auc - 0.005"), ("canary_start_refused",)),
    Case("canary-needs-approval", base, (CanarySet("dave", "eu", 5, version="2"),), Expect("done"),
         ("canary_start_requested",), then=served("eu", 1)),
    Case("canary-start-approved", with_(lambda s: s.canary("dave", 2, "eu", 5)), (Approve("bob"),),
         Expect("done"), ("approve", "canary_start"), then=served("eu", 1, 2, 5)),
    Case("canary-step", with_(canary(2, "production", 5)), (CanarySet("dave", "production", 25),),
         Expect("done"), ("canary_weight",), then=served("production", 1, 2, 25)),
    Case("canary-step-not-deployer", with_(canary(2, "production", 5)), (CanarySet("bob", "production", 25),),
         Expect("refused", "only deployers"), ("canary_weight_refused",)),
    Case("canary-abort", with_(canary(2, "production", 25)), (CanaryAbort("dave", "production"),),
         Expect("done"), ("canary_abort",), then=served("production", 1)),
    Case("canary-abort-none-running", base, (CanaryAbort("dave", "production"),),
         Expect("refused", "No canary is running for M in production."), ("canary_abort_refused",)),
    Case("canary-promote", with_(canary(2, "production", 25)), (CanaryPromote("dave", "production"),),
         Expect("done"), ("canary_promote_requested",), then=served("production", 1, 2, 25)),
    Case("canary-promote-approved", with_(canary(2, "production", 25),
                                          lambda s: s.services.deployments.promote_canary(
                                              s.cell.model, "production", actor=s.cell.me("dave")),
                                          approve("bob")),
         (Approve("carol"),), Expect("done"), ("approve", "canary_promote"), then=served("production", 2)),
    # ---- history (defect 8) -------------------------------------------------------------------------
    Case("history-shows-every-decision",
         with_(request("alice", 2, "production"), request("dave", 2, "production"),
               lambda s: s.services.deployments.cancel(s.cell.request(-1), s.cell.me("dave")),
               canary(2, "production", 25)),
         (History("alice", "production"),), Expect("done", "supersede"), (),
         then=history_shows("promote_requested", "supersede", "cancel", "canary_start")),
]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(request.param, POLICY, tmp_path_factory.mktemp("parity")) as started:
        yield started


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_deployment_parity(world: World, case: Case) -> None:
    run_case(world, case)


def test_the_table_covers_every_door_and_names_each_case_once() -> None:
    assert {d.name for d in DOORS} == {"slack", "shell", "cli", "rest"}
    assert len({c.id for c in CASES}) == len(CASES) >= 30
    for case in CASES:
        assert set(case.not_offered) <= {d.name for d in DOORS}, case.id
