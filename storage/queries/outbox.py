"""The outbox table's operations: enqueue inside a caller's transaction, claim, finish.

No business rules: which messages a state change causes is decided in `bot/domain`; how they
are rendered and sent in `bot/delivery`. This module only knows rows, order and leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.models import OutboxMessage, SlackMessageRef

KINDS = ("post", "update", "thread", "ephemeral", "webhook", "upload", "home", "mlflow_alias")


def enqueue(
    session: Session,
    *,
    now: datetime,
    topic: str,
    kind: str,
    template: str,
    data: dict[str, Any],
    channel: str | None = None,
    user_id: str | None = None,
    message_key: str | None = None,
) -> OutboxMessage:
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind}")
    row = OutboxMessage(
        topic=topic, kind=kind, template=template, data=data, channel=channel, user_id=user_id,
        message_key=message_key, next_attempt_at=now, created_at=now,
    )
    session.add(row)
    return row


def newest_is_pending(session: Session, topic: str) -> bool:
    """The newest row of the topic still waits to be claimed (for refreshes that coalesce: it will
    render after the change being committed now). One index probe, however long the topic's history:
    rows of a topic are claimed in order, so the newest one pending is the only one that matters."""
    status = session.exec(
        select(OutboxMessage.status).where(OutboxMessage.topic == topic).order_by(col(OutboxMessage.id).desc()).limit(1)
    ).first()
    return status == "pending"


def claimable(session: Session, *, now: datetime, limit: int, skip_locked: bool) -> Sequence[OutboxMessage]:
    """The oldest due row of each topic whose earlier rows are all finished (order per topic).

    A row is due when pending and its next attempt is now or past, or when it is `sending`
    with an expired lease (its worker died mid-send). On PostgreSQL the rows come back locked
    with SKIP LOCKED, so several workers never claim the same row.
    """
    outer = sa.orm.aliased(OutboxMessage, name="o")
    earlier = sa.orm.aliased(OutboxMessage, name="e")
    earlier_unfinished = (
        select(earlier.id)
        .where(
            earlier.topic == outer.topic,
            earlier.id < outer.id,  # type: ignore[operator]
            col(earlier.status).in_(("pending", "sending")),
        )
        .exists()
    )
    due = sa.or_(
        sa.and_(outer.status == "pending", outer.next_attempt_at <= now),
        sa.and_(outer.status == "sending", outer.lease_until <= now),  # type: ignore[operator]
    )
    query = select(outer).where(due, ~earlier_unfinished).order_by(outer.id).limit(limit)
    if skip_locked:
        query = query.with_for_update(skip_locked=True, of=outer)
    return session.exec(query).all()


def message_ref(session: Session, key: str) -> SlackMessageRef | None:
    return session.get(SlackMessageRef, key)


def remember_message(session: Session, *, key: str, channel: str, ts: str, outbox_id: int | None, now: datetime) -> None:
    existing = session.get(SlackMessageRef, key)
    if existing is None:
        session.add(SlackMessageRef(key=key, channel=channel, ts=ts, outbox_id=outbox_id, created_at=now))
    else:
        existing.channel, existing.ts, existing.outbox_id = channel, ts, outbox_id
        session.add(existing)


def lease(row: OutboxMessage, *, now: datetime, seconds: float) -> None:
    row.status = "sending"
    row.attempts += 1
    row.lease_until = now + timedelta(seconds=seconds)


def pending_count(session: Session) -> int:
    return session.exec(
        select(sa.func.count()).select_from(OutboxMessage).where(col(OutboxMessage.status).in_(("pending", "sending")))
    ).one()
