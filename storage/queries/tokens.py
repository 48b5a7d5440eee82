"""API token rows: by secret hash, by name, listing, inserting, revoking. Which token may be
created, rotated or revoked is decided in bot/domain/tokens.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import ApiToken


def by_hash(session: Session, digest: str) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()


def active_by_name(session: Session, name: str, *, lock: bool = False) -> ApiToken | None:
    """The one active token of that name (a partial unique index keeps it one)."""
    query = select(ApiToken).where(ApiToken.name == name, col(ApiToken.revoked_at).is_(None))
    if lock and session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.exec(query).first()


def last_revoked_by_name(session: Session, name: str) -> ApiToken | None:
    return session.exec(select(ApiToken).where(ApiToken.name == name, col(ApiToken.revoked_at).is_not(None))
                        .order_by(col(ApiToken.id).desc())).first()


def all_tokens(session: Session) -> Sequence[ApiToken]:
    """Active ones first within a name, then newest first."""
    return session.exec(select(ApiToken).order_by(col(ApiToken.name), col(ApiToken.revoked_at).is_not(None),
                                                  col(ApiToken.id).desc())).all()


def insert(session: Session, row: ApiToken) -> ApiToken:
    session.add(row)
    session.flush()
    return row


def revoke(session: Session, row: ApiToken, now: datetime) -> None:
    row.revoked_at = now
    session.add(row)
    session.flush()  # before a replacement of the same name is inserted (the partial unique index)


def touch(session: Session, token_id: int, now: datetime) -> None:
    session.execute(sa.update(ApiToken).where(col(ApiToken.id) == token_id).values(last_used_at=now))
