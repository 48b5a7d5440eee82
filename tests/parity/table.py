"""Running a parity table: a case sets up its cell through the domain, performs its acts
through one door, and the cell is checked against the case's expectations and against what
the other doors did with the same case.

    Case(id, setup, acts, expect, audit, not_offered={door: why})

`expect` is about the last act: `Expect("done")`, `Expect("refused", says=…)` (a rule said no:
one `*_refused` audit row), `Expect("invalid", says=…)` (bad input: nothing written),
`Expect("unchanged", says=…)` (a repeat, e.g. a second click: nothing written, the first stands),
`Expect("decided", says=…)` (the request was decided, expired or moot before: the act did not count). `audit` lists the
actions of the audit rows the acts wrote, in order. Across doors, the normalised answer
(error or not, and the sentence), the audit rows and the database state must be identical.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.domain.registry import NewVersion
from storage.models import ChangeRequest
from tests.parity.doors import Act, Answer, Cell, Door, NotOffered, World

OUTCOMES = ("done", "refused", "invalid", "unchanged", "decided")
# Doors that report a vote on a request decided before as an error: a CI step whose vote did
# not count must notice (`modelbot approve` exits 2 then; a repeated vote exits 0, it stands).
DECIDED_IS_ERROR = {"cli"}


@dataclass(frozen=True)
class Expect:
    outcome: str
    says: str = ""

    def __post_init__(self) -> None:
        assert self.outcome in OUTCOMES, self.outcome


class Setup:
    """Builds a cell's starting point through the domain (the same for every door), with the
    personas as the door under test knows them."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        self.services = cell.services

    def versions(self, *aucs: float) -> None:
        for auc in aucs:
            self.services.registry.register(NewVersion(
                model=self.cell.model, artifact_uri=f"s3://models/{self.cell.model}/{auc}", actor="ci",
                metrics={"auc": auc}))

    def serve(self, version: int, *environments: str) -> None:
        """Make `version` the stable one (an operator's move: no policy)."""
        for env in environments:
            self.services.registry.promote(self.cell.model, str(version), env, actor="setup")

    def request(self, who: str, version: int, env: str) -> int:
        outcome = self.services.deployments.request_promotion(self.cell.model, str(version), env,
                                                              requester=self.cell.me(who))
        assert outcome.request is not None
        return outcome.request.id

    def rollback(self, who: str, env: str, to: int | None = None) -> None:
        self.services.deployments.rollback(self.cell.model, env, actor=self.cell.me(who),
                                           to=str(to) if to else None)

    def approve(self, who: str, request: int = -1, override: str | None = None) -> None:
        self.services.deployments.vote(self.cell.request(request), self.cell.me(who), "approve",
                                       override_reason=override)

    def canary(self, who: str, version: int, env: str, percent: int) -> None:
        self.services.deployments.set_canary(self.cell.model, str(version), env, percent, actor=self.cell.me(who))

    def expire(self, request: int = -1) -> None:
        """Move the request's deadline into the past (the clock is real in every door)."""
        with self.services.db.write() as session:
            session.execute(sa.update(ChangeRequest).where(ChangeRequest.id == self.cell.request(request))
                            .values(expires_at=datetime.now(UTC) - timedelta(hours=1)))


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Setup], None]
    acts: tuple[Act, ...]
    expect: Expect
    audit: tuple[str, ...]
    not_offered: Mapping[str, str] = field(default_factory=dict)
    # a check of its own on the cell once the acts are done (state the table cannot say)
    then: Callable[[Cell], None] | None = None


@dataclass
class Results:
    """What the first door did with each case, for the others to match (one per world)."""

    seen: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_cell(world: World, results: Results, case: Case, door: Door) -> None:
    cell = world.cell(case.id, door)
    case.setup(Setup(cell))
    before = cell.audit()
    if door.name in case.not_offered:
        try:
            for act in case.acts:
                door.perform(act, cell)
        except NotOffered:
            assert cell.audit() == before
            return
        raise AssertionError(f"the table says {door.name} does not offer this, but it did")
    answer: Answer | None = None
    for act in case.acts:
        answer = door.perform(act, cell)
    assert answer is not None
    _check_answer(case.expect, door, answer)
    written = cell.audit()[len(before):]
    assert [row[2] for row in written] == list(case.audit), written
    if case.expect.outcome == "refused":
        assert written and written[-1][2].endswith("_refused"), written
        assert written[-1][7] and case.expect.says in written[-1][7], written[-1]
    if case.then is not None:
        case.then(cell)
    snapshot = {"audit": written, "state": cell.state()}
    with results.lock:
        first = results.seen.setdefault(case.id, (door.name, snapshot))
    assert snapshot == first[1], f"{door.name} differs from {first[0]}"


def _check_answer(expect: Expect, door: Door, answer: Answer) -> None:
    error = expect.outcome in ("refused", "invalid") or (expect.outcome == "decided" and door.name in DECIDED_IS_ERROR)
    assert answer.error == error, (expect, answer)
    assert expect.says in answer.text, (expect.says, answer.text)
