"""Digest subscription rows. One per (channel, model key, frequency), a database fact (unique key);
who may change which is decided in bot/domain/subscriptions.py."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session, col, select

from storage.models import RegisteredModel, Subscription


def _locked(session: Session, query: object) -> object:
    return query if session.get_bind().dialect.name == "sqlite" else query.with_for_update()  # type: ignore[attr-defined]


def matching(session: Session, *, channel: str, model_key: str, frequency: str | None = None,
             lock: bool = False) -> Sequence[Subscription]:
    query = select(Subscription).where(Subscription.channel == channel, Subscription.model_key == model_key)
    if frequency is not None:
        query = query.where(Subscription.frequency == frequency)
    query = query.order_by(col(Subscription.id))
    return session.exec(_locked(session, query) if lock else query).all()  # type: ignore[call-overload]


def count_in_channel(session: Session, channel: str) -> int:
    return len(session.exec(select(Subscription.id).where(Subscription.channel == channel)).all())


def listing(session: Session, channel: str | None = None) -> Sequence[Subscription]:
    query = select(Subscription).order_by(col(Subscription.channel), col(Subscription.model_key),
                                          col(Subscription.id))
    if channel is not None:
        query = query.where(Subscription.channel == channel)
    return session.exec(query).all()


def by_id(session: Session, subscription_id: int, *, lock: bool = False) -> Subscription | None:
    if not lock:
        return session.get(Subscription, subscription_id)
    query = select(Subscription).where(Subscription.id == subscription_id)
    return session.exec(_locked(session, query)).first()  # type: ignore[call-overload]


def model_names(session: Session, rows: Iterable[Subscription]) -> dict[int, str]:
    ids = {r.model_id for r in rows if r.model_id is not None}
    if not ids:
        return {}
    found = session.exec(select(RegisteredModel.id, RegisteredModel.name).where(col(RegisteredModel.id).in_(ids)))
    return {model_id: name for model_id, name in found}


def save(session: Session, row: Subscription) -> Subscription:
    session.add(row)
    session.flush()
    return row


def delete(session: Session, rows: Iterable[Subscription]) -> None:
    for row in rows:
        session.delete(row)
    session.flush()
