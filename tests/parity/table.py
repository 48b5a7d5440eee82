"""Running a parity table: a case sets up its cell through the domain, performs its acts
through one door, and the cell is checked against the case's expectations and against what
the other doors did with the same case (`run_case`: one test per case, all doors inside it, so
parallel workers never split a comparison).

    Case(id, setup, acts, expect, audit, not_offered={door: why})

`expect` is about the last act:
    Expect("done")                a decision was made
    Expect("refused", says=…)     a rule said no: one `*_refused` audit row carrying the sentence
    Expect("invalid", says=…)     bad input: nothing written
    Expect("unchanged", says=…)   a repeat (a second click): nothing written, the first stands
    Expect("decided", says=…)     the request was decided, expired or moot before: the act did not count
`audit` lists the actions of the audit rows the acts wrote, in order. Every door must show the
expected outcome with `says` in its answer, and leave the same audit rows (actors, sentences,
versions, weights) and the same database state as the others.
"""

from __future__ import annotations

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


def run_case(world: World, case: Case) -> None:
    """The case through every door of the world. Every door's failure is reported, and every
    door must leave the same audit rows and database state as the first one that ran it."""
    first: tuple[str, dict[str, Any]] | None = None
    failures: list[str] = []
    for door in world.doors().values():
        try:
            snapshot = run_cell(world, case, door)
        except AssertionError as failure:
            failures.append(f"{door.name}: {failure}")
            continue
        if snapshot is None:
            continue  # the door does not offer it, as the table says
        if first is None:
            first = (door.name, snapshot)
        elif snapshot != first[1]:
            failures.append(f"{door.name} differs from {first[0]}:\n  {snapshot}\n  {first[1]}")
    assert not failures, "\n".join(failures)


def run_cell(world: World, case: Case, door: Door) -> dict[str, Any] | None:
    """One door: set up, act, check against the table. Returns what the other doors must match
    (None where the door does not offer the act, as the table says)."""
    cell = world.cell(case.id, door)
    case.setup(Setup(cell))
    before = cell.audit()
    if door.name in case.not_offered:
        try:
            for act in case.acts:
                door.perform(act, cell)
        except NotOffered:
            assert cell.audit() == before
            return None
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
    return {"audit": written, "state": cell.state()}


def _check_answer(expect: Expect, door: Door, answer: Answer) -> None:
    error = expect.outcome in ("refused", "invalid") or (expect.outcome == "decided" and door.name in DECIDED_IS_ERROR)
    assert answer.error == error, (expect, answer)
    assert expect.says in answer.text, (expect.says, answer.text)
