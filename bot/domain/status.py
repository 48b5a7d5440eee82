"""`/model status` and `modelbot status`: how a model is doing now, per environment.

For each environment: the latest value of every metric; its change against the
previous window (the window of the same length immediately before this one, compared
mean to mean, since single points are noisy); its change against the previous version
(the mean of the samples tagged with the deployment's `previous` version over the last
30 days, against this window's samples of the stable version); a drift summary from
the latest drift samples; availability from the `up` samples of health probes; the
health of the sources feeding the model ("no data since …"); and what is firing.

What is firing comes from a pluggable callable (`set_firing_provider`): the alerting
feature registers it when it lands; until then the list is empty. The JSON shape
(`ModelStatus.to_dict`) is documented in the README and kept stable for scripts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from bot.domain import availability as avail
from bot.domain.compare import Direction, metric_direction
from bot.domain.entities import EnvironmentState, as_utc, iso
from bot.domain.registry import Registry
from bot.domain.samples import Point, Samples
from storage.models import SourceStatus

DEFAULT_WINDOW = timedelta(hours=24)
VERSION_LOOKBACK = timedelta(days=30)
TOP_DRIFTING = 5
INCLUSIVE = timedelta(microseconds=1)
UP_METRIC = "up"
DRIFT_KEYS = ("drift_share", "dataset_drift")
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
_FEATURE_METRIC = re.compile(r"^(?P<method>[a-z]+?)(?P<p>_p)?:(?P<feature>.+)$")

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
    mean: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "count": self.count}


@dataclass(frozen=True)
class MetricStatus:
    metric: str
    value: float
    at: datetime
    version: int | None
    direction: Direction
    window: Stats | None
    previous_window: Stats | None
    previous_version: int | None
    previous_version_stats: Stats | None
    current_version_stats: Stats | None

    @property
    def change_vs_previous_window(self) -> float | None:
        if self.window is None or self.previous_window is None:
            return None
        return self.window.mean - self.previous_window.mean

    @property
    def change_vs_previous_version(self) -> float | None:
        if self.current_version_stats is None or self.previous_version_stats is None:
            return None
        return self.current_version_stats.mean - self.previous_version_stats.mean

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "at": iso(self.at),
            "version": self.version,
            "direction": self.direction,
            "window": None if self.window is None else self.window.to_dict(),
            "previous_window": None if self.previous_window is None else self.previous_window.to_dict(),
            "change_vs_previous_window": self.change_vs_previous_window,
            "previous_version": None if self.previous_version_stats is None else {
                "version": self.previous_version, **self.previous_version_stats.to_dict()},
            "change_vs_previous_version": self.change_vs_previous_version,
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
        if self.method in P_VALUE_METHODS:
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

    @property
    def drifting(self) -> tuple[FeatureDriftStatus, ...]:
        return tuple(f for f in self.features if f.drifting)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "at": iso(self.at),
            "features_checked": len(self.features),
            "drifting_features": [f.to_dict() for f in self.drifting[:TOP_DRIFTING]],
            "drifting_count": len(self.drifting),
        }


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

    @property
    def has_data(self) -> bool:
        return bool(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        s = self.serving
        return {
            "environment": self.environment,
            "serving": {"stable": s.stable, "previous": s.previous, "canary": s.canary,
                        "canary_weight": s.canary_weight},
            "metrics": {name: m.to_dict() for name, m in sorted(self.metrics.items())},
            "drift": None if self.drift is None else self.drift.to_dict(),
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
    end = now + INCLUSIVE  # a sample stamped exactly `now` belongs to this status
    latest = samples.latest(model, env, before=end)
    start, earlier = now - query.window, now - 2 * query.window
    metrics: dict[str, MetricStatus] = {}
    for metric, point in latest.items():
        points = samples.window(model, env, metric, earlier, end)
        current = [p for p in points if p.at >= start]
        previous = [p for p in points if p.at < start]
        stable_points = [p for p in current if p.version == state.stable] if state.stable else []
        previous_version_stats = None
        if state.previous is not None:
            previous_version_stats = _stats(
                samples.window(model, env, metric, now - VERSION_LOOKBACK, end, version=state.previous))
        metrics[metric] = MetricStatus(
            metric=metric, value=point.value, at=point.at, version=point.version,
            direction=metric_direction(metric, query.directions),
            window=_stats(current), previous_window=_stats(previous),
            previous_version=state.previous, previous_version_stats=previous_version_stats,
            current_version_stats=_stats(stable_points) or _stats(current),
        )
    availability = None
    if UP_METRIC in latest:
        probes = avail.from_samples((p.at, p.value) for p in samples.window(model, env, UP_METRIC, start, end))
        availability = avail.availability(probes, start, now)
    notes = []
    if not latest:
        notes.append("no samples yet for this environment.")
    elif not any(m.window for m in metrics.values()):
        newest = max(p.at for p in latest.values())
        notes.append(f"no data since {iso(newest)}.")
    for src in health:
        if not src.healthy:
            reason = f": {src.last_error}" if src.last_error else ""
            notes.append(f"source {src.name}: {src.no_data_since()}{reason}")
    return EnvironmentStatus(
        environment=env, serving=state, metrics=metrics, drift=drift_summary(latest),
        availability=availability, firing=tuple(firing(model, env)), sources=health, notes=tuple(notes),
    )


def _stats(points: Sequence[Point]) -> Stats | None:
    if not points:
        return None
    return Stats(math.fsum(p.value for p in points) / len(points), len(points))


def drift_summary(latest: Mapping[str, Point]) -> DriftSummary | None:
    """From the latest drift samples: share, dataset verdict, features by severity."""
    features = []
    for metric, point in latest.items():
        parsed = feature_drift_metric(metric)
        if parsed is None:
            continue
        method, feature = parsed
        from bot.domain.monitoring import DEFAULT_THRESHOLDS  # numpy + pandas: only with per-feature drift

        threshold = float(DEFAULT_THRESHOLDS[method])
        drifting = point.value < threshold if method in P_VALUE_METHODS else point.value >= threshold
        features.append(FeatureDriftStatus(feature, method, metric, point.value, threshold, drifting, point.at))
    share = latest.get("drift_share")
    dataset = latest.get("dataset_drift")
    if not features and share is None and dataset is None:
        return None
    features.sort(key=lambda f: (not f.drifting, -f.severity, f.feature))
    at = (share or dataset).at if (share or dataset) else max(f.at for f in features)
    return DriftSummary(
        drift_share=None if share is None else share.value,
        dataset_drift=None if dataset is None else dataset.value >= 0.5,
        at=at, features=tuple(features),
    )


def feature_drift_metric(metric: str) -> tuple[str, str] | None:
    """(method, feature) for a per-feature drift sample (`psi:age`, `ks_p:age`), else None."""
    match = _FEATURE_METRIC.match(metric)
    if not match:
        return None
    from bot.domain.monitoring import DEFAULT_THRESHOLDS  # numpy + pandas: only with per-feature drift

    if match.group("method") not in DEFAULT_THRESHOLDS:
        return None
    method = match.group("method")
    if (method in P_VALUE_METHODS) != bool(match.group("p")):
        return None
    return method, match.group("feature")


def is_summary_metric(metric: str) -> bool:
    """Shown in the drift or availability line rather than as a metric of its own."""
    return metric == UP_METRIC or metric in DRIFT_KEYS or feature_drift_metric(metric) is not None


def source_health(registry: Registry, sources: Sequence[SourceRef]) -> tuple[SourceHealth, ...]:
    if not sources:
        return ()
    with registry.reading() as session:
        rows = {r.name: r for r in session.exec(
            select(SourceStatus).where(SourceStatus.name.in_([s.name for s in sources]))  # type: ignore[attr-defined]
        )}
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

HEADLINE_QUALITY = ("roc_auc", "accuracy", "f1")
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

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "stable": self.stable,
                "quality": None if self.quality is None else {"metric": self.quality[0], "value": self.quality[1]},
                "latency": None if self.latency is None else {"metric": self.latency[0], "value": self.latency[1]},
                "uptime": self.uptime, "dataset_drift": self.dataset_drift, "firing": self.firing,
                "newest_sample_at": iso(self.newest), "stale": self.stale}


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
    """A compact line per model: headline quality and latency, uptime, drift, firing, staleness."""
    now = as_utc(query.now)
    start, end = now - query.window, now + INCLUSIVE
    page = registry.list_models(limit=limit)
    samples = Samples(registry)
    firing = query.firing or _firing_provider
    lines = []
    for summary in page.items:
        envs = []
        for env in registry.environments:
            latest = samples.latest(summary.name, env, before=end)
            stable = summary.serving.get(env)
            if not latest and stable is None:
                continue
            uptime = None
            if UP_METRIC in latest:
                points = samples.window(summary.name, env, UP_METRIC, start, end)
                uptime = avail.availability(avail.from_samples((p.at, p.value) for p in points), start, now).uptime
            newest = max((p.at for p in latest.values()), default=None)
            drift = latest.get("dataset_drift")
            envs.append(EnvironmentLine(
                environment=env, stable=stable, quality=_first(latest, HEADLINE_QUALITY),
                latency=_first(latest, HEADLINE_LATENCY), uptime=uptime,
                dataset_drift=None if drift is None else drift.value >= 0.5,
                firing=len(firing(summary.name, env)), newest=newest,
                stale=newest is not None and newest < start,
            ))
        lines.append(ModelLine(summary.name, tuple(envs)))
    return Overview(now, query.window, tuple(lines), page.total)


def _first(latest: Mapping[str, Point], names: Sequence[str]) -> tuple[str, float] | None:
    for name in names:
        if name in latest:
            return name, latest[name].value
    return None
