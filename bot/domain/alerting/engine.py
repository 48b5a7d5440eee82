"""One evaluation cycle over every enabled rule, run by the scheduler every minute.

The cycle reads the latest sample of every series in one query, evaluates the rules in
memory, and writes the changed states, incident groups and outbox notifications in one
transaction: a state change and the message it causes commit together. Canary aborts run
right after, through the deployments domain, so they are audited like any other change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlmodel import Session

from bot.domain.alerting import anomaly, notify
from bot.domain.alerting.rules import STORED, Rule, from_row
from bot.domain.alerting.state import Observation, SeriesState, condition, step
from bot.domain.alerting.state import Rule as Timing
from bot.domain.entities import as_utc
from bot.domain.errors import Conflict
from bot.domain.monitoring.metric_names import COVERAGE
from bot.domain.registry import Registry
from storage.models import Deployment
from storage.queries import alerting as queries
from storage.queries import samples as samples_queries

log = logging.getLogger("modelbot.alerts")
COVERED_LOOKBACK = timedelta(days=30)
"""How far back a rule with a minimum label coverage looks for a window with enough labels."""
SYSTEM_ACTOR = "modelbot"


@dataclass(frozen=True)
class AlertSettings:
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    default_channel: str | None = None
    evaluation_interval: timedelta = timedelta(minutes=1)


@dataclass
class CycleReport:
    rules: int = 0
    series: int = 0
    transitions: dict[str, int] = field(default_factory=dict)
    notifications: int = 0
    canary_aborts: list[str] = field(default_factory=list)
    inconclusive_canaries: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Series:
    rule: Rule
    name: str  # "stable" or "canary"
    version: int | None


@dataclass(slots=True)
class StateRow:
    """A series' state as plain values; `dirty` marks rows the cycle must write back."""

    rule_id: int
    series: str
    id: int | None = None
    state: str = "inactive"
    active_since: datetime | None = None
    firing_since: datetime | None = None
    last_true_at: datetime | None = None
    last_eval_at: datetime | None = None
    last_value: float | None = None
    last_threshold: float | None = None
    version: int | None = None
    no_data: bool = False
    consecutive_failures: int = 0
    group_id: int | None = None
    dirty: bool = False


_STATE_COLUMNS = [c for c in StateRow.__dataclass_fields__ if c != "dirty"]


CanaryAbort = Callable[[str, str, str], None]


class AlertEngine:
    def __init__(
        self,
        registry: Registry,
        settings: AlertSettings | None = None,
        *,
        abort_canary: CanaryAbort | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings or AlertSettings()
        self.abort_canary = abort_canary
        self.clock = clock or registry.clock

    def evaluate(self) -> CycleReport:
        now = self.clock()
        report = CycleReport()
        aborts: list[tuple[str, str, str]] = []
        with self.registry.writing() as session:
            rules = [from_row(row) for row in queries.rule_rows(session, STORED)]
            report.rules = len(rules)
            if not rules:
                return report
            models = queries.models_by_ids(session, {r.model_id for r in rules if r.model_id is not None})
            deployments = queries.deployments_of(session, models)
            lookback = max(r.no_data_after_seconds for r in rules)
            latest = _latest_values(session, now, lookback)
            covered = _covered_values(session, [r for r in rules if r.min_coverage is not None], now)
            registered = _registered_metrics(session, deployments.values())
            states = _load_states(session)
            touched: list[tuple[Rule, StateRow, str | None]] = []
            for rule in rules:
                assert rule.id is not None and rule.model_id is not None
                dep = deployments.get((rule.model_id, rule.environment))
                for series in _series_of(rule, dep):
                    report.series += 1
                    seen = self._observe(session, series, dep, covered if rule.min_coverage is not None else latest,
                                         registered, now)
                    row = states.get((rule.id, series.name))
                    if row is None:
                        row = StateRow(rule_id=rule.id, series=series.name, dirty=True)
                        states[(rule.id, series.name)] = row
                    before = _state_of(row)
                    after, transition = step(
                        Timing(rule.for_seconds, rule.keep_firing_for_seconds, rule.no_data,
                             count_failures=series.name == "canary"),
                        before, seen, now,
                    )
                    if _worth_writing(before, after):
                        _store(row, after, now)
                    if transition:
                        report.transitions[transition] = report.transitions.get(transition, 0) + 1
                    touched.append((rule, row, transition))
                    if series.name == "canary":
                        model = models[rule.model_id].name
                        if (rule.severity == "critical" and after.state == "firing"
                                and after.consecutive_failures >= rule.failure_limit):
                            why = (f"{rule.metric} = {after.last_value:.6g} breached {rule.op} "
                                   f"{after.last_threshold:.6g} for {after.consecutive_failures} consecutive "
                                   f"evaluations (failure limit {rule.failure_limit}; rule {rule.id})")
                            aborts.append((model, rule.environment, why))
                        if after.no_data and not before.no_data:
                            report.inconclusive_canaries.append(f"{model}@{rule.environment}")
            # A series that no longer exists (its canary was aborted or promoted) is over: resolve it,
            # or its group would stay open and its card say "firing" for ever.
            evaluated = {(rule.id, row.series) for rule, row, _ in touched}
            by_id: dict[int, Rule] = {rule.id: rule for rule in rules if rule.id is not None}
            for key, row in states.items():
                if row.state != "inactive" and key not in evaluated and key[0] in by_id:
                    was = row.state
                    _store(row, replace(_state_of(row), state="inactive", active_since=None, firing_since=None,
                                        consecutive_failures=0), now)
                    if was == "firing":
                        report.transitions["resolved"] = report.transitions.get("resolved", 0) + 1
                    touched.append((by_id[key[0]], row, "resolved" if was == "firing" else "inactive"))
            report.notifications = notify.update_groups(session, touched, models, deployments, self.settings, now,
                                                        inconclusive=report.inconclusive_canaries)
            _save_states(session, states.values())
        done: set[tuple[str, str]] = set()
        for model, env, why in aborts:
            if (model, env) in done or self.abort_canary is None:
                continue
            done.add((model, env))
            try:
                self.abort_canary(model, env, why)
                report.canary_aborts.append(f"{model}@{env}")
            except Conflict:
                pass  # already aborted or promoted meanwhile
        return report

    def _observe(
        self, session: Session, series: _Series, dep: Deployment | None, latest: dict[tuple[Any, ...], tuple[float, datetime]],
        registered: dict[tuple[int, int], dict[str, float]], now: datetime,
    ) -> Observation:
        rule = series.rule
        assert rule.model_id is not None
        value = _pick(latest, rule.model_id, rule.environment, rule.metric, series.version, series.name == "stable")
        if rule.kind == "anomaly":
            if value is None:
                return Observation(None, None, None, series.version)
            base = _anomaly_baseline(session, rule, series.version, now)
            if base is None:
                return Observation(value, None, None, series.version)
            upper = base.median + rule.anomaly_k * base.deviation
            lower = base.median - rule.anomaly_k * base.deviation
            breached = value > upper or value < lower
            return Observation(value, upper if value >= base.median else lower, breached, series.version)
        threshold = rule.threshold
        if rule.baseline == "previous":
            previous = dep.previous_version if dep is not None else None
            if series.name == "canary" and dep is not None:
                previous = dep.stable_version  # a canary is judged against what it may replace
            reference = None
            if previous is not None:
                reference = _pick(latest, rule.model_id, rule.environment, rule.metric, previous, False)
                if reference is None:
                    reference = registered.get((rule.model_id, previous), {}).get(rule.metric)
            threshold = None if reference is None else reference + (rule.threshold or 0.0)
        return Observation(value, threshold, condition(rule.op, value, threshold), series.version)


def _series_of(rule: Rule, dep: Deployment | None) -> Iterable[_Series]:
    stable = dep.stable_version if dep is not None else None
    if rule.target in ("stable", "both"):
        yield _Series(rule, "stable", stable)
    if rule.target in ("canary", "both") and dep is not None and dep.canary_version is not None and dep.canary_weight:
        yield _Series(rule, "canary", dep.canary_version)


def _latest_values(session: Session, now: datetime, lookback_seconds: int) -> dict[tuple[Any, ...], tuple[float, datetime]]:
    """Newest value per (model, environment, metric, version) seen in the lookback window."""
    rows = queries.samples_between(session, now - timedelta(seconds=lookback_seconds), now)
    latest: dict[tuple[Any, ...], tuple[float, datetime]] = {}
    for model_id, env, metric, version, value, at in rows:
        key = (model_id, env, metric, version)
        at = as_utc(at)
        current = latest.get(key)
        if current is None or at >= current[1]:
            latest[key] = (value, at)
    return latest


def _covered_values(session: Session, rules: list[Rule], now: datetime) -> dict[tuple[Any, ...], tuple[float, datetime]]:
    """For rules with a minimum label coverage: per (model, environment, metric, version) the value of
    the newest window whose `label_coverage` sample (same version, same time) reaches the minimum —
    labels arrive late, so the newest window is often not the one to judge yet."""
    out: dict[tuple[Any, ...], tuple[float, datetime]] = {}
    for rule in rules:
        assert rule.model_id is not None
        rows = samples_queries.values_between(session, rule.model_id, rule.environment, [rule.metric, COVERAGE],
                                               now - COVERED_LOOKBACK, now + timedelta(microseconds=1))
        coverage = {(v, as_utc(at)): value for metric, v, at, value in rows if metric == COVERAGE}
        for metric, version, at, value in rows:
            at = as_utc(at)
            share = coverage.get((version, at))
            if metric != rule.metric or share is None or share < (rule.min_coverage or 0.0):
                continue
            key = (rule.model_id, rule.environment, rule.metric, version)
            if key not in out or at >= out[key][1]:
                out[key] = (value, at)
    return out


def _pick(
    latest: dict[tuple[Any, ...], tuple[float, datetime]], model_id: int, env: str, metric: str, version: int | None,
    unversioned_counts: bool,
) -> float | None:
    """The stable series also takes samples that carry no version (a source that doesn't know it)."""
    found = latest.get((model_id, env, metric, version)) if version is not None else None
    if unversioned_counts:
        plain = latest.get((model_id, env, metric, None))
        if plain is not None and (found is None or plain[1] > found[1]):
            found = plain
    return None if found is None else found[0]


def _registered_metrics(session: Session, deployments: Iterable[Deployment]) -> dict[tuple[int, int], dict[str, float]]:
    wanted = {(d.model_id, v) for d in deployments for v in (d.previous_version, d.stable_version) if v is not None}
    return queries.version_metrics(session, wanted)


def _anomaly_baseline(session: Session, rule: Rule, version: int | None, now: datetime) -> anomaly.Baseline | None:
    assert rule.model_id is not None
    start = now - timedelta(seconds=rule.anomaly_window_seconds)
    # the value being judged is excluded from its own baseline (the last evaluation interval)
    end = now - timedelta(minutes=1)
    raw, rolled = queries.series_history(session, rule.model_id, rule.environment, rule.metric, start, end)
    times = [as_utc(at).timestamp() for at, _ in raw] + [as_utc(h).timestamp() for h, _, _ in rolled]
    values = [v for _, v in raw] + [t / c for _, t, c in rolled]
    if not values:
        return None
    return anomaly.baseline(np.asarray(times), np.asarray(values, dtype=float), now, rule.anomaly_window_seconds)


def _load_states(session: Session) -> dict[tuple[int, str], StateRow]:
    states = {}
    for values in queries.state_rows(session, _STATE_COLUMNS):
        row = StateRow(*values)
        for name in ("active_since", "firing_since", "last_true_at", "last_eval_at"):
            value = getattr(row, name)
            if value is not None:
                setattr(row, name, as_utc(value))
        states[(row.rule_id, row.series)] = row
    return states


def _save_states(session: Session, rows: Iterable[StateRow]) -> None:
    """New rows in one multi-row INSERT, changed rows in one executemany UPDATE."""
    fields = [c for c in _STATE_COLUMNS if c not in ("id", "rule_id", "series")]
    rows = list(rows)
    queries.insert_states(session, [{c: getattr(r, c) for c in _STATE_COLUMNS if c != "id"}
                                    for r in rows if r.dirty and r.id is None])
    queries.update_states(session, fields, [{"_id": r.id, **{c: getattr(r, c) for c in fields}}
                                            for r in rows if r.dirty and r.id is not None])


def _state_of(row: StateRow) -> SeriesState:
    return SeriesState(
        state=row.state, active_since=row.active_since, firing_since=row.firing_since, last_true_at=row.last_true_at,
        no_data=row.no_data, consecutive_failures=row.consecutive_failures, last_value=row.last_value,
        last_threshold=row.last_threshold, version=row.version,
    )


def _worth_writing(before: SeriesState, after: SeriesState) -> bool:
    """Every change of state is written; a new value only while the alert is pending or
    firing (the card shows it) — inactive series would otherwise be rewritten every cycle."""
    if (before.state, before.active_since, before.firing_since, before.last_true_at, before.no_data,
            before.consecutive_failures, before.version) != (
            after.state, after.active_since, after.firing_since, after.last_true_at, after.no_data,
            after.consecutive_failures, after.version):
        return True
    return after.state != "inactive" and (before.last_value, before.last_threshold) != (
        after.last_value, after.last_threshold)


def _store(row: StateRow, state: SeriesState, now: datetime) -> None:
    row.state = state.state
    row.active_since, row.firing_since, row.last_true_at = state.active_since, state.firing_since, state.last_true_at
    row.no_data, row.consecutive_failures = state.no_data, state.consecutive_failures
    row.last_value, row.last_threshold, row.version = state.last_value, state.last_threshold, state.version
    row.last_eval_at = now
    row.dirty = True
