"""Digest subscriptions: which channel hears about which models, how often, when, in which zone.

One subscription per (channel, model or `*`, frequency), enforced by a unique key in the
database; subscribing again with the same three changes the time instead of adding a second
digest, because two identical digests in one channel are never what anyone wants.

The scheduler (`bot/jobs`) keeps one job per subscription. A change here calls the
listeners in `CHANGE_LISTENERS` so a scheduler in this process resynchronises at once;
schedulers in other processes catch up on their periodic sync.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.domain import names
from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.registry import Registry
from bot.domain.schedule import FREQUENCIES, Schedule, next_fire
from storage.models import RegisteredModel, Subscription

ALL_MODELS = "*"
MAX_PER_CHANNEL = 50
# `<#C123|name>` is how Slack sends a channel picked with `#` when the command escapes
# (manifest: should_escape: true); `<#C123>` when the name is unknown to the client.
_CHANNEL_MENTION = re.compile(r"^<#([CGD][A-Z0-9]{2,30})(?:\|[^>]{0,80})?>$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
log = logging.getLogger("modelbot.subscriptions")

# Called (without arguments) after a subscription is created, changed or removed.
CHANGE_LISTENERS: list[Callable[[], None]] = []


def is_channel_token(raw: str) -> bool:
    return bool(_CHANNEL_MENTION.match(raw) or _CHANNEL_ID.match(raw) or raw.startswith("#"))


def parse_channel(raw: str) -> str:
    """A channel id from `<#C123|name>` or a raw `C123`; a bare `#name` cannot be resolved."""
    match = _CHANNEL_MENTION.match(raw)
    if match:
        return match.group(1)
    if _CHANNEL_ID.match(raw):
        return raw
    raise InvalidInput(
        f"'{names.preview(raw)}' is not a channel I can post to: pick it with # in Slack so it becomes a "
        "link, or give its id (like C0123ABCD, from the channel's details)."
    )


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    channel: str
    model: str  # the model's name, or "*"
    model_id: int | None
    schedule: Schedule
    created_by: str
    created_at: datetime
    last_sent_at: datetime | None

    @property
    def all_models(self) -> bool:
        return self.model == ALL_MODELS

    def next_run(self, after: datetime) -> datetime | None:
        return next_fire(self.schedule.trigger(), after)

    def to_dict(self, now: datetime | None = None) -> dict[str, object]:
        doc: dict[str, object] = {
            "id": self.id, "channel": self.channel, "model": self.model, "frequency": self.schedule.frequency,
            "at": self.schedule.at_time, "weekday": self.schedule.weekday, "timezone": self.schedule.timezone,
            "created_by": self.created_by, "created_at": iso(self.created_at), "last_sent_at": iso(self.last_sent_at),
        }
        if now is not None:
            doc["next_run"] = iso(self.next_run(now))
        return doc


@dataclass(frozen=True)
class SubscribeOutcome:
    subscription: SubscriptionView
    created: bool  # False: an existing subscription's time or zone changed


class Subscriptions:
    """Create, change, remove and list subscriptions. Thread-safe (no state besides the registry)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def subscribe(self, *, model: str, channel: str, schedule: Schedule, actor: str) -> SubscribeOutcome:
        actor = names.actor(actor)
        channel = parse_channel(channel)
        now = self.registry.clock()
        try:
            with self.registry.writing() as session:
                model_id, model_key, model_name = self._target(session, model)
                existing = session.exec(
                    self.registry.db.lock_for_update(select(Subscription).where(
                        Subscription.channel == channel, Subscription.model_key == model_key,
                        Subscription.frequency == schedule.frequency,
                    ))
                ).first()
                if existing is None:
                    count = len(session.exec(select(Subscription.id).where(Subscription.channel == channel)).all())
                    if count >= MAX_PER_CHANNEL:
                        raise Conflict(f"This channel already has {count} digests; unsubscribe from some first.")
                    row = Subscription(channel=channel, model_id=model_id, model_key=model_key,
                                       frequency=schedule.frequency, at_time=schedule.at_time,
                                       weekday=schedule.weekday, timezone=schedule.timezone,
                                       created_by=actor, created_at=now)
                    created = True
                else:
                    row = existing
                    row.at_time, row.weekday, row.timezone = schedule.at_time, schedule.weekday, schedule.timezone
                    created = False
                session.add(row)
                session.flush()
                view = _view(row, model_name)
        except IntegrityError:
            # the unique key: someone subscribed the same channel at the same moment
            raise Conflict("That channel was just subscribed to the same digest; run `subscriptions` to see it.") \
                from None
        _changed()
        return SubscribeOutcome(view, created)

    def unsubscribe(self, *, model: str, channel: str, frequency: str | None = None) -> list[SubscriptionView]:
        """Remove the channel's digests of `model` (or `*`), of one frequency or all of them."""
        channel = parse_channel(channel)
        if frequency is not None and frequency not in FREQUENCIES:
            raise InvalidInput(f"'{names.preview(frequency)}' is not a frequency: use hourly, daily or weekly.")
        with self.registry.writing() as session:
            model_key = ALL_MODELS if model == ALL_MODELS else names.model_name(model).lower()
            query = select(Subscription).where(Subscription.channel == channel, Subscription.model_key == model_key)
            if frequency:
                query = query.where(Subscription.frequency == frequency)
            rows = session.exec(self.registry.db.lock_for_update(query)).all()
            if not rows:
                what = f"{frequency} digest" if frequency else "digest"
                raise NotFound(f"<#{channel}> has no {what} of {names.preview(model)}: "
                               "`subscriptions` lists what is subscribed.")
            model_names = _model_names(session, rows)
            removed = [_view(r, model_names.get(r.model_id or 0, ALL_MODELS)) for r in rows]
            for row in rows:
                session.delete(row)
        _changed()
        return removed

    def list_all(self, channel: str | None = None) -> list[SubscriptionView]:
        with self.registry.reading() as session:
            query = select(Subscription).order_by(col(Subscription.channel), col(Subscription.model_key),
                                                  col(Subscription.id))
            if channel is not None:
                query = query.where(Subscription.channel == parse_channel(channel))
            rows = session.exec(query).all()
            model_names = _model_names(session, rows)
            return [_view(r, model_names.get(r.model_id or 0, ALL_MODELS)) for r in rows]

    def get(self, subscription_id: int) -> SubscriptionView | None:
        with self.registry.reading() as session:
            row = session.get(Subscription, subscription_id)
            if row is None:
                return None
            return _view(row, _model_names(session, [row]).get(row.model_id or 0, ALL_MODELS))

    def _target(self, session: Session, model: str) -> tuple[int | None, str, str]:
        if model == ALL_MODELS:
            return None, ALL_MODELS, ALL_MODELS
        row = self.registry.model_row(session, model)  # NotFound names `list`
        return row.id, row.name_key, row.name


def _model_names(session: Session, rows: Sequence[Subscription]) -> dict[int, str]:
    ids = {r.model_id for r in rows if r.model_id is not None}
    if not ids:
        return {}
    found = session.exec(select(RegisteredModel.id, RegisteredModel.name).where(col(RegisteredModel.id).in_(ids)))
    return {model_id: name for model_id, name in found}


def _view(row: Subscription, model_name: str) -> SubscriptionView:
    assert row.id is not None
    return SubscriptionView(
        id=row.id, channel=row.channel, model=model_name, model_id=row.model_id,
        schedule=Schedule(row.frequency, row.at_time, row.weekday, row.timezone),
        created_by=row.created_by, created_at=as_utc(row.created_at),
        last_sent_at=as_utc(row.last_sent_at) if row.last_sent_at else None,
    )


def _changed() -> None:
    for listener in list(CHANGE_LISTENERS):
        try:
            listener()
        except Exception:  # a scheduler hiccup must not turn a committed change into an error
            log.exception("subscription change listener failed")
