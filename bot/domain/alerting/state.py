"""The per-series state machine, as a pure function: easy to test with any clock.

inactive → pending (condition true, not yet held for `for`) → firing → (resolved) inactive.
A rule without `for` fires at once. `keep_firing_for` keeps a firing series firing until the
condition has been false that long (damps flapping). No data follows the rule's policy:
`keep` (default) leaves the state as it was and says so, `alert` counts as true, `ok` as false.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}


@dataclass(frozen=True)
class SeriesState:
    state: str = "inactive"
    active_since: datetime | None = None
    firing_since: datetime | None = None
    last_true_at: datetime | None = None
    no_data: bool = False
    consecutive_failures: int = 0
    last_value: float | None = None
    last_threshold: float | None = None
    version: int | None = None


@dataclass(frozen=True)
class Observation:
    """What one evaluation saw: `value` None means no data; `condition` None means undecidable."""

    value: float | None
    threshold: float | None
    condition: bool | None
    version: int | None = None


@dataclass(frozen=True)
class Rule:
    for_seconds: int = 0
    keep_firing_for_seconds: int = 0
    no_data: str = "keep"
    # only canary analysis needs the run of consecutive failing evaluations
    count_failures: bool = False


def step(rule: Rule, before: SeriesState, seen: Observation, now: datetime) -> tuple[SeriesState, str | None]:
    """Return the new state and the transition it made (pending, firing, resolved or None)."""
    condition = seen.condition
    no_data = seen.value is None or condition is None
    if no_data:
        if rule.no_data == "keep":
            return replace(before, no_data=True), None
        condition = rule.no_data == "alert"
    after = replace(before, no_data=no_data, version=seen.version if seen.version is not None else before.version,
                    last_value=seen.value if seen.value is not None else before.last_value,
                    last_threshold=seen.threshold if seen.threshold is not None else before.last_threshold)
    if condition:
        # Writing these on every evaluation would rewrite every true series every minute:
        # keep them only where a rule needs them (keep_firing_for, canary failure limits).
        if rule.keep_firing_for_seconds:
            after = replace(after, last_true_at=now)
        if rule.count_failures:
            after = replace(after, consecutive_failures=before.consecutive_failures + 1)
        if before.state == "firing":
            return after, None
        active_since = before.active_since if before.state == "pending" and before.active_since else now
        if now - active_since >= timedelta(seconds=rule.for_seconds):
            return replace(after, state="firing", active_since=active_since, firing_since=now), "firing"
        if before.state == "pending":
            return replace(after, active_since=active_since), None
        return replace(after, state="pending", active_since=active_since), "pending"
    if after.consecutive_failures:
        after = replace(after, consecutive_failures=0)
    if before.state == "firing":
        if (rule.keep_firing_for_seconds and before.last_true_at is not None
                and now - before.last_true_at < timedelta(seconds=rule.keep_firing_for_seconds)):
            return after, None
        return replace(after, state="inactive", active_since=None, firing_since=None), "resolved"
    if before.state == "pending":
        return replace(after, state="inactive", active_since=None), "inactive"
    return after, None


def condition(op: str, value: float | None, threshold: float | None) -> bool | None:
    if value is None or threshold is None:
        return None
    return COMPARE[op](value, threshold)
