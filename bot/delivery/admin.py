"""What operators do with the outbox: look at it (`modelbot outbox`) and resend a failed row.

Failed rows stay failed until a person decides: most permanent errors need a fix first (invite
the bot to the channel, set the webhook secret, correct a URL), then `modelbot outbox retry ID`.
Paused destinations (`bot.domain.deliveries`) need nothing: they resume by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, NotFound
from storage.db import Database
from storage.models import OutboxMessage


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    destination: str
    kind: str
    template: str
    status: str
    attempts: int
    last_error: str | None
    channel: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "topic": self.topic, "destination": self.destination, "kind": self.kind, "template": self.template, "status": self.status,
            "attempts": self.attempts, "last_error": self.last_error, "channel": self.channel,
            "created_at": iso(self.created_at), "next_attempt_at": iso(self.next_attempt_at),
            "delivered_at": iso(self.delivered_at),
        }


def list_rows(db: Database, *, failed_only: bool = False, include_delivered: bool = False,
              limit: int = 50) -> list[OutboxRow]:
    """Newest first: failed rows, or everything not yet delivered, or (with include_delivered) all."""
    query = select(OutboxMessage)
    if failed_only:
        query = query.where(OutboxMessage.status == "failed")
    elif not include_delivered:
        query = query.where(col(OutboxMessage.status).in_(("pending", "sending", "failed")))
    with db.read() as session:
        rows = session.exec(query.order_by(col(OutboxMessage.id).desc()).limit(max(1, min(limit, 1000)))).all()
        return [_row(r) for r in rows]


def retry(db: Database, outbox_id: int, *, now: datetime) -> OutboxRow:
    """Failed → pending, due now. Only failed rows: a pending one is already going to be sent."""
    with db.write() as session:
        row = session.exec(db.lock_for_update(select(OutboxMessage).where(OutboxMessage.id == outbox_id))).first()
        if row is None:
            raise NotFound(f"There is no outbox row {outbox_id}: `modelbot outbox --failed` lists the failed ones.")
        if row.status != "failed":
            raise Conflict(f"Outbox row {outbox_id} is {row.status}; only failed rows can be retried.")
        row.status, row.next_attempt_at, row.lease_until = "pending", now, None
        # keep what the last attempt learnt (maybe_sent), restart the give-up clock
        kept = {k: v for k, v in (row.result or {}).items() if k == "maybe_sent"}
        row.result = {**kept, "manual_retry_at": iso(now)}
        session.add(row)
        session.flush()
        return _row(row)


def _row(r: OutboxMessage) -> OutboxRow:
    assert r.id is not None
    return OutboxRow(
        id=r.id, topic=r.topic, destination=r.destination, kind=r.kind, template=r.template, status=r.status, attempts=r.attempts,
        last_error=r.last_error, channel=r.channel, created_at=as_utc(r.created_at),
        next_attempt_at=as_utc(r.next_attempt_at), delivered_at=as_utc(r.delivered_at) if r.delivered_at else None,
    )
