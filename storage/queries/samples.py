"""Queries of the monitoring area: metric samples and rollups, source status, the pointer
moves that tell which version served when, and the digest's subscription lock.

No business rule here: which version a sample belongs to, what a window is and what a
change means are decided in `bot.domain.monitoring`; this module only knows tables,
indexes and dialects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.models import (
    AuditEvent,
    MetricRollup,
    MetricSample,
    RegisteredModel,
    SourceStatus,
    Subscription,
)

Versions = Iterable[int | None] | None
"""Which versions to read: None = every version; a collection may hold None (no version)."""


def _version_filter(column: Any, versions: Versions) -> Any:
    if versions is None:
        return sa.true()
    wanted = set(versions)
    numbers = sorted(v for v in wanted if v is not None)
    clauses = []
    if numbers:
        clauses.append(column.in_(numbers))
    if None in wanted:
        clauses.append(column.is_(None))
    return sa.or_(*clauses) if clauses else sa.false()


# ---- writing ----------------------------------------------------------------------------------


def insert_samples(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """One multi-row INSERT; rows hold every MetricSample column but the id."""
    if rows:
        session.execute(sa.insert(MetricSample), list(rows))


def delete_source_samples(
    session: Session, *, source: str, model_id: int, environment: str, at: datetime, metrics: Iterable[str]
) -> int:
    """Remove what one source recorded for one window (stamped `at`) before it records the window
    again: recomputing a window replaces its numbers rather than adding a second copy."""
    names = list(metrics)
    if not names:
        return 0
    result = session.execute(sa.delete(MetricSample).where(
        MetricSample.source == source, MetricSample.model_id == model_id, MetricSample.environment == environment,
        MetricSample.at == at, col(MetricSample.metric).in_(names)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---- reading samples ----------------------------------------------------------------------------


def latest_by_series(
    session: Session, model_id: int, environment: str, *, before: datetime | None, versions: Versions = None,
    metrics: Iterable[str] | None = None,
) -> Sequence[sa.Row[Any]]:
    """(metric, version, value, at): the newest raw sample of each (metric, version) before `before`."""
    where = [MetricSample.model_id == model_id, MetricSample.environment == environment,
             _version_filter(col(MetricSample.version), versions)]
    if before is not None:
        where.append(col(MetricSample.at) < before)
    if metrics is not None:
        where.append(col(MetricSample.metric).in_(list(metrics)))
    newest = (select(MetricSample.metric, MetricSample.version, sa.func.max(MetricSample.at).label("at"))
              .where(*where).group_by(MetricSample.metric, MetricSample.version).subquery())
    same_version = sa.or_(MetricSample.version == newest.c.version,
                          sa.and_(col(MetricSample.version).is_(None), newest.c.version.is_(None)))
    return session.execute(
        select(MetricSample.metric, MetricSample.version, MetricSample.value, MetricSample.at)
        .join(newest, sa.and_(MetricSample.metric == newest.c.metric, MetricSample.at == newest.c.at, same_version))
        .where(MetricSample.model_id == model_id, MetricSample.environment == environment)
        .order_by(col(MetricSample.id))
    ).all()


def series_stats(
    session: Session, model_id: int, environment: str, start: datetime, end: datetime, *,
    versions: Versions = None, metrics: Iterable[str] | None = None,
) -> Sequence[sa.Row[Any]]:
    """(metric, version, count, mean, total, first_at, last_at) over [start, end): raw samples, and
    hourly rollups counted as one point each (their mean), as `points` returns them."""
    raw_where = [MetricSample.model_id == model_id, MetricSample.environment == environment,
                 col(MetricSample.at) >= start, col(MetricSample.at) < end,
                 _version_filter(col(MetricSample.version), versions)]
    rolled_where = [MetricRollup.model_id == model_id, MetricRollup.environment == environment,
                    col(MetricRollup.hour) >= start, col(MetricRollup.hour) < end,
                    _version_filter(col(MetricRollup.version), versions)]
    if metrics is not None:
        names = list(metrics)
        raw_where.append(col(MetricSample.metric).in_(names))
        rolled_where.append(col(MetricRollup.metric).in_(names))
    raw = select(MetricSample.metric.label("metric"), MetricSample.version.label("version"),  # type: ignore[attr-defined]
                 MetricSample.value.label("value"), MetricSample.at.label("at")).where(*raw_where)  # type: ignore[attr-defined]
    rolled = select(MetricRollup.metric.label("metric"), MetricRollup.version.label("version"),  # type: ignore[attr-defined]
                    (MetricRollup.total / MetricRollup.count).label("value"),
                    MetricRollup.hour.label("at")).where(*rolled_where)  # type: ignore[attr-defined]
    both = sa.union_all(raw, rolled).subquery()
    return session.execute(
        select(both.c.metric, both.c.version, sa.func.count(), sa.func.avg(both.c.value), sa.func.sum(both.c.value),
               sa.func.min(both.c.at), sa.func.max(both.c.at))
        .group_by(both.c.metric, both.c.version)
    ).all()


def points(
    session: Session, model_id: int, environment: str, metric: str, start: datetime, end: datetime, *,
    versions: Versions = None,
) -> tuple[Sequence[sa.Row[Any]], Sequence[sa.Row[Any]]]:
    """Raw (at, value, version) in [start, end), and hourly rollups (hour, total, count, version)."""
    raw = session.execute(
        select(MetricSample.at, MetricSample.value, MetricSample.version).where(
            MetricSample.model_id == model_id, MetricSample.environment == environment, MetricSample.metric == metric,
            col(MetricSample.at) >= start, col(MetricSample.at) < end,
            _version_filter(col(MetricSample.version), versions),
        ).order_by(col(MetricSample.at))
    ).all()
    rolled = session.execute(
        select(MetricRollup.hour, MetricRollup.total, MetricRollup.count, MetricRollup.version).where(
            MetricRollup.model_id == model_id, MetricRollup.environment == environment, MetricRollup.metric == metric,
            col(MetricRollup.hour) >= start, col(MetricRollup.hour) < end,
            _version_filter(col(MetricRollup.version), versions),
        )
    ).all()
    return raw, rolled


def values_between(session: Session, model_id: int, environment: str, metrics: Iterable[str], start: datetime,
                   end: datetime) -> Sequence[sa.Row[Any]]:
    """(metric, version, at, value) of raw samples of these metrics in [start, end)."""
    return session.execute(
        select(MetricSample.metric, MetricSample.version, MetricSample.at, MetricSample.value).where(
            MetricSample.model_id == model_id, MetricSample.environment == environment,
            col(MetricSample.metric).in_(list(metrics)), col(MetricSample.at) >= start, col(MetricSample.at) < end)
    ).all()


def model_names(session: Session) -> list[str]:
    return [r for (r,) in session.execute(select(RegisteredModel.name).order_by(RegisteredModel.name_key))]


# ---- compaction ---------------------------------------------------------------------------------


def raw_before(session: Session, cutoff: datetime) -> Sequence[sa.Row[Any]]:
    """(model_id, environment, metric, version, at, value) of raw samples older than `cutoff`, in time order."""
    return session.execute(
        select(MetricSample.model_id, MetricSample.environment, MetricSample.metric, MetricSample.version,
               MetricSample.at, MetricSample.value)
        .where(col(MetricSample.at) < cutoff).order_by(col(MetricSample.at), col(MetricSample.id))
    ).all()


def rollup(session: Session, model_id: int, environment: str, metric: str, version: int | None,
           hour: datetime) -> MetricRollup | None:
    return session.exec(select(MetricRollup).where(
        MetricRollup.model_id == model_id, MetricRollup.environment == environment, MetricRollup.metric == metric,
        _version_filter(col(MetricRollup.version), [version]), MetricRollup.hour == hour,
    )).first()


def delete_raw_before(session: Session, cutoff: datetime) -> None:
    session.execute(sa.delete(MetricSample).where(col(MetricSample.at) < cutoff))


# ---- which version served when ------------------------------------------------------------------


def pointer_moves(session: Session, model_ids: Iterable[int], environments: Iterable[str] | None = None
                  ) -> Sequence[sa.Row[Any]]:
    """(model_id, environment, at, action, from_version, to_version, weight) of every audited pointer
    move (the events that carry a deployment revision), oldest first."""
    query = select(AuditEvent.model_id, AuditEvent.environment, AuditEvent.at, AuditEvent.action,
                   AuditEvent.from_version, AuditEvent.to_version, AuditEvent.weight).where(
        col(AuditEvent.model_id).in_(sorted(set(model_ids))), col(AuditEvent.revision).is_not(None))
    if environments is not None:
        query = query.where(col(AuditEvent.environment).in_(sorted(set(environments))))
    return session.execute(query.order_by(col(AuditEvent.id))).all()


# ---- sources ------------------------------------------------------------------------------------


def source_status(session: Session, names: Iterable[str]) -> dict[str, SourceStatus]:
    wanted = list(names)
    if not wanted:
        return {}
    rows = session.exec(select(SourceStatus).where(col(SourceStatus.name).in_(wanted))).all()
    return {row.name: row for row in rows}


def upsert_source_status(session: Session, values: Mapping[str, Any], update: Mapping[str, Any]) -> None:
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    session.execute(insert(SourceStatus).values(**values).on_conflict_do_update(index_elements=["name"],
                                                                                set_=dict(update)))


def source_recorded_at(session: Session, source: str, at: datetime) -> bool:
    found = session.exec(
        select(MetricSample.id).where(MetricSample.source == source, MetricSample.at == at).limit(1)
    ).first()
    return found is not None


# ---- digests ------------------------------------------------------------------------------------


def subscription_for_update(session: Session, lock: Any, subscription_id: int) -> Subscription | None:
    """The subscription row, locked by `lock` (the database's FOR UPDATE wrapper)."""
    return session.exec(lock(select(Subscription).where(Subscription.id == subscription_id))).first()


def subscription(session: Session, subscription_id: int) -> Subscription | None:
    return session.get(Subscription, subscription_id)
