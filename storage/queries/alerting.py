"""Alerting's queries: rules, per-series states, incident groups, silences, and the samples the
evaluation cycle reads. Plain rows in and out where a cycle handles thousands of them (ORM
objects cost more than the cycle); no rule about what fires or who may act lives here
(bot/domain/alerting)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import (
    AlertGroup,
    AlertRule,
    AlertState,
    Deployment,
    MetricRollup,
    MetricSample,
    ModelVersion,
    RegisteredModel,
    Silence,
)

_rules = AlertRule.__table__  # type: ignore[attr-defined]
_states = AlertState.__table__  # type: ignore[attr-defined]
_models = RegisteredModel.__table__  # type: ignore[attr-defined]


def _locked(session: Session, query: Any) -> Any:
    return query if session.get_bind().dialect.name == "sqlite" else query.with_for_update()


# ---- rules ------------------------------------------------------------------------------------------


def rule_rows(session: Session, columns: Sequence[str], *, enabled_only: bool = True, origin: str | None = None,
              model_id: int | None = None, rule_id: int | None = None) -> Sequence[sa.Row[Any]]:
    """The named rule columns plus the model's name (last), by rule id."""
    query = sa.select(*(_rules.c[c] for c in columns), _models.c.name).join(_models, _models.c.id == _rules.c.model_id)
    if enabled_only:
        query = query.where(_rules.c.enabled == sa.true())
    if origin is not None:
        query = query.where(_rules.c.origin == origin)
    if model_id is not None:
        query = query.where(_rules.c.model_id == model_id)
    if rule_id is not None:
        query = query.where(_rules.c.id == rule_id)
    return session.connection().execute(query.order_by(_rules.c.id)).all()


def rule_count(session: Session, model_id: int) -> int:
    return session.exec(select(sa.func.count()).select_from(AlertRule).where(AlertRule.model_id == model_id)).one()


def insert_rule(session: Session, values: Mapping[str, Any]) -> int:
    return int(session.connection().execute(sa.insert(_rules).values(**values).returning(_rules.c.id)).scalar_one())


def disable_rule(session: Session, rule_id: int) -> None:
    """The rule stops (its row stays: silences and audit rows name it); its series states go."""
    session.connection().execute(sa.delete(_states).where(_states.c.rule_id == rule_id))
    session.connection().execute(sa.update(_rules).where(_rules.c.id == rule_id).values(enabled=False))


def rule_origin(session: Session, rule_id: int) -> str | None:
    return session.execute(sa.select(AlertRule.origin).where(AlertRule.id == rule_id,
                                                             AlertRule.enabled == True)).scalar()  # noqa: E712


def rule_exists(session: Session, rule_id: int) -> bool:
    return session.get(AlertRule, rule_id) is not None


def canary_rule_channel(session: Session, model_id: int, environment: str) -> str | None:
    return session.exec(select(AlertRule.channel).where(
        AlertRule.model_id == model_id, AlertRule.environment == environment, col(AlertRule.channel).is_not(None),
        sa.or_(AlertRule.target == "canary", AlertRule.target == "both"))).first()


# ---- what the cycle reads ----------------------------------------------------------------------------


def models_by_ids(session: Session, ids: Iterable[int]) -> dict[int, RegisteredModel]:
    ids = list(ids)
    if not ids:
        return {}
    return {m.id: m for m in session.exec(select(RegisteredModel).where(col(RegisteredModel.id).in_(ids))).all()
            if m.id is not None}


def deployments_of(session: Session, model_ids: Iterable[int]) -> dict[tuple[int, str], Deployment]:
    ids = list(model_ids)
    if not ids:
        return {}
    return {(d.model_id, d.environment): d
            for d in session.exec(select(Deployment).where(col(Deployment.model_id).in_(ids))).all()}


def deployment(session: Session, model_id: int, environment: str) -> Deployment | None:
    return session.exec(select(Deployment).where(Deployment.model_id == model_id,
                                                 Deployment.environment == environment)).first()


def samples_between(session: Session, start: datetime, end: datetime) -> Sequence[sa.Row[Any]]:
    """(model_id, environment, metric, version, value, at) of every sample in (start, end]."""
    return session.execute(
        select(MetricSample.model_id, MetricSample.environment, MetricSample.metric, MetricSample.version,
               MetricSample.value, MetricSample.at)
        .where(col(MetricSample.at) > start, col(MetricSample.at) <= end)
    ).all()


def version_metrics(session: Session, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
    """The registered metrics of (model id, version) pairs."""
    pairs = list(wanted)
    if not pairs:
        return {}
    rows = session.exec(select(ModelVersion).where(
        sa.tuple_(ModelVersion.model_id, ModelVersion.version).in_(pairs))).all()
    return {(r.model_id, r.version): dict(r.metrics) for r in rows}


def series_history(session: Session, model_id: int, environment: str, metric: str, start: datetime,
                   end: datetime) -> tuple[Sequence[sa.Row[Any]], Sequence[sa.Row[Any]]]:
    """Raw samples (at, value) and hourly rollups (hour, total, count) of one series in [start, end)."""
    raw = session.execute(select(MetricSample.at, MetricSample.value).where(
        MetricSample.model_id == model_id, MetricSample.environment == environment, MetricSample.metric == metric,
        col(MetricSample.at) >= start, col(MetricSample.at) < end)).all()
    rolled = session.execute(select(MetricRollup.hour, MetricRollup.total, MetricRollup.count).where(
        MetricRollup.model_id == model_id, MetricRollup.environment == environment, MetricRollup.metric == metric,
        col(MetricRollup.hour) >= start, col(MetricRollup.hour) < end)).all()
    return raw, rolled


def metric_names(session: Session, model_id: int) -> set[str]:
    """Every metric a source ever reported for the model (raw samples and rollups)."""
    names = set(session.execute(sa.select(MetricSample.metric).where(
        MetricSample.model_id == model_id).distinct()).scalars())
    names.update(session.execute(sa.select(MetricRollup.metric).where(
        MetricRollup.model_id == model_id).distinct()).scalars())
    return names


# ---- series states ----------------------------------------------------------------------------------


def state_rows(session: Session, columns: Sequence[str]) -> Sequence[sa.Row[Any]]:
    return session.execute(sa.select(*(_states.c[name] for name in columns))).all()


def insert_states(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(sa.insert(_states), list(rows))


def update_states(session: Session, fields: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """`rows` carry `_id` (the row) and the `fields`; one executemany."""
    if rows:
        session.execute(
            sa.update(_states).where(_states.c.id == sa.bindparam("_id")).values({c: sa.bindparam(c) for c in fields}),
            list(rows),
        )


def rules_with_states(session: Session, model_id: int, environment: str) -> list[tuple[AlertRule, AlertState]]:
    return [(r, s) for r, s in session.exec(select(AlertRule, AlertState).join(
        AlertState, AlertState.rule_id == AlertRule.id  # type: ignore[arg-type]
    ).where(AlertRule.model_id == model_id, AlertRule.environment == environment)).all()]


def active_states(session: Session, model_id: int | None = None) -> Sequence[tuple[AlertState, AlertRule, str]]:
    """Pending and firing series of enabled rules, with the rule and the model's name."""
    query = select(AlertState, AlertRule, RegisteredModel.name).join(
        AlertRule, AlertRule.id == AlertState.rule_id  # type: ignore[arg-type]
    ).join(RegisteredModel, RegisteredModel.id == AlertRule.model_id  # type: ignore[arg-type]
           ).where(AlertRule.enabled == True, col(AlertState.state).in_(("pending", "firing")))  # noqa: E712
    if model_id is not None:
        query = query.where(AlertRule.model_id == model_id)
    return session.exec(query).all()  # type: ignore[return-value]


# ---- incident groups ----------------------------------------------------------------------------------


def open_groups(session: Session, model_ids: Iterable[int]) -> dict[tuple[int, str], AlertGroup]:
    ids = set(model_ids)
    if not ids:
        return {}
    return {(g.model_id, g.environment): g for g in session.exec(select(AlertGroup).where(
        AlertGroup.status == "open", col(AlertGroup.model_id).in_(ids))).all()}


def open_group(session: Session, model_id: int, environment: str | None) -> AlertGroup | None:
    query = select(AlertGroup).where(AlertGroup.model_id == model_id, AlertGroup.status == "open")
    if environment is not None:
        query = query.where(AlertGroup.environment == environment)
    return session.exec(query).first()


def group(session: Session, group_id: int, *, lock: bool = False) -> AlertGroup | None:
    query = select(AlertGroup).where(AlertGroup.id == group_id)
    return session.exec(_locked(session, query) if lock else query).first()


def group_target(session: Session, group_id: int) -> sa.Row[Any] | None:
    """(group id, model name, environment, model id) of an alert card."""
    return session.execute(select(AlertGroup.id, RegisteredModel.name, AlertGroup.environment, AlertGroup.model_id)
                           .join(RegisteredModel, RegisteredModel.id == AlertGroup.model_id)  # type: ignore[arg-type]
                           .where(AlertGroup.id == group_id)).first()


def add(session: Session, row: Any) -> Any:
    session.add(row)
    session.flush()
    return row


# ---- silences ---------------------------------------------------------------------------------------


def silences_active(session: Session, now: datetime, model_ids: Iterable[int] | None = None) -> list[Silence]:
    """Silences in force now (started, not ended), of some models or of all."""
    query = select(Silence).where(col(Silence.ends_at) > now, col(Silence.starts_at) <= now)
    if model_ids is not None:
        ids = list(model_ids)
        if not ids:
            return []
        query = query.where(col(Silence.model_id).in_(ids))
    return list(session.exec(query).all())


def silences_listing(session: Session, now: datetime, model_id: int | None = None) -> Sequence[tuple[Silence, str]]:
    """Silences not ended yet, soonest end first, with the model's name."""
    query = select(Silence, RegisteredModel.name).join(
        RegisteredModel, RegisteredModel.id == Silence.model_id  # type: ignore[arg-type]
    ).where(col(Silence.ends_at) > now)
    if model_id is not None:
        query = query.where(Silence.model_id == model_id)
    return session.exec(query.order_by(col(Silence.ends_at))).all()  # type: ignore[return-value]


def silence(session: Session, silence_id: int, *, lock: bool = False) -> Silence | None:
    query = select(Silence).where(Silence.id == silence_id)
    return session.exec(_locked(session, query) if lock else query).first()


def model_name(session: Session, model_id: int) -> str | None:
    row = session.get(RegisteredModel, model_id)
    return None if row is None else row.name
