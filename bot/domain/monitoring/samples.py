"""Metric samples: recording what sources observe, and reading latest values and windows.

Digests, `/model status` and alert rules all read through here. Values are validated on the
way in (finite numbers, known models and environments) and written all-or-nothing per batch.
A sample that arrives without a version is attributed on the way in to the version that
served alone at its timestamp (`attribution.py`); while a canary took traffic it stays
without one, since it measured a mix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.domain import names
from bot.domain.entities import as_utc
from bot.domain.errors import InvalidInput
from bot.domain.monitoring.attribution import Move, ServingHistory
from bot.domain.registry import Registry
from storage.models import MetricRollup
from storage.queries import samples as q

if TYPE_CHECKING:
    from sqlmodel import Session

MAX_BATCH = 10_000


@dataclass(frozen=True)
class SampleIn:
    model: str
    environment: str
    metric: str
    value: float
    at: datetime
    version: int | None = None


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    version: int | None


@dataclass(frozen=True)
class Aggregate:
    """Samples of one (metric, version) over a span: how many, their mean and sum, first and last time."""

    metric: str
    version: int | None
    count: int
    mean: float
    total: float
    first_at: datetime
    last_at: datetime


class Samples:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def record(self, samples: Iterable[SampleIn], *, source: str, session: Session | None = None) -> int:
        """Validate and write one batch, all or nothing; `session` joins a write transaction the
        caller holds (a pull writes its samples and the source's status together)."""
        batch = list(samples)
        if len(batch) > MAX_BATCH:
            raise InvalidInput(f"A batch holds at most {MAX_BATCH:,} samples; this one has {len(batch):,}.")
        if not batch:
            return 0
        if session is None:
            with self.registry.writing() as own:
                return self._insert(own, batch, source)
        return self._insert(session, batch, source)

    def _insert(self, session: Session, batch: list[SampleIn], source: str) -> int:
        envs = self.registry.environments
        rows = []
        model_ids: dict[str, int] = {}
        for sample in batch:
            key = sample.model.lower()
            if key not in model_ids:
                model_ids[key] = self.registry.model_row(session, sample.model).id  # type: ignore[assignment]
            names.key(sample.metric, "metric")
            value = names.metric_value(sample.metric, sample.value)
            env = names.environment(sample.environment, envs)
            if sample.version is not None and sample.version < 1:
                raise InvalidInput("Sample versions start at 1.")
            rows.append({
                "model_id": model_ids[key], "version": sample.version, "environment": env,
                "metric": sample.metric, "value": value, "at": as_utc(sample.at), "source": source[:64],
            })
        unversioned = {(r["model_id"], r["environment"]) for r in rows if r["version"] is None}
        if unversioned:
            histories = _histories(session, {m for m, _ in unversioned})
            for row in rows:
                if row["version"] is None:
                    history = histories.get((row["model_id"], row["environment"]))
                    row["version"] = history.sole_version(row["at"]) if history else None
        q.insert_samples(session, rows)
        return len(rows)

    def replace_windows(self, samples: Sequence[SampleIn], *, source: str, session: Session) -> int:
        """Record recomputed windows: what `source` recorded before for the same model, environment
        and timestamp under these metric names is removed first, in the caller's transaction."""
        for (model, env, at), metrics in _by_window(samples).items():
            model_id = self.registry.model_row(session, model).id
            env = names.environment(env, self.registry.environments)
            q.delete_source_samples(session, source=source[:64], model_id=model_id,  # type: ignore[arg-type]
                                    environment=env, at=as_utc(at), metrics=metrics)
        return sum(self.record(samples[i:i + MAX_BATCH], source=source, session=session)
                   for i in range(0, len(samples), MAX_BATCH))

    def moves(self, model: str, environment: str) -> list[Move]:
        """The pointer moves of one environment, oldest first."""
        env = names.environment(environment, self.registry.environments)
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id
            return _moves(session, {model_id}, [env]).get((model_id, env), [])  # type: ignore[arg-type]

    def history(self, model: str, environment: str) -> ServingHistory:
        """What served this environment when."""
        return ServingHistory(self.moves(model, environment))

    def latest(
        self, model: str, environment: str, *, before: datetime | None = None, versions: q.Versions = None
    ) -> dict[str, Point]:
        """The newest value of every metric of one model and environment (of `versions` if given;
        when several versions have one, the newest wins)."""
        out: dict[str, Point] = {}
        for (metric, _version), point in sorted(self.latest_by_version(model, environment, before=before,
                                                                        versions=versions).items(),
                                                 key=lambda item: item[1].at):
            out[metric] = point
        return out

    def latest_by_version(
        self, model: str, environment: str, *, before: datetime | None = None, versions: q.Versions = None,
        metrics: Iterable[str] | None = None,
    ) -> dict[tuple[str, int | None], Point]:
        """The newest value of every (metric, version)."""
        env = names.environment(environment, self.registry.environments)
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id
            rows = q.latest_by_series(session, model_id, env, before=before, versions=versions,  # type: ignore[arg-type]
                                      metrics=metrics)
        return {(metric, version): Point(as_utc(at), value, version) for metric, version, value, at in rows}

    def aggregates(
        self, model: str, environment: str, start: datetime, end: datetime, *, versions: q.Versions = None,
        metrics: Iterable[str] | None = None,
    ) -> dict[tuple[str, int | None], Aggregate]:
        """Count, mean and sum per (metric, version) in [start, end) (hourly rollups count as one point)."""
        env = names.environment(environment, self.registry.environments)
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id
            rows = q.series_stats(session, model_id, env, start, end, versions=versions,  # type: ignore[arg-type]
                                  metrics=metrics)
        return {(metric, version): Aggregate(metric, version, int(count), float(mean), float(total), as_utc(first),
                                             as_utc(last))
                for metric, version, count, mean, total, first, last in rows}

    def window(
        self, model: str, environment: str, metric: str, start: datetime, end: datetime, *, version: int | None = None,
        versions: q.Versions = None,
    ) -> list[Point]:
        """Raw points in [start, end), then hourly rollups where raw data was compacted."""
        env = names.environment(environment, self.registry.environments)
        wanted = [version] if version is not None else versions
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id
            raw, rolled = q.points(session, model_id, env, metric, start, end, versions=wanted)  # type: ignore[arg-type]
        points = [Point(as_utc(at), value, v) for at, value, v in raw]
        older = [Point(as_utc(h), total / count, v) for h, total, count, v in rolled]
        return sorted(older + points, key=lambda p: p.at)

    def compact(self, *, keep_raw: timedelta, now: datetime) -> int:
        """Roll raw samples older than `keep_raw` into hourly aggregates and delete them."""
        cutoff = now - keep_raw
        cutoff = cutoff.replace(minute=0, second=0, microsecond=0)
        with self.registry.writing() as session:
            raw = q.raw_before(session, cutoff)
            if not raw:
                return 0
            buckets: dict[tuple[int, str, str, int | None, datetime], list[float]] = {}
            for model_id, env, metric, version, at, value in raw:
                hour = as_utc(at).replace(minute=0, second=0, microsecond=0)
                buckets.setdefault((model_id, env, metric, version, hour), []).append(value)
            for (model_id, env, metric, version, hour), values in buckets.items():
                existing = q.rollup(session, model_id, env, metric, version, hour)
                if existing is None:
                    session.add(MetricRollup(model_id=model_id, environment=env, metric=metric, version=version,
                                             hour=hour, count=len(values), total=math.fsum(values), minimum=min(values),
                                             maximum=max(values), last=values[-1]))
                else:
                    existing.count += len(values)
                    existing.total += math.fsum(values)
                    existing.minimum = min(existing.minimum, *values)
                    existing.maximum = max(existing.maximum, *values)
                    existing.last = values[-1]
                    session.add(existing)
            q.delete_raw_before(session, cutoff)
            return len(raw)

    def model_names(self) -> Sequence[str]:
        with self.registry.reading() as session:
            return q.model_names(session)


def _moves(session: Session, model_ids: set[int], environments: Iterable[str] | None = None
           ) -> dict[tuple[int, str], list[Move]]:
    moves: dict[tuple[int, str], list[Move]] = {}
    for model_id, env, at, action, from_version, to_version, weight in q.pointer_moves(
            session, model_ids, environments):
        moves.setdefault((model_id, env), []).append(Move(as_utc(at), action, from_version, to_version, weight))
    return moves


def _histories(session: Session, model_ids: set[int]) -> dict[tuple[int, str], ServingHistory]:
    return {key: ServingHistory(items) for key, items in _moves(session, model_ids).items()}


def _by_window(samples: Sequence[SampleIn]) -> dict[tuple[str, str, datetime], list[str]]:
    out: dict[tuple[str, str, datetime], list[str]] = {}
    for s in samples:
        out.setdefault((s.model, s.environment, s.at), []).append(s.metric)
    return out
