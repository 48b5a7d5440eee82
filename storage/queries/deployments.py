"""The queries of promotions, approvals, rollbacks and canaries: change requests, votes, audit rows.

Writers lock what they decide on (`… FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE`
already excludes other writers). Decisions take their locks in one order — the pending
request of an environment, then its deployment row — so two decisions never wait on each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import ChangeRequest, Deployment, RegisteredModel, RequestVote


def _for_update(session: Session, statement: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return statement
    return statement.with_for_update()


def model_by_id(session: Session, model_id: int) -> RegisteredModel:
    model = session.get(RegisteredModel, model_id)
    assert model is not None  # the foreign key guarantees it
    return model


def request(session: Session, number: int) -> ChangeRequest | None:
    return session.get(ChangeRequest, number)


def request_locked(session: Session, number: int) -> ChangeRequest | None:
    """The request, locked for this transaction and re-read (another writer may just have decided it)."""
    statement = _for_update(session, select(ChangeRequest).where(ChangeRequest.id == number))
    return session.exec(statement.execution_options(populate_existing=True)).first()


def pending_request_locked(session: Session, model_id: int, environment: str) -> ChangeRequest | None:
    """The one pending request of an environment (a partial unique index allows one), locked."""
    statement = _for_update(session, select(ChangeRequest).where(
        ChangeRequest.model_id == model_id, ChangeRequest.environment == environment,
        ChangeRequest.status == "pending",
    ))
    return session.exec(statement.execution_options(populate_existing=True)).first()


def due_requests_locked(session: Session, now: datetime) -> Sequence[ChangeRequest]:
    """Pending requests whose deadline has passed, oldest first, locked."""
    statement = _for_update(session, select(ChangeRequest).where(
        ChangeRequest.status == "pending", col(ChangeRequest.expires_at) <= now,
    ).order_by(col(ChangeRequest.id)))
    return session.exec(statement).all()


def pending_with_pointers_locked(session: Session) -> Sequence[tuple[ChangeRequest, int | None, int | None]]:
    """Every pending request with its environment's stable and canary versions (None: no
    deployment yet), requests locked."""
    statement = (
        select(ChangeRequest, Deployment.stable_version, Deployment.canary_version)
        .outerjoin(Deployment, sa.and_(Deployment.model_id == ChangeRequest.model_id,
                                       Deployment.environment == ChangeRequest.environment))
        .where(ChangeRequest.status == "pending")
        .order_by(col(ChangeRequest.id))
    )
    if session.get_bind().dialect.name != "sqlite":
        statement = statement.with_for_update(of=ChangeRequest)  # type: ignore[arg-type]
    return [(r, stable, canary) for r, stable, canary in session.exec(statement).all()]


def requests_page(session: Session, *, pending_only: bool, model_id: int | None, limit: int) -> Sequence[ChangeRequest]:
    """Newest first."""
    query = select(ChangeRequest)
    if pending_only:
        query = query.where(ChangeRequest.status == "pending")
    if model_id is not None:
        query = query.where(ChangeRequest.model_id == model_id)
    return session.exec(query.order_by(col(ChangeRequest.id).desc()).limit(limit)).all()


def votes(session: Session, request_id: int) -> Sequence[RequestVote]:
    """In the order they were cast."""
    return session.exec(
        select(RequestVote).where(RequestVote.request_id == request_id).order_by(col(RequestVote.id))
    ).all()


def vote_by(session: Session, request_id: int, voter: str) -> RequestVote | None:
    return session.exec(
        select(RequestVote).where(RequestVote.request_id == request_id, RequestVote.voter == voter)
    ).first()
