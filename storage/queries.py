"""The read queries the commands need. Each is backed by an index; none holds a business rule."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session, col, func, select

from storage.models import AuditEvent, Deployment, ModelVersion, RegisteredModel

POINTER_ACTIONS = ("promote", "rollback", "canary_promote")


def model_by_key(session: Session, name: str) -> RegisteredModel | None:
    """Models are unique regardless of case; look them up the same way."""
    return session.exec(select(RegisteredModel).where(RegisteredModel.name_key == name.lower())).first()


def models_by_ids(session: Session, ids: Iterable[int]) -> dict[int, RegisteredModel]:
    ids = list(ids)
    if not ids:
        return {}
    rows = session.exec(select(RegisteredModel).where(col(RegisteredModel.id).in_(ids))).all()
    return {row.id: row for row in rows if row.id is not None}


def models_page(session: Session, *, offset: int, limit: int) -> tuple[Sequence[RegisteredModel], int]:
    total = session.exec(select(func.count()).select_from(RegisteredModel)).one()
    rows = session.exec(
        select(RegisteredModel).order_by(col(RegisteredModel.name_key)).offset(offset).limit(limit)
    ).all()
    return rows, total


def version(session: Session, model_id: int, number: int) -> ModelVersion | None:
    return session.exec(
        select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.version == number)
    ).first()


def versions(session: Session, model_id: int, numbers: Iterable[int]) -> dict[int, ModelVersion]:
    numbers = list(numbers)
    if not numbers:
        return {}
    rows = session.exec(
        select(ModelVersion).where(ModelVersion.model_id == model_id, col(ModelVersion.version).in_(numbers))
    ).all()
    return {row.version: row for row in rows}


def latest_ready_version(session: Session, model_id: int) -> ModelVersion | None:
    return session.exec(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id, ModelVersion.status == "ready")
        .order_by(col(ModelVersion.version).desc())
        .limit(1)
    ).first()


def versions_page(
    session: Session, model_id: int, *, offset: int, limit: int
) -> tuple[Sequence[ModelVersion], int]:
    total = session.exec(
        select(func.count()).select_from(ModelVersion).where(ModelVersion.model_id == model_id)
    ).one()
    rows = session.exec(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id)
        .order_by(col(ModelVersion.version).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return rows, total


def deployment(session: Session, model_id: int, environment: str) -> Deployment | None:
    return session.exec(
        select(Deployment).where(Deployment.model_id == model_id, Deployment.environment == environment)
    ).first()


def deployments_for(session: Session, model_ids: Iterable[int]) -> list[Deployment]:
    model_ids = list(model_ids)
    if not model_ids:
        return []
    return list(session.exec(select(Deployment).where(col(Deployment.model_id).in_(model_ids))).all())


def audit_for_model(
    session: Session, model_id: int, *, environment: str | None, limit: int, before_id: int | None = None
) -> Sequence[AuditEvent]:
    """Newest first; callers reverse for chronological display."""
    query = select(AuditEvent).where(AuditEvent.model_id == model_id)
    if environment is not None:
        query = query.where(AuditEvent.environment == environment)
    else:
        query = query.where(col(AuditEvent.environment).is_not(None))
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    return session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)).all()


def versions_that_served(session: Session, model_id: int, environment: str) -> list[int]:
    """Versions that were the stable pointer of this environment at some point."""
    rows = session.exec(
        select(AuditEvent.to_version)
        .where(
            AuditEvent.model_id == model_id,
            AuditEvent.environment == environment,
            col(AuditEvent.action).in_(POINTER_ACTIONS),
            col(AuditEvent.to_version).is_not(None),
        )
        .distinct()
    ).all()
    return sorted(int(v) for v in rows if v is not None)


def row_counts(session: Session) -> dict[str, int]:
    """Used by tests and `modelbot db status` to prove bad input wrote nothing."""
    counts = {}
    for table in (RegisteredModel, ModelVersion, Deployment, AuditEvent):
        counts[table.__tablename__] = session.exec(select(func.count()).select_from(table)).one()
    return counts


