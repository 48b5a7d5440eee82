"""Queries of the MLflow import and sync: provenance of versions, webhook deliveries, the aliases
modelbot last knew, its alias writes in the outbox, and the poll's status. No business rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import (
    AuditEvent,
    MlflowAlias,
    MlflowDelivery,
    MlflowSyncStatus,
    ModelVersion,
    OutboxMessage,
    RegisteredModel,
)


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_nothing`/`on_conflict_do_update`."""
    if session.get_bind().dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    return insert(table)


# ---- models and versions ------------------------------------------------------------------------


def insert_model_if_absent(session: Session, *, name: str, created_at: datetime, owner: str,
                           description: str | None) -> bool:
    """Create the model row unless a model of that name (regardless of case) exists; True if created."""
    row = session.execute(
        _insert(session, RegisteredModel)
        .values(name=name, name_key=name.lower(), created_at=created_at, latest_version=0, owner=owner,
                description=description)
        .on_conflict_do_nothing(index_elements=["name_key"])
        .returning(RegisteredModel.id)  # type: ignore[arg-type]
    ).first()
    return row is not None


def lock_model(session: Session, model_id: int) -> RegisteredModel:
    """The model row, locked until commit on PostgreSQL (SQLite's BEGIN IMMEDIATE already excludes
    other writers): serialises with `register`, which bumps the same row, so numbers cannot collide."""
    return session.exec(
        select(RegisteredModel).where(RegisteredModel.id == model_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def all_versions(session: Session, model_id: int) -> dict[int, ModelVersion]:
    rows = session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id)).all()
    return {row.version: row for row in rows}


def version_numbers(session: Session, model_id: int) -> set[int]:
    return set(session.exec(select(ModelVersion.version).where(ModelVersion.model_id == model_id)).all())


def versions_registered_by(session: Session, model_id: int, actors: Sequence[str]) -> set[int]:
    """Versions whose `register` audit row names one of `actors` (the append-only log is the record of
    provenance)."""
    rows = session.exec(
        select(AuditEvent.to_version).where(
            AuditEvent.model_id == model_id, AuditEvent.action == "register", col(AuditEvent.actor).in_(actors),
        )
    ).all()
    return {int(v) for v in rows if v is not None}


def raise_latest_version(session: Session, model_id: int, highest: int) -> None:
    """Hand out numbers after `highest` from now on (`register` keeps counting from there)."""
    session.execute(
        sa.update(RegisteredModel)
        .where(RegisteredModel.id == model_id, RegisteredModel.latest_version < highest)  # type: ignore[arg-type]
        .values(latest_version=highest)
    )


def audit_request_exists(session: Session, model_id: int, request_id: str) -> bool:
    return session.exec(
        select(AuditEvent.id).where(AuditEvent.model_id == model_id, AuditEvent.request_id == request_id).limit(1)
    ).first() is not None


# ---- webhook deliveries -------------------------------------------------------------------------


def delivery_seen(session: Session, delivery_id: str) -> bool:
    return session.get(MlflowDelivery, delivery_id) is not None


def record_delivery(session: Session, *, delivery_id: str, event: str, model: str | None, sent_at: datetime | None,
                    received_at: datetime, outcome: str) -> bool:
    """Insert the delivery unless its id is known; False when another request recorded it first."""
    row = session.execute(
        _insert(session, MlflowDelivery)
        .values(delivery_id=delivery_id, event=event, model=model, sent_at=sent_at, received_at=received_at,
                outcome=outcome)
        .on_conflict_do_nothing(index_elements=["delivery_id"])
        .returning(MlflowDelivery.delivery_id)  # type: ignore[arg-type]
    ).first()
    return row is not None


def last_delivery(session: Session) -> MlflowDelivery | None:
    return session.exec(select(MlflowDelivery).order_by(col(MlflowDelivery.received_at).desc()).limit(1)).first()


def forget_deliveries(session: Session, before: datetime) -> int:
    """Delivery ids older than MLflow could ever repeat them."""
    result = session.execute(sa.delete(MlflowDelivery).where(col(MlflowDelivery.received_at) < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---- aliases modelbot last knew -----------------------------------------------------------------


def known_aliases(session: Session, model_id: int) -> dict[str, MlflowAlias]:
    rows = session.exec(select(MlflowAlias).where(MlflowAlias.model_id == model_id)).all()
    return {row.alias: row for row in rows}


def known_aliases_for(session: Session, model_ids: Iterable[int]) -> dict[int, dict[str, MlflowAlias]]:
    ids = list(model_ids)
    out: dict[int, dict[str, MlflowAlias]] = {i: {} for i in ids}
    if ids:
        for row in session.exec(select(MlflowAlias).where(col(MlflowAlias.model_id).in_(ids))).all():
            out[row.model_id][row.alias] = row
    return out


def remember_alias(session: Session, *, model_id: int, alias: str, version: int | None, now: datetime) -> None:
    statement = _insert(session, MlflowAlias).values(model_id=model_id, alias=alias, version=version, observed_at=now)
    session.execute(statement.on_conflict_do_update(
        index_elements=["model_id", "alias"], set_={"version": version, "observed_at": now}))


# ---- alias writes in the outbox -----------------------------------------------------------------


def unfinished_rows(session: Session, topic: str) -> Sequence[OutboxMessage]:
    """Rows of one destination still to be sent or being sent, oldest first."""
    return session.exec(
        select(OutboxMessage).where(OutboxMessage.topic == topic, col(OutboxMessage.status).in_(("pending", "sending")))
        .order_by(col(OutboxMessage.id))
    ).all()


def newest_rows(session: Session, topic: str, limit: int) -> Sequence[OutboxMessage]:
    return session.exec(
        select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(col(OutboxMessage.id).desc()).limit(limit)
    ).all()


def rows_by_status(session: Session, kind: str, statuses: Sequence[str]) -> Sequence[OutboxMessage]:
    return session.exec(
        select(OutboxMessage).where(OutboxMessage.kind == kind, col(OutboxMessage.status).in_(statuses))
        .order_by(col(OutboxMessage.id))
    ).all()


# ---- the poll's status ----------------------------------------------------------------------------


def sync_status(session: Session, name: str) -> MlflowSyncStatus | None:
    return session.get(MlflowSyncStatus, name)


def record_sync(session: Session, *, name: str, now: datetime, error: str | None, models_checked: int) -> None:
    values: dict[str, Any] = {"last_attempt_at": now, "last_error": error, "models_checked": models_checked}
    if error is None:
        values["last_success_at"] = now
    statement = _insert(session, MlflowSyncStatus).values(name=name, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["name"], set_=values))
