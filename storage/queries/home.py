"""The App Home's queries: which models a person watches, a page of models with that flag, and who
acted lately on approvals in an environment. What "watching" means is the domain's (bot/domain/home.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import AuditEvent, Deployment, RegisteredModel, Subscription


def watched_ids(user: str) -> sa.Select[Any]:
    """Ids of the models `user` owns, acted on (any audit row) or subscribed a digest of: one UNION."""
    owned = sa.select(RegisteredModel.id).where(RegisteredModel.owner == user)  # type: ignore[call-overload]
    acted = sa.select(AuditEvent.model_id).where(AuditEvent.actor == user,  # type: ignore[call-overload]
                                                 col(AuditEvent.model_id).is_not(None))
    subscribed = sa.select(Subscription.model_id).where(  # type: ignore[call-overload]
        Subscription.created_by == user, col(Subscription.model_id).is_not(None))
    return sa.union(owned, acted, subscribed)  # type: ignore[return-value]


def counts(session: Session, user: str) -> tuple[int, int]:
    """(models in the registry, models `user` watches)."""
    watched = watched_ids(user).subquery()
    total = session.exec(select(sa.func.count()).select_from(RegisteredModel)).one()
    mine = session.exec(select(sa.func.count()).select_from(watched)).one()
    return total, mine


def models_page(session: Session, user: str, *, watched_only: bool, offset: int, limit: int
                ) -> Sequence[tuple[RegisteredModel, bool]]:
    """A page of models by name with whether `user` watches each; all models list watched ones first."""
    watched = watched_ids(user).subquery()
    is_watched = col(RegisteredModel.id).in_(sa.select(watched.c[0]))
    if watched_only:
        query = select(RegisteredModel, sa.literal(True)).where(is_watched).order_by(col(RegisteredModel.name_key))
    else:
        query = select(RegisteredModel, is_watched).order_by(sa.case((is_watched, 0), else_=1),
                                                             col(RegisteredModel.name_key))
    return session.exec(query.offset(offset).limit(limit)).all()  # type: ignore[return-value]


def deployments_of(session: Session, model_ids: Sequence[int]) -> dict[tuple[int, str], Deployment]:
    return {(d.model_id, d.environment): d
            for d in session.exec(select(Deployment).where(col(Deployment.model_id).in_(list(model_ids))))}


def recent_actors(session: Session, environment: str, actions: Sequence[str], limit: int) -> Sequence[str]:
    return session.exec(
        select(AuditEvent.actor).where(AuditEvent.environment == environment, col(AuditEvent.action).in_(actions))
        .order_by(col(AuditEvent.id).desc()).limit(limit)
    ).all()
