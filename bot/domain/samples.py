"""Metric samples: recording what sources observe, and reading latest values and windows.

Digests, `/model status` and alert rules all read through here. Values are validated on the
way in (finite numbers, known models and environments) and written all-or-nothing per batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from bot.domain import names
from bot.domain.entities import as_utc
from bot.domain.errors import InvalidInput
from bot.domain.registry import Registry
from storage.models import MetricRollup, MetricSample, RegisteredModel

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
class SeriesStats:
    metric: str
    count: int
    mean: float
    minimum: float
    maximum: float
    last: float
    last_at: datetime
    last_version: int | None

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "count": self.count, "mean": self.mean, "min": self.minimum,
                "max": self.maximum, "last": self.last, "last_at": self.last_at.isoformat().replace("+00:00", "Z"),
                "last_version": self.last_version}


class Samples:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def record(self, samples: Iterable[SampleIn], *, source: str) -> int:
        batch = list(samples)
        if len(batch) > MAX_BATCH:
            raise InvalidInput(f"A batch holds at most {MAX_BATCH:,} samples; this one has {len(batch):,}.")
        if not batch:
            return 0
        envs = self.registry.environments
        rows = []
        with self.registry.writing() as session:
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
            session.execute(sa.insert(MetricSample), rows)
        return len(rows)

    def latest(self, model: str, environment: str, *, before: datetime | None = None) -> dict[str, Point]:
        """The newest value of every metric of one model and environment."""
        env = names.environment(environment, self.registry.environments)
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id
            newest = (
                select(MetricSample.metric, sa.func.max(MetricSample.at).label("at"))
                .where(MetricSample.model_id == model_id, MetricSample.environment == env)
            )
            if before is not None:
                newest = newest.where(col(MetricSample.at) < before)
            newest_sq = newest.group_by(MetricSample.metric).subquery()
            rows = session.execute(
                select(MetricSample.metric, MetricSample.value, MetricSample.at, MetricSample.version)
                .join(newest_sq, sa.and_(MetricSample.metric == newest_sq.c.metric, MetricSample.at == newest_sq.c.at))
                .where(MetricSample.model_id == model_id, MetricSample.environment == env)
                .order_by(col(MetricSample.id))
            ).all()
            return {metric: Point(as_utc(at), value, version) for metric, value, at, version in rows}

    def window(
        self, model: str, environment: str, metric: str, start: datetime, end: datetime, *, version: int | None = None
    ) -> list[Point]:
        """Raw points in [start, end), then hourly rollups where raw data was compacted."""
        env = names.environment(environment, self.registry.environments)
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id
            query = select(MetricSample.at, MetricSample.value, MetricSample.version).where(
                MetricSample.model_id == model_id, MetricSample.environment == env, MetricSample.metric == metric,
                col(MetricSample.at) >= start, col(MetricSample.at) < end,
            )
            if version is not None:
                query = query.where(MetricSample.version == version)
            points = [Point(as_utc(at), value, v) for at, value, v in session.execute(query.order_by(col(MetricSample.at)))]
            rollups = select(MetricRollup.hour, MetricRollup.total, MetricRollup.count, MetricRollup.version).where(
                MetricRollup.model_id == model_id, MetricRollup.environment == env, MetricRollup.metric == metric,
                col(MetricRollup.hour) >= start, col(MetricRollup.hour) < end,
            )
            if version is not None:
                rollups = rollups.where(MetricRollup.version == version)
            older = [Point(as_utc(h), total / count, v) for h, total, count, v in session.execute(rollups)]
            return sorted(older + points, key=lambda p: p.at)

    def stats(self, model: str, environment: str, start: datetime, end: datetime) -> dict[str, SeriesStats]:
        """Per metric: count, mean, min, max and the last value in [start, end)."""
        env = names.environment(environment, self.registry.environments)
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id
            where = (MetricSample.model_id == model_id, MetricSample.environment == env,
                     col(MetricSample.at) >= start, col(MetricSample.at) < end)
            aggregates = session.execute(
                select(MetricSample.metric, sa.func.count(), sa.func.avg(MetricSample.value),
                       sa.func.min(MetricSample.value), sa.func.max(MetricSample.value), sa.func.max(MetricSample.at))
                .where(*where).group_by(MetricSample.metric)
            ).all()
            result: dict[str, SeriesStats] = {}
            for metric, count, mean, low, high, last_at in aggregates:
                last = session.execute(
                    select(MetricSample.value, MetricSample.version)
                    .where(*where, MetricSample.metric == metric, MetricSample.at == last_at)
                    .order_by(col(MetricSample.id).desc()).limit(1)
                ).one()
                result[metric] = SeriesStats(metric, int(count), float(mean), float(low), float(high), float(last[0]),
                                             as_utc(last_at), last[1])
            return result

    def compact(self, *, keep_raw: timedelta, now: datetime) -> int:
        """Roll raw samples older than `keep_raw` into hourly aggregates and delete them."""
        cutoff = now - keep_raw
        cutoff = cutoff.replace(minute=0, second=0, microsecond=0)
        with self.registry.writing() as session:
            raw = session.execute(
                select(MetricSample.model_id, MetricSample.environment, MetricSample.metric, MetricSample.version,
                       MetricSample.at, MetricSample.value)
                .where(col(MetricSample.at) < cutoff).order_by(col(MetricSample.at), col(MetricSample.id))
            ).all()
            if not raw:
                return 0
            buckets: dict[tuple[int, str, str, int | None, datetime], list[float]] = {}
            for model_id, env, metric, version, at, value in raw:
                hour = as_utc(at).replace(minute=0, second=0, microsecond=0)
                buckets.setdefault((model_id, env, metric, version, hour), []).append(value)
            for (model_id, env, metric, version, hour), values in buckets.items():
                existing = session.exec(select(MetricRollup).where(
                    MetricRollup.model_id == model_id, MetricRollup.environment == env, MetricRollup.metric == metric,
                    MetricRollup.version == version if version is not None else col(MetricRollup.version).is_(None),
                    MetricRollup.hour == hour,
                )).first()
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
            session.execute(sa.delete(MetricSample).where(col(MetricSample.at) < cutoff))
            return len(raw)

    def model_names(self) -> Sequence[str]:
        with self.registry.reading() as session:
            return [r for (r,) in session.execute(select(RegisteredModel.name).order_by(RegisteredModel.name_key))]
