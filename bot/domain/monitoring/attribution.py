"""Which version served an environment at a given time, from its audited pointer moves.

Numbers must never be shown under a version that did not produce them. Sources do not always
know the version (a Prometheus series without a `version` label, a prediction log without a
version column, a sample pushed without one), so such a value is attributed here, from the
deployment history: to the stable version serving at its timestamp when no canary took
traffic then, and to no version while a canary did — its traffic mixed two versions, and
calling the mix either one would make a canary look like the stable or the other way round.

A `ServingHistory` is built from the audit rows that carry a deployment revision (every
pointer move: promote, rollback, canary start/step/promote/abort), oldest first.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.entities import as_utc

CANARY_STEPS = frozenset({"canary_start", "canary_weight"})


@dataclass(frozen=True)
class Move:
    """One audited pointer move: the action and the versions it names (audit semantics)."""

    at: datetime
    action: str
    from_version: int | None
    to_version: int | None
    weight: int | None = None


@dataclass(frozen=True)
class Serving:
    """What served from `since` until the next move (`since` None: before any move)."""

    since: datetime | None
    stable: int | None
    canary: int | None = None
    canary_weight: int = 0

    @property
    def sole(self) -> int | None:
        """The version every request went to, or None (nothing served, or a canary took traffic)."""
        if self.canary is not None and self.canary_weight > 0:
            return None
        return self.stable

    def after(self, move: Move) -> Serving:
        at = as_utc(move.at)
        if move.action in CANARY_STEPS:
            stable = move.from_version if move.from_version is not None else self.stable
            return Serving(at, stable, move.to_version, move.weight or 0)
        # promote, rollback, canary_promote and canary_abort all leave `to_version` as the stable,
        # and each ends any canary
        return Serving(at, move.to_version, None, 0)


class ServingHistory:
    """The sequence of serving states of one environment."""

    def __init__(self, moves: Iterable[Move] = ()) -> None:
        state = Serving(None, None)
        self.states: list[Serving] = [state]
        for move in moves:
            state = state.after(move)
            self.states.append(state)
        self._starts = [s.since.timestamp() for s in self.states[1:] if s.since is not None]

    def at(self, when: datetime) -> Serving:
        """The state at `when` (a move stamped exactly `when` has happened)."""
        index = bisect.bisect_right(self._starts, as_utc(when).timestamp())
        return self.states[index]

    def sole_version(self, when: datetime) -> int | None:
        return self.at(when).sole

    def change_points(self) -> tuple[list[float], list[int | None]]:
        """(epoch seconds each state starts, its sole version), for attributing many rows at once:
        a row at t belongs to `versions[bisect_right(starts, t) - 1]`, with `versions[0]` before
        any move (starts[0] is −inf)."""
        return [float("-inf"), *self._starts], [s.sole for s in self.states]

    def since(self, version: int | None, *, canary: bool = False) -> datetime | None:
        """When `version` last became the stable (or the canary) without interruption, if it is now."""
        current = self.states[-1]
        if version is None or (current.canary if canary else current.stable) != version:
            return None
        began = None
        for state in reversed(self.states):
            if (state.canary if canary else state.stable) != version:
                break
            began = state.since
        return began
