"""What a worker hands to a sender (`Job`) and what it gets back (`Outcome`).

A `Job` is a frozen snapshot taken in the claim transaction, so sending happens outside any
database transaction and no ORM object crosses into a sending thread. An `Outcome` says what
to record; the worker turns it into a row update in a second short transaction.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.domain.entities import as_utc
from storage.models import OutboxMessage

# Slack message metadata that marks a message as sent for one outbox row: a retry whose
# previous attempt may have reached Slack looks for it before sending again.
METADATA_EVENT_TYPE = "modelbot_outbox"


def outbox_metadata(outbox_id: int) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"outbox_id": outbox_id}}


def metadata_outbox_id(message: dict[str, Any]) -> int | None:
    """The outbox id a Slack message was sent for, or None for anything else."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_EVENT_TYPE:
        return None
    raw = (metadata.get("event_payload") or {}).get("outbox_id")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class SlackTarget:
    """Where the keyed message (a card) lives: updates edit it, threads reply under it."""

    channel: str
    ts: str


@dataclass(frozen=True)
class Outcome:
    status: Literal["delivered", "retry", "failed"]
    error: str | None = None
    # seconds the server asked us to wait (429 Retry-After); otherwise backoff decides
    retry_after: float | None = None
    # the attempt may have reached the receiver: look before sending again
    maybe_sent: bool = False
    # a timeout or connection error: wait at least one HTTP timeout so a request still in
    # flight can land before the history lookup of the next attempt
    transport: bool = False
    # (channel, ts) to remember under the row's message_key (posts only)
    remember: tuple[str, str] | None = None
    # a channel that answered 429 to chat.postMessage: pace it until Retry-After
    rate_limited_channel: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    # metrics label when it differs from `status` (skipped, superseded)
    label: str | None = None

    @classmethod
    def delivered(cls, result: dict[str, Any] | None = None, *, remember: tuple[str, str] | None = None,
                  label: str | None = None) -> Outcome:
        return cls("delivered", result=result or {}, remember=remember, label=label)

    @classmethod
    def failed(cls, error: str) -> Outcome:
        return cls("failed", error=error)

    @classmethod
    def retry(cls, error: str, *, maybe_sent: bool, retry_after: float | None = None, transport: bool = False,
              rate_limited_channel: str | None = None) -> Outcome:
        return cls("retry", error=error, retry_after=retry_after, maybe_sent=maybe_sent, transport=transport,
                   rate_limited_channel=rate_limited_channel)


@dataclass(frozen=True)
class Job:
    """One claimed outbox row, as the sender needs it."""

    id: int
    topic: str
    destination: str
    kind: str
    template: str
    channel: str | None
    user_id: str | None
    message_key: str | None
    data: dict[str, Any]
    attempts: int
    created_at: datetime
    lease_until: datetime
    # a previous attempt's outcome is unknown (timeout, 5xx, or a worker died mid-send)
    maybe_sent: bool
    target: SlackTarget | None = None
    # decided in the claim transaction without sending (e.g. the card was never posted)
    decided: Outcome | None = None

    @classmethod
    def from_row(cls, row: OutboxMessage, *, maybe_sent: bool, target: SlackTarget | None,
                 decided: Outcome | None) -> Job:
        assert row.id is not None and row.lease_until is not None
        return cls(
            id=row.id, topic=row.topic, destination=row.destination, kind=row.kind, template=row.template, channel=row.channel,
            user_id=row.user_id, message_key=row.message_key, data=copy.deepcopy(dict(row.data or {})),
            attempts=row.attempts, created_at=as_utc(row.created_at), lease_until=as_utc(row.lease_until),
            maybe_sent=maybe_sent, target=target, decided=decided,
        )
