"""Digest subscriptions: which channel (or whose DM) hears about which models, how often, when,
in which zone.

One subscription per (channel, model or `*`, frequency), enforced by a unique key in the
database; subscribing again with the same three changes the time instead of adding a second
digest, because two identical digests in one channel are never what anyone wants.

Who may do what (the same through Slack, the shell, the CLI and the REST API):
- a channel's digests are set up by deployers and admins, the people the policy trusts with
  what serves (a digest speaks to a whole channel);
- anyone may have a digest sent to themselves: a DM digest (its target is their own user id);
  nobody sets one up for someone else;
- a digest is changed or removed only by the person who set it up (the subscriber) or an admin.
Each subscribe and unsubscribe writes one audit row; a refusal writes its own (bot/domain/audit.py).
User groups in the policy are resolved before any transaction opens.

The scheduler (`bot/jobs`) keeps one job per subscription. A change here calls the
listeners in `CHANGE_LISTENERS` so a scheduler in this process resynchronises at once;
schedulers in other processes catch up on their periodic sync.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.domain import audit, channels, names
from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.domain.policy import GroupResolver, Policy, no_groups
from bot.domain.registry import Registry
from bot.domain.schedule import FREQUENCIES, Schedule, next_fire
from storage.models import Subscription
from storage.queries import subscriptions as queries

ALL_MODELS = "*"
MAX_PER_CHANNEL = 50
log = logging.getLogger("modelbot.subscriptions")

# Called (without arguments) after a subscription is created, changed or removed.
CHANGE_LISTENERS: list[Callable[[], None]] = []


def parse_target(raw: str) -> str:
    """Where a digest goes: a channel id (from a link or an id) or a person's user id (their DM)."""
    text = raw.strip()
    return text if channels.is_user(text) else channels.channel_id(text)


def describe_target(target: str) -> str:
    return f"the DM of {target}" if channels.is_user(target) else f"<#{target}>"


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

    def __init__(self, registry: Registry, policy: Policy, groups: GroupResolver = no_groups) -> None:
        self.registry = registry
        self.policy = policy
        self.groups = groups

    def subscribe(self, *, model: str, channel: str, schedule: Schedule, actor: str) -> SubscribeOutcome:
        actor = names.actor(actor)
        target = parse_target(channel)
        if model != ALL_MODELS:
            names.model_name(model)
        roles = self.policy.roles(actor, self.groups)  # user groups resolved before the transaction
        admin, deployer = roles.admin, roles.deployer
        now = self.registry.clock()
        with audit.refusals(self.registry, actor=actor, action="subscribe", model=_model_or_none(model),
                            subject=f"digests of {target}"):
            self._may_target(target, actor, deployer)
            try:
                with self.registry.writing() as session:
                    model_id, model_key, model_name = self._target(session, model)
                    found = queries.matching(session, channel=target, model_key=model_key,
                                             frequency=schedule.frequency, lock=True)
                    if not found:
                        count = queries.count_in_channel(session, target)
                        if count >= MAX_PER_CHANNEL:
                            raise Conflict(f"{describe_target(target)} already has {count} digests; unsubscribe "
                                           "from some first.")
                        row = Subscription(channel=target, model_id=model_id, model_key=model_key,
                                           frequency=schedule.frequency, at_time=schedule.at_time,
                                           weekday=schedule.weekday, timezone=schedule.timezone,
                                           created_by=actor, created_at=now)
                    else:
                        row = found[0]
                        _may_change(row, actor, admin, "change")
                        row.at_time, row.weekday, row.timezone = schedule.at_time, schedule.weekday, schedule.timezone
                    created = row.id is None
                    view = _view(queries.save(session, row), model_name)
                    audit.record(session, at=now, actor=actor, action="subscribe" if created else "subscription_change",
                                 model_id=model_id, subject=f"subscription {view.id}",
                                 reason=f"{_when(schedule)} to {target}")
            except IntegrityError:
                # the unique key: someone subscribed the same channel at the same moment
                raise Conflict("That channel was just subscribed to the same digest; run `subscriptions` to see "
                               "it.") from None
        _changed()
        return SubscribeOutcome(view, created)

    def unsubscribe(self, *, model: str, channel: str, actor: str, frequency: str | None = None
                    ) -> list[SubscriptionView]:
        """Remove the target's digests of `model` (or `*`), of one frequency or all of them."""
        actor = names.actor(actor)
        target = parse_target(channel)
        if frequency is not None and frequency not in FREQUENCIES:
            raise InvalidInput(f"'{names.preview(frequency)}' is not a frequency: use hourly, daily or weekly.")
        model_key = ALL_MODELS if model == ALL_MODELS else names.model_name(model).lower()
        admin = self.policy.roles(actor, self.groups).admin
        now = self.registry.clock()
        with (audit.refusals(self.registry, actor=actor, action="unsubscribe", model=_model_or_none(model),
                             subject=f"digests of {target}"),
              self.registry.writing() as session):
            rows = queries.matching(session, channel=target, model_key=model_key, frequency=frequency, lock=True)
            if not rows:
                what = f"{frequency} digest" if frequency else "digest"
                raise NotFound(f"{describe_target(target)} has no {what} of {names.preview(model)}: "
                               "`subscriptions` lists what is subscribed.")
            for row in rows:
                _may_change(row, actor, admin, "remove")
            model_names = queries.model_names(session, rows)
            removed = [_view(r, model_names.get(r.model_id or 0, ALL_MODELS)) for r in rows]
            queries.delete(session, rows)
            ids = ", ".join(str(v.id) for v in removed)
            audit.record(session, at=now, actor=actor, action="unsubscribe", model_id=rows[0].model_id,
                         subject=f"subscription{'s' if len(removed) > 1 else ''} {ids}"[:128],
                         reason=", ".join(f"{v.schedule.frequency} to {v.channel}" for v in removed))
        _changed()
        return removed

    def list_all(self, channel: str | None = None) -> list[SubscriptionView]:
        with self.registry.reading() as session:
            rows = queries.listing(session, None if channel is None else parse_target(channel))
            model_names = queries.model_names(session, rows)
            return [_view(r, model_names.get(r.model_id or 0, ALL_MODELS)) for r in rows]

    def get(self, subscription_id: int) -> SubscriptionView | None:
        with self.registry.reading() as session:
            row = queries.by_id(session, subscription_id)
            if row is None:
                return None
            return _view(row, queries.model_names(session, [row]).get(row.model_id or 0, ALL_MODELS))

    def _may_target(self, target: str, actor: str, deployer: bool) -> None:
        if channels.is_user(target):
            if target != actor:
                raise Forbidden("A DM digest goes to the person who asks for it: you may subscribe your own DM "
                                "(`subscribe MODEL daily dm`), not someone else's.")
            return
        if not deployer:
            raise Forbidden(f"Only deployers ({self.policy.deployers.describe()}) and admins "
                            f"({self.policy.admins.describe()}) may subscribe a channel to digests; "
                            "`subscribe MODEL daily dm` sends one to you.")

    def _target(self, session: Session, model: str) -> tuple[int | None, str, str]:
        if model == ALL_MODELS:
            return None, ALL_MODELS, ALL_MODELS
        row = self.registry.model_row(session, model)  # NotFound names `list`
        return row.id, row.name_key, row.name


def _may_change(row: Subscription, actor: str, admin: bool, what: str) -> None:
    if row.created_by != actor and not admin:
        raise Forbidden(f"The {row.frequency} digest of {row.model_key} to {describe_target(row.channel)} was set up "
                        f"by {row.created_by}: only they or an admin may {what} it.")


def _model_or_none(model: str) -> str | None:
    return None if model == ALL_MODELS else model


def _when(schedule: Schedule) -> str:
    day = f" on day {schedule.weekday}" if schedule.frequency == "weekly" else ""
    return f"{schedule.frequency}{day} at {schedule.at_time} {schedule.timezone}"


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
