"""`/model status` and `modelbot status`: how a model is doing now, per environment and version.

Every number belongs to the version that produced it (samples carry their version, or were
attributed from the deployment history when recorded — `attribution.py`). For each
environment, with S the stable version, P the previous one and C a running canary:

- per metric, S's own numbers: its latest value, its mean over the window, and the change
  against S's own mean over the window before (Δwindow);
- P's numbers "before": its mean over the 30 days before S took over, and Δprev = S's window
  mean − that mean — each version's own samples, never one version against itself;
- C's own numbers beside S's while a canary runs; samples measured while a canary took
  traffic and naming no version are shown apart ("unattributed"), since they mix both;
- "vS: no data yet (serving since …)" when S has not been measured since it took over;
- a drift and a data-quality summary from S's latest samples, label coverage over the window
  (Σ labelled / Σ predictions), availability from the `up` probes, the health of the sources
  feeding the model ("no data since …"), and what is firing.

With nothing serving, the numbers are whatever the environment measured, each labelled with
its version. What is firing comes from a pluggable callable (`set_firing_provider`). The
JSON shape (`ModelStatus.to_dict`) is documented in the README and kept stable for scripts.

Light on purpose (no numpy or pandas): `modelbot status` imports this from a cold start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain.compare import Direction, metric_direction
from bot.domain.entities import EnvironmentState, as_utc, iso
from bot.domain.monitoring import availability as avail
from bot.domain.monitoring import metric_names as mn
from bot.domain.monitoring.recording import source_status
from bot.domain.monitoring.samples import Aggregate, Point, Samples
from bot.domain.registry import Registry

DEFAULT_WINDOW = timedelta(hours=24)
VERSION_LOOKBACK = timedelta(days=30)
TOP_DRIFTING = 5
INCLUSIVE = timedelta(microseconds=1)
UP_METRIC = "up"

# (model, environment) -> what fires there, as JSON-ready dicts (name, severity, since, summary, …)
FiringProvider = Callable[[str, str], Sequence[Mapping[str, Any]]]


def no_alerts(model: str, environment: str) -> Sequence[Mapping[str, Any]]:
    return ()


_firing_provider: FiringProvider = no_alerts


def set_firing_provider(provider: FiringProvider | None) -> None:
    """The alerting feature plugs in here; None restores "nothing fires"."""
    global _firing_provider
    _firing_provider = provider or no_alerts


def firing_provider() -> FiringProvider:
    return _firing_provider


@dataclass(frozen=True)
class Stats:
    """Samples of one version over a span; `version` None = samples that name no version."""

    mean: float
    count: int
    version: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "count": self.count, "version": self.version}


@dataclass(frozen=True)
class PreviousVersion:
    """The previous version's own numbers over the 30 days before the stable took over."""

    version: int
    stats: Stats
    last: float
    last_at: datetime
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "mean": self.stats.mean, "count": self.stats.count, "last": self.last,
                "last_at": iso(self.last_at), "start": iso(self.start), "end": iso(self.end)}


@dataclass(frozen=True)
class CanaryNumbers:
    version: int
    value: float | None
    at: datetime | None
    window: Stats | None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "value": self.value, "at": iso(self.at),
                "window": None if self.window is None else self.window.to_dict()}


@dataclass(frozen=True)
class MetricStatus:
    """One metric of one environment. `version`, `value`, `at`, `window` and `previous_window`
    are the stable version's own (None: it has no sample yet)."""

    metric: str
    direction: Direction
    version: int | None
    value: float | None
    at: datetime | None
    window: Stats | None
    previous_window: Stats | None
    previous: PreviousVersion | None = None
    canary: CanaryNumbers | None = None
    unattributed: Stats | None = None

    @property
    def change_vs_previous_window(self) -> float | None:
        if self.window is None or self.previous_window is None:
            return None
        return self.window.mean - self.previous_window.mean

    @property
    def change_vs_previous_version(self) -> float | None:
        if self.window is None or self.previous is None:
            return None
        return self.window.mean - self.previous.stats.mean

    @property
    def canary_vs_stable(self) -> float | None:
        if self.canary is None or self.canary.window is None or self.window is None:
            return None
        return self.canary.window.mean - self.window.mean

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "value": self.value,
            "at": iso(self.at),
            "direction": self.direction,
            "window": None if self.window is None else self.window.to_dict(),
            "previous_window": None if self.previous_window is None else self.previous_window.to_dict(),
            "change_vs_previous_window": self.change_vs_previous_window,
            "previous_version": None if self.previous is None else self.previous.to_dict(),
            "change_vs_previous_version": self.change_vs_previous_version,
            "canary": None if self.canary is None else {**self.canary.to_dict(),
                                                        "change_vs_stable": self.canary_vs_stable},
            "unattributed": None if self.unattributed is None else self.unattributed.to_dict(),
        }


@dataclass(frozen=True)
class FeatureDriftStatus:
    feature: str
    method: str
    metric: str
    value: float
    threshold: float
    drifting: bool
    at: datetime

    @property
    def severity(self) -> float:
        """How far past its threshold (>1 = drifting), comparable across methods."""
        if self.method in mn.P_VALUE_METHODS:
            return self.threshold / max(self.value, 1e-300)
        return self.value / self.threshold if self.threshold else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "method": self.method, "metric": self.metric, "value": self.value,
                "threshold": self.threshold, "drifting": self.drifting, "at": iso(self.at)}


@dataclass(frozen=True)
class DriftSummary:
    drift_share: float | None
    dataset_drift: bool | None
    at: datetime | None
    features: tuple[FeatureDriftStatus, ...]  # drifting first, most severe first
    version: int | None = None

    @property
    def drifting(self) -> tuple[FeatureDriftStatus, ...]:
        return tuple(f for f in self.features if f.drifting)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "at": iso(self.at),
            "features_checked": len(self.features),
            "drifting_features": [f.to_dict() for f in self.drifting[:TOP_DRIFTING]],
            "drifting_count": len(self.drifting),
        }


@dataclass(frozen=True)
class QualityIssue:
    """A data-quality share above zero: `missing` of `age` is 3 % (from the latest sample)."""

    feature: str
    kind: str
    share: float
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "kind": self.kind, "share": self.share, "at": iso(self.at)}


@dataclass(frozen=True)
class DataQualitySummary:
    version: int | None
    features_checked: int
    issues: tuple[QualityIssue, ...]  # largest share first

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "features_checked": self.features_checked,
                "issues": [i.to_dict() for i in self.issues]}


@dataclass(frozen=True)
class LabelCoverage:
    """How many of the window's predictions have their label back (late labels)."""

    version: int | None
    predictions: float
    labelled: float

    @property
    def share(self) -> float | None:
        return None if self.predictions <= 0 else self.labelled / self.predictions

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "predictions": self.predictions, "labelled": self.labelled,
                "share": self.share}


@dataclass(frozen=True)
class SourceHealth:
    name: str
    type: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    samples_last_pull: int

    @property
    def healthy(self) -> bool:
        return self.last_success_at is not None and self.last_error is None

    def no_data_since(self) -> str:
        return "never pulled" if self.last_attempt_at is None else (
            f"no data since {iso(self.last_success_at)}" if self.last_success_at else "no data yet")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "healthy": self.healthy,
                "last_attempt_at": iso(self.last_attempt_at), "last_success_at": iso(self.last_success_at),
                "last_error": self.last_error, "samples_last_pull": self.samples_last_pull}


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str
    serving: EnvironmentState
    metrics: dict[str, MetricStatus]
    drift: DriftSummary | None
    availability: avail.AvailabilityReport | None
    firing: tuple[Mapping[str, Any], ...]
    sources: tuple[SourceHealth, ...]
    notes: tuple[str, ...] = ()
    stable_since: datetime | None = None
    canary_since: datetime | None = None
    data_quality: DataQualitySummary | None = None
    coverage: LabelCoverage | None = None

    @property
    def has_data(self) -> bool:
        return any(m.value is not None for m in self.metrics.values())

    @property
    def stable_has_no_data(self) -> bool:
        """A stable version serves but has no sample of its own yet."""
        return self.serving.stable is not None and bool(self.metrics) and all(
            m.value is None for m in self.metrics.values())

    def to_dict(self) -> dict[str, Any]:
        s = self.serving
        return {
            "environment": self.environment,
            "serving": {"stable": s.stable, "previous": s.previous, "canary": s.canary,
                        "canary_weight": s.canary_weight, "stable_since": iso(self.stable_since),
                        "canary_since": iso(self.canary_since)},
            "metrics": {name: m.to_dict() for name, m in sorted(self.metrics.items())},
            "drift": None if self.drift is None else self.drift.to_dict(),
            "data_quality": None if self.data_quality is None else self.data_quality.to_dict(),
            "label_coverage": None if self.coverage is None else self.coverage.to_dict(),
            "availability": None if self.availability is None else self.availability.to_dict(),
            "firing": [dict(f) for f in self.firing],
            "sources": [src.to_dict() for src in self.sources],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelStatus:
    model: str
    generated_at: datetime
    window: timedelta
    environments: tuple[EnvironmentStatus, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "generated_at": iso(self.generated_at),
            "window": {"seconds": self.window.total_seconds(), "start": iso(self.generated_at - self.window),
                       "end": iso(self.generated_at)},
            "environments": [e.to_dict() for e in self.environments],
        }


@dataclass(frozen=True)
class SourceRef:
    """A configured source that feeds a model (name and type; status is read from the database)."""

    name: str
    type: str
    environments: tuple[str, ...] = ()  # the environments it measures; () = any

    def feeds(self, environment: str) -> bool:
        return not self.environments or environment in self.environments


@dataclass
class StatusQuery:
    """Everything `model_status` needs besides the registry; callers fill what they know."""

    now: datetime
    window: timedelta = DEFAULT_WINDOW
    sources: Sequence[SourceRef] = ()
    directions: Mapping[str, Direction] = field(default_factory=dict)
    firing: FiringProvider | None = None


def model_status(registry: Registry, model: str, environment: str | None, query: StatusQuery) -> ModelStatus:
    """The status of one model: one environment, or every environment of the policy."""
    name = registry.get_model(model).name
    envs = [environment] if environment else list(registry.environments)
    samples = Samples(registry)
    health = source_health(registry, query.sources)
    firing = query.firing or _firing_provider
    now = as_utc(query.now)
    out = []
    for env in envs:
        key = env.strip().lower().lstrip("@")
        feeding = tuple(h for h, ref in zip(health, query.sources, strict=True) if ref.feeds(key))
        out.append(_environment(registry, samples, name, env, now, query, feeding, firing))
    return ModelStatus(name, now, query.window, tuple(out))


# ---- one environment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Numbers:
    """What the samples say for one environment, per (metric, version)."""

    latest: dict[tuple[str, int | None], Point]
    window: dict[tuple[str, int | None], Aggregate]
    before: dict[tuple[str, int | None], Aggregate]
    previous: dict[tuple[str, int | None], Aggregate]


def _environment(
    registry: Registry,
    samples: Samples,
    model: str,
    environment: str,
    now: datetime,
    query: StatusQuery,
    health: tuple[SourceHealth, ...],
    firing: FiringProvider,
) -> EnvironmentStatus:
    state = registry.environment_state(model, environment)
    env = state.environment
    history = samples.history(model, env)
    stable_since = history.since(state.stable)
    canary_since = history.since(state.canary, canary=True) if state.canary else None
    end = now + INCLUSIVE  # a sample stamped exactly `now` belongs to this status
    start, earlier = now - query.window, now - 2 * query.window
    subject = None if state.stable is None else [state.stable]  # nothing serves: every version measured
    shown = None if subject is None else [state.stable, state.canary, None]
    takeover = stable_since or now
    numbers = _Numbers(
        latest=samples.latest_by_version(model, env, before=end, versions=None if subject is None else [
            state.stable, state.canary, state.previous]),
        window=samples.aggregates(model, env, start, end, versions=shown),
        before=samples.aggregates(model, env, earlier, start, versions=subject),
        previous=({} if state.previous is None else samples.aggregates(
            model, env, takeover - VERSION_LOOKBACK, takeover, versions=[state.previous])),
    )
    metrics = {
        metric: _metric(metric, state, numbers, query, takeover)
        for metric in sorted({m for m, v in [*numbers.latest, *numbers.window] if _shown(v, state)})
    }
    availability = None
    if any(m == UP_METRIC for m, _ in numbers.latest):
        probes = avail.from_samples((p.at, p.value) for p in samples.window(model, env, UP_METRIC, start, end))
        availability = avail.availability(probes, start, now)
    latest = _subject_latest(numbers.latest, state.stable)
    status = EnvironmentStatus(
        environment=env, serving=state, metrics=metrics, drift=drift_summary(latest, state.stable),
        availability=availability, firing=tuple(firing(model, env)), sources=health,
        stable_since=stable_since, canary_since=canary_since,
        data_quality=data_quality_summary(latest, state.stable),
        coverage=label_coverage(numbers.window, state.stable),
    )
    return _with_notes(status, numbers, now)


def _shown(version: int | None, state: EnvironmentState) -> bool:
    """Numbers of these versions are shown (every version's when nothing serves)."""
    return state.stable is None or version in (state.stable, state.canary, state.previous, None)


def _metric(metric: str, state: EnvironmentState, numbers: _Numbers, query: StatusQuery,
            takeover: datetime) -> MetricStatus:
    direction = metric_direction(metric, query.directions)
    if state.stable is None:
        latest = max((p for (m, _), p in numbers.latest.items() if m == metric), key=lambda p: p.at, default=None)
        window = _merged(a for (m, _), a in numbers.window.items() if m == metric)
        before = _merged(a for (m, _), a in numbers.before.items() if m == metric)
        return MetricStatus(metric, direction, None if latest is None else latest.version,
                            None if latest is None else latest.value, None if latest is None else latest.at,
                            window, before)
    s = state.stable
    latest = numbers.latest.get((metric, s))
    previous = None
    if state.previous is not None:
        agg = numbers.previous.get((metric, state.previous))
        last = numbers.latest.get((metric, state.previous))
        if agg is not None and last is not None:
            previous = PreviousVersion(state.previous, _stats(agg), last.value, last.at,
                                       takeover - VERSION_LOOKBACK, takeover)
    canary = None
    if state.canary is not None:
        point = numbers.latest.get((metric, state.canary))
        agg = numbers.window.get((metric, state.canary))
        canary = CanaryNumbers(state.canary, None if point is None else point.value,
                               None if point is None else point.at, None if agg is None else _stats(agg))
    mixed = numbers.window.get((metric, None))
    return MetricStatus(
        metric=metric, direction=direction, version=s,
        value=None if latest is None else latest.value, at=None if latest is None else latest.at,
        window=_maybe_stats(numbers.window.get((metric, s))),
        previous_window=_maybe_stats(numbers.before.get((metric, s))),
        previous=previous, canary=canary, unattributed=_maybe_stats(mixed),
    )


def _stats(agg: Aggregate) -> Stats:
    return Stats(agg.mean, agg.count, agg.version)


def _maybe_stats(agg: Aggregate | None) -> Stats | None:
    return None if agg is None else _stats(agg)


def _merged(aggs: Iterable[Aggregate]) -> Stats | None:
    """Several versions' samples as one (nothing serves: the environment's numbers as measured)."""
    items = list(aggs)
    if not items:
        return None
    count = sum(a.count for a in items)
    versions = {a.version for a in items}
    return Stats(math.fsum(a.total for a in items) / count, count, versions.pop() if len(versions) == 1 else None)


def _subject_latest(latest: Mapping[tuple[str, int | None], Point], stable: int | None) -> dict[str, Point]:
    """The newest point per metric of the stable version (of any version when nothing serves)."""
    out: dict[str, Point] = {}
    for (metric, version), point in sorted(latest.items(), key=lambda item: item[1].at):
        if stable is None or version == stable:
            out[metric] = point
    return out


def _with_notes(status: EnvironmentStatus, numbers: _Numbers, now: datetime) -> EnvironmentStatus:
    notes = []
    s = status.serving
    if not numbers.latest:
        notes.append("no samples yet for this environment.")
    elif s.stable is not None and not any(v == s.stable for _, v in numbers.latest):
        since = f" (serving since {iso(status.stable_since)})" if status.stable_since else ""
        notes.append(f"v{s.stable}: no data yet{since}.")
    elif not any(m.window for m in status.metrics.values()):
        newest = max(p.at for p in numbers.latest.values())
        notes.append(f"no data since {iso(newest)}.")
    mixed = sum(m.unattributed.count for m in status.metrics.values() if m.unattributed)
    if mixed and s.stable is not None:
        notes.append(f"{mixed} sample(s) in this window name no version (measured while a canary took traffic, "
                     "or before modelbot knew what served): shown apart, not as any version's.")
    for src in status.sources:
        if not src.healthy:
            reason = f": {src.last_error}" if src.last_error else ""
            notes.append(f"source {src.name}: {src.no_data_since()}{reason}")
    return EnvironmentStatus(**{**status.__dict__, "notes": tuple(notes)})


# ---- summaries ----------------------------------------------------------------------------------


def drift_summary(latest: Mapping[str, Point], version: int | None = None) -> DriftSummary | None:
    """From the latest drift samples: share, dataset verdict, features by severity."""
    features = []
    for metric, point in latest.items():
        parsed = mn.parse_drift_metric(metric)
        if parsed is None:
            continue
        method, feature = parsed
        threshold = float(mn.DEFAULT_THRESHOLDS[method])
        features.append(FeatureDriftStatus(feature, method, metric, point.value, threshold,
                                           mn.is_drifting(method, point.value, threshold), point.at))
    share = latest.get("drift_share")
    dataset = latest.get("dataset_drift")
    if not features and share is None and dataset is None:
        return None
    features.sort(key=lambda f: (not f.drifting, -f.severity, f.feature))
    at = (share or dataset).at if (share or dataset) else max(f.at for f in features)
    return DriftSummary(
        drift_share=None if share is None else share.value,
        dataset_drift=None if dataset is None else dataset.value >= 0.5,
        at=at, features=tuple(features), version=version,
    )


def data_quality_summary(latest: Mapping[str, Point], version: int | None = None) -> DataQualitySummary | None:
    """Data-quality shares above zero, from the latest samples, largest first."""
    checked, issues = set(), []
    for metric, point in latest.items():
        parsed = mn.parse_quality_metric(metric)
        if parsed is None:
            continue
        kind, feature = parsed
        checked.add(feature)
        if point.value > 0:
            issues.append(QualityIssue(feature, kind, point.value, point.at))
    if not checked:
        return None
    issues.sort(key=lambda i: (-i.share, i.feature, i.kind))
    return DataQualitySummary(version, len(checked), tuple(issues))


def label_coverage(window: Mapping[tuple[str, int | None], Aggregate], version: int | None) -> LabelCoverage | None:
    """Σ labelled predictions / Σ predictions over the window, for the windows that count labels."""
    def total(metric: str) -> float:
        return math.fsum(a.total for (m, v), a in window.items() if m == metric and (version is None or v == version))

    if not any(m == mn.LABELLED and (version is None or v == version) for m, v in window):
        return None
    return LabelCoverage(version, total(mn.PREDICTIONS), total(mn.LABELLED))


def is_summary_metric(metric: str) -> bool:
    """Shown in the drift, data-quality, coverage or availability line rather than as a metric."""
    return (metric == UP_METRIC or metric in mn.DRIFT_SUMMARY or metric in (mn.LABELLED, mn.COVERAGE)
            or mn.parse_drift_metric(metric) is not None or mn.parse_quality_metric(metric) is not None)


def source_health(registry: Registry, sources: Sequence[SourceRef]) -> tuple[SourceHealth, ...]:
    if not sources:
        return ()
    rows = source_status(registry, [s.name for s in sources])
    out = []
    for src in sources:
        row = rows.get(src.name)
        out.append(SourceHealth(
            name=src.name, type=src.type,
            last_attempt_at=as_utc(row.last_attempt_at) if row and row.last_attempt_at else None,
            last_success_at=as_utc(row.last_success_at) if row and row.last_success_at else None,
            last_error=row.last_error if row else None,
            samples_last_pull=row.samples_last_pull if row else 0,
        ))
    return tuple(out)


# ---- every model, one line each -------------------------------------------------------------------

HEADLINE_QUALITY = ("roc_auc", "roc_auc_ovr_macro", "accuracy", "f1", "r2", "rmse", "mae")
HEADLINE_LATENCY = ("latency_p95_ms", "health_latency_ms")


@dataclass(frozen=True)
class EnvironmentLine:
    environment: str
    stable: int | None
    quality: tuple[str, float] | None
    latency: tuple[str, float] | None
    uptime: float | None
    dataset_drift: bool | None
    firing: int
    newest: datetime | None
    stale: bool
    drift_share: float | None = None
    label_coverage: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "stable": self.stable,
                "quality": None if self.quality is None else {"metric": self.quality[0], "value": self.quality[1]},
                "latency": None if self.latency is None else {"metric": self.latency[0], "value": self.latency[1]},
                "uptime": self.uptime, "drift_share": self.drift_share, "dataset_drift": self.dataset_drift,
                "label_coverage": self.label_coverage, "firing": self.firing, "newest_sample_at": iso(self.newest),
                "stale": self.stale}


@dataclass(frozen=True)
class ModelLine:
    model: str
    environments: tuple[EnvironmentLine, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "environments": [e.to_dict() for e in self.environments]}


@dataclass(frozen=True)
class Overview:
    generated_at: datetime
    window: timedelta
    models: tuple[ModelLine, ...]
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": iso(self.generated_at), "window": {"seconds": self.window.total_seconds()},
                "total_models": self.total, "models": [m.to_dict() for m in self.models]}


def overview(registry: Registry, query: StatusQuery, *, limit: int = 40) -> Overview:
    """A compact line per model: the stable version's headline quality and latency, uptime, drift,
    label coverage, what fires, staleness — the same numbers `model_status` shows."""
    page = registry.list_models(limit=limit)
    samples = Samples(registry)
    firing = query.firing or _firing_provider
    lines = []
    for summary in page.items:
        envs = []
        for env in registry.environments:
            line = environment_line(samples, summary.name, env, summary.serving.get(env), query,
                                    len(firing(summary.name, env)))
            if line is not None:
                envs.append(line)
        lines.append(ModelLine(summary.name, tuple(envs)))
    return Overview(as_utc(query.now), query.window, tuple(lines), page.total)


def environment_line(
    samples: Samples, model: str, env: str, stable: int | None, query: StatusQuery, firing: int
) -> EnvironmentLine | None:
    """One environment on one line (None: nothing serves there and nothing was measured)."""
    now = as_utc(query.now)
    start, end = now - query.window, now + INCLUSIVE
    latest = samples.latest(model, env, before=end, versions=None if stable is None else [stable])
    if not latest and stable is None:
        return None
    uptime = None
    if UP_METRIC in latest:
        points = samples.window(model, env, UP_METRIC, start, end)
        uptime = avail.availability(avail.from_samples((p.at, p.value) for p in points), start, now).uptime
    newest = max((p.at for p in latest.values()), default=None)
    drift = drift_summary(latest, stable)
    coverage = None
    if mn.LABELLED in latest:
        found = label_coverage(samples.aggregates(model, env, start, end, versions=None if stable is None else [stable],
                                                  metrics=[mn.PREDICTIONS, mn.LABELLED]), stable)
        coverage = None if found is None else found.share
    return EnvironmentLine(
        environment=env, stable=stable, quality=_first(latest, HEADLINE_QUALITY),
        latency=_first(latest, HEADLINE_LATENCY), uptime=uptime,
        dataset_drift=None if drift is None else drift.dataset_drift, firing=firing, newest=newest,
        stale=newest is not None and newest < start,
        drift_share=None if drift is None else drift.drift_share, label_coverage=coverage,
    )


def _first(latest: Mapping[str, Point], names: Sequence[str]) -> tuple[str, float] | None:
    return next(((name, latest[name].value) for name in names if name in latest), None)
