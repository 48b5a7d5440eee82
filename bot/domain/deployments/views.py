"""What the deployment decisions hand back: a request as people see it, and what an action did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.entities import EnvironmentState, PointerMove, iso


@dataclass(frozen=True)
class RequestView:
    """A change request as people see it on the card and in `modelbot requests`."""

    id: int
    model: str
    version: int
    environment: str
    kind: str
    requester: str
    reason: str | None
    status: str
    approvals_needed: int
    approvals: tuple[tuple[str, str], ...]  # (voter, ISO time)
    rejections: tuple[tuple[str, str, str | None], ...]  # (voter, ISO time, reason)
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    override_by: str | None
    override_reason: str | None
    superseded_by: int | None
    from_version: int | None
    gates: tuple[dict[str, Any], ...]
    override_at: datetime | None = None
    # the traffic weight a canary starts at (kind canary_start)
    weight: int | None = None

    @property
    def gates_pass(self) -> bool:
        return all(g["passed"] for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model": self.model, "version": self.version, "environment": self.environment,
            "kind": self.kind, "requester": self.requester, "reason": self.reason, "status": self.status,
            "approvals_needed": self.approvals_needed,
            "approvals": [{"by": v, "at": t} for v, t in self.approvals],
            "rejections": [{"by": v, "at": t, "reason": r} for v, t, r in self.rejections],
            "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
            "decided_at": iso(self.decided_at), "decided_by": self.decided_by,
            "decision_reason": self.decision_reason, "override_by": self.override_by,
            "override_reason": self.override_reason, "override_at": iso(self.override_at),
            "superseded_by": self.superseded_by, "from_version": self.from_version, "gates": list(self.gates),
            "weight": self.weight,
        }


@dataclass(frozen=True)
class RequestOutcome:
    """What a change did: moved the pointer at once (`move`) or opened a request (`request`)."""

    request: RequestView | None = None
    move: PointerMove | None = None


@dataclass(frozen=True)
class CanaryOutcome:
    """What starting or stepping a canary did: changed it at once (`state`), or opened a request
    for approval (`request`, when the environment sets `canary_approvals`)."""

    state: EnvironmentState | None = None
    request: RequestView | None = None


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback would do now (step one of Slack's two taps); nothing has changed yet."""

    state: EnvironmentState
    target: int


@dataclass(frozen=True)
class VoteOutcome:
    request: RequestView
    # "approved" (this vote completed it), "counted", "rejected", "duplicate", "already_decided"
    result: str
    move: PointerMove | None = None
    notes: list[str] = field(default_factory=list)
