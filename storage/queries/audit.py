"""The audit log: append one row, read rows back (tests, `modelbot audit`). No rule here: which
decision writes which row is the domain's business (bot/domain/audit.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from storage.models import AuditEvent

_audit = AuditEvent.__table__  # type: ignore[attr-defined]
_INSERT = sa.insert(_audit)


def append(
    session: Session, *, at: datetime, actor: str, action: str, model_id: int | None = None,
    environment: str | None = None, reason: str | None = None, subject: str | None = None,
    from_version: int | None = None, to_version: int | None = None,
) -> None:
    session.connection().execute(_INSERT, {
        "at": at, "actor": actor, "action": action, "model_id": model_id, "environment": environment,
        "reason": reason, "subject": subject, "from_version": from_version, "to_version": to_version,
        "revision": None, "weight": None, "request_id": None,
    })


def recent(session: Session, *, limit: int, actions: Sequence[str] | None = None,
           subject: str | None = None) -> Sequence[sa.Row[Any]]:
    """Newest first."""
    query = sa.select(_audit)
    if actions is not None:
        query = query.where(_audit.c.action.in_(list(actions)))
    if subject is not None:
        query = query.where(_audit.c.subject == subject)
    return session.connection().execute(query.order_by(_audit.c.id.desc()).limit(limit)).all()
