"""The outbox table's operations: enqueue inside a caller's transaction, claim, finish.

No business rules: which messages a state change causes is decided in `bot/domain`; how they
are rendered and sent, retried and circuit-broken in `bot/delivery`. This module only knows
rows, destinations, order, leases and the circuit rows.

**Destinations.** Every row has a `destination`, `lane:key`, and rows of one destination are
sent in id order, one at a time; rows of different destinations never wait for each other.
The lane (`slack`, `webhook`, …) is the delivery worker's capacity pool, so a lane whose
receiver hangs cannot use up the threads of another. A caller may pass `destination=` (an
MLflow alias write ordered per model: `mlflow:churn`); otherwise `default_destination`
derives it: one Slack message with its updates, thread replies, uploads and link
(`slack:message:<message_key>`), one channel's unkeyed posts (`slack:channel:<id>`), one
App Home refresh topic, one webhook URL (`webhook:<url, redacted>`). Rows that share a
`message_key` must share a destination (the default does): an update is only ever sent after
the post that creates its message.

**Circuits.** `circuit` names the breaker a row's failures count against (default: the
webhook's destination; None for Slack, which has its own 429/Retry-After discipline). Rows
whose circuit is open and paused are not claimable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.redaction import redact_url
from storage.models import OutboxCircuit, OutboxMessage, SlackMessageRef

KINDS = ("post", "update", "thread", "ephemeral", "webhook", "upload", "home", "mlflow_alias")
MAX_KEY = 200


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
    destination: str | None = None,
    circuit: str | None = None,
) -> OutboxMessage:
    """Write one row in the caller's transaction.

    A webhook row never stores credentials: its `data["url"]` is kept redacted, and the
    worker sends to the policy's webhook whose redacted URL matches (so rotating a password
    in the URL needs no migration of pending rows).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind}")
    if kind == "webhook" and isinstance(data.get("url"), str):
        data = {**data, "url": redact_url(data["url"])}
    if destination is None:
        destination = default_destination(kind=kind, topic=topic, channel=channel, message_key=message_key,
                                          data=data)
    if circuit is None and kind == "webhook":
        circuit = destination
    if ":" not in destination:
        raise ValueError(f"outbox destination {destination!r} must be lane:key")
    row = OutboxMessage(
        topic=topic, kind=kind, template=template, data=data, channel=channel, user_id=user_id,
        message_key=message_key, destination=_key(destination), circuit=_key(circuit) if circuit else None,
        next_attempt_at=now, created_at=now,
    )
    session.add(row)
    return row


def default_destination(*, kind: str, topic: str, channel: str | None, message_key: str | None,
                        data: dict[str, Any]) -> str:
    """Where a row goes, as far as order is concerned (see the module docstring)."""
    if kind == "webhook":
        return webhook_destination(str(data.get("url") or ""))
    if message_key:
        return f"slack:message:{message_key}"
    if kind == "home":
        return f"slack:{topic}"
    if channel:
        return f"slack:channel:{channel}"
    return f"slack:topic:{topic}"


def webhook_destination(url: str) -> str:
    return f"webhook:{redact_url(url)}"


def lane(destination: str) -> str:
    """The capacity pool of a destination: the part before the first colon."""
    return destination.split(":", 1)[0]


def newest_is_pending(session: Session, topic: str) -> bool:
    """The newest row of the topic still waits to be claimed (for refreshes that coalesce: it will
    render after the change being committed now). One index probe, however long the topic's history:
    rows of a topic are claimed in order, so the newest one pending is the only one that matters."""
    status = session.exec(
        select(OutboxMessage.status).where(OutboxMessage.topic == topic).order_by(col(OutboxMessage.id).desc()).limit(1)
    ).first()
    return status == "pending"


def claimable(session: Session, *, now: datetime, limit: int, skip_locked: bool,
              full_lanes: Collection[str] = ()) -> Sequence[OutboxMessage]:
    """The oldest due row of each destination whose earlier rows are all finished (order per
    destination), leaving out lanes with no free sender and circuits that are paused.

    A row is due when pending and its next attempt is now or past, or when it is `sending`
    with an expired lease (its worker died mid-send). On PostgreSQL the rows come back locked
    with SKIP LOCKED, so several workers never claim the same row.
    """
    outer = sa.orm.aliased(OutboxMessage, name="o")
    earlier = sa.orm.aliased(OutboxMessage, name="e")
    earlier_unfinished = (
        select(earlier.id)
        .where(
            earlier.destination == outer.destination,
            earlier.id < outer.id,  # type: ignore[operator]
            col(earlier.status).in_(("pending", "sending")),
        )
        .exists()
    )
    due = sa.or_(
        sa.and_(outer.status == "pending", outer.next_attempt_at <= now),
        sa.and_(outer.status == "sending", outer.lease_until <= now),  # type: ignore[operator]
    )
    paused = select(OutboxCircuit.key).where(OutboxCircuit.state == "open",
                                             col(OutboxCircuit.paused_until) > now)
    query = select(outer).where(due, ~earlier_unfinished,
                                sa.or_(col(outer.circuit).is_(None), col(outer.circuit).not_in(paused)))
    for name in sorted(full_lanes):
        query = query.where(~col(outer.destination).startswith(f"{name}:", autoescape=True))
    query = query.order_by(outer.id).limit(limit)
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


# ---- circuits -------------------------------------------------------------------------------------


def circuit(session: Session, key: str, *, lock: bool) -> OutboxCircuit | None:
    """One circuit row; with `lock`, locked for the rest of the transaction (FOR UPDATE on
    PostgreSQL; SQLite renders no FOR UPDATE, its write transaction already excludes other writers)."""
    query = select(OutboxCircuit).where(OutboxCircuit.key == key).execution_options(populate_existing=True)
    return session.exec(query.with_for_update() if lock else query).first()


def circuits(session: Session, keys: Collection[str]) -> dict[str, OutboxCircuit]:
    if not keys:
        return {}
    rows = session.exec(select(OutboxCircuit).where(col(OutboxCircuit.key).in_(list(keys)))).all()
    return {r.key: r for r in rows}


def open_circuits(session: Session) -> Sequence[OutboxCircuit]:
    """Circuits that are open now (paused, or about to send a probe), oldest opening first."""
    return session.exec(
        select(OutboxCircuit).where(OutboxCircuit.state == "open").order_by(col(OutboxCircuit.opened_at))
    ).all()


def waiting_by_circuit(session: Session, keys: Collection[str]) -> dict[str, int]:
    """How many rows wait (pending or sending) behind each circuit."""
    if not keys:
        return {}
    rows = session.exec(
        select(OutboxMessage.circuit, sa.func.count()).where(
            col(OutboxMessage.circuit).in_(list(keys)), col(OutboxMessage.status).in_(("pending", "sending")))
        .group_by(OutboxMessage.circuit)
    ).all()
    return {str(k): int(n) for k, n in rows}


def _key(value: str) -> str:
    """Keys longer than the column keep their start and gain a digest of the whole, so they stay unique."""
    if len(value) <= MAX_KEY:
        return value
    return value[: MAX_KEY - 17] + "#" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
