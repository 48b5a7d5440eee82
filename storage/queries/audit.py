"""The audit log: append one row, read rows back (tests, `modelbot audit`). No rule here: which
decision writes which row is the domain's business (bot/domain/audit.py, the only writer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from storage.models import AuditEvent

_audit = AuditEvent.__table__  # type: ignore[attr-defined]
_INSERT = sa.insert(_audit)
_INSERT_RETURNING_ID = sa.insert(_audit).returning(_audit.c.id)
# every column but the id, so each insert names the same ones (one compiled statement)
COLUMNS = ("at", "actor", "action", "model_id", "environment", "from_version", "to_version", "revision",
           "weight", "reason", "request_id", "subject")


def append(session: Session, values: Mapping[str, Any]) -> None:
    """Append one row (`values` names every one of COLUMNS)."""
    session.connection().execute(_INSERT, dict(values))


def append_returning_id(session: Session, values: Mapping[str, Any]) -> int:
    """`append`, for a caller that shows the row (its id)."""
    return int(session.connection().execute(_INSERT_RETURNING_ID, dict(values)).scalar_one())


def recent(session: Session, *, limit: int, actions: Sequence[str] | None = None,
           subject: str | None = None) -> Sequence[sa.Row[Any]]:
    """Newest first."""
    query = sa.select(_audit)
    if actions is not None:
        query = query.where(_audit.c.action.in_(list(actions)))
    if subject is not None:
        query = query.where(_audit.c.subject == subject)
    return session.connection().execute(query.order_by(_audit.c.id.desc()).limit(limit)).all()
