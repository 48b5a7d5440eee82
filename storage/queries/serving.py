"""What the serving feed asks the database: the newest audit row, the pointer moves after a
given one, and (PostgreSQL) a notification of its own to fence the listener."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from storage.models import AuditEvent, RegisteredModel

_audit = AuditEvent.__table__  # type: ignore[attr-defined]
_models = RegisteredModel.__table__  # type: ignore[attr-defined]

_NEWEST_AUDIT_ID = sa.select(sa.func.coalesce(sa.func.max(_audit.c.id), 0))
_MOVES_BETWEEN = (
    sa.select(_models.c.name_key, _audit.c.environment, _audit.c.revision)
    .select_from(_audit.join(_models, _models.c.id == _audit.c.model_id))
    .where(
        _audit.c.id > sa.bindparam("after"),
        _audit.c.id <= sa.bindparam("upto"),
        _audit.c.revision.is_not(None),
        _audit.c.environment.is_not(None),
    )
    .order_by(_audit.c.id)
)
_NOTIFY = sa.select(sa.func.pg_notify(sa.bindparam("channel"), sa.bindparam("payload")))


def newest_audit_id(conn: sa.Connection) -> int:
    """A primary-key lookup: what a poll costs when nothing has changed."""
    return int(conn.execute(_NEWEST_AUDIT_ID).scalar_one())


def moves_between(conn: sa.Connection, after: int, upto: int) -> Sequence[sa.Row[Any]]:
    """(name_key, environment, revision) of each revision-carrying audit row in (after, upto], oldest first."""
    return conn.execute(_MOVES_BETWEEN, {"after": after, "upto": upto}).all()


def notify(conn: sa.Connection, channel: str, payload: str) -> None:
    """PostgreSQL NOTIFY through a bind parameter (the NOTIFY statement takes none)."""
    conn.execute(_NOTIFY, {"channel": channel, "payload": payload})
