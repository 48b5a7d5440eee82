"""One audit row per decision, and one per refusal.

A decision writes its row in the transaction that makes the change, so the change and its
record commit together. A refusal — the request was understood and the rules said no
(`Forbidden`, `Conflict`) — writes one row of its own, action `<action>_refused` with the
refusal's sentence as the reason, in a short transaction opened after the refused one rolled
back: the log shows who tried what, and why not. Malformed input (`InvalidInput`) and things
that do not exist (`NotFound`) are not decisions: they leave no row, and bad input changes
nothing at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.domain.errors import Conflict, Forbidden
from storage.queries import audit as queries
from storage.queries import registry as registry_queries

if TYPE_CHECKING:
    from bot.domain.registry import Registry

REFUSED = "_refused"
MAX_REASON = 1000


def record(
    session: Session, *, at: datetime, actor: str, action: str, model_id: int | None = None,
    environment: str | None = None, reason: str | None = None, subject: str | None = None,
) -> None:
    """The decision's row, in the caller's write transaction."""
    queries.append(session, at=at, actor=actor, action=action, model_id=model_id, environment=environment,
                   reason=reason[:MAX_REASON] if reason else None, subject=subject)


def record_refusal(
    registry: Registry, *, actor: str, action: str, reason: str, model: str | None = None,
    environment: str | None = None, subject: str | None = None,
) -> None:
    """The refusal's row, in a transaction of its own (the refused one has rolled back)."""
    with registry.writing() as session:
        found = registry_queries.model_by_key(session, model) if model else None
        record(session, at=registry.clock(), actor=actor, action=action + REFUSED,
               model_id=found.id if found is not None else None, environment=environment, reason=reason,
               subject=subject)


@contextlib.contextmanager
def refusals(
    registry: Registry, *, actor: str, action: str, model: str | None = None, environment: str | None = None,
    subject: str | None = None,
) -> Iterator[None]:
    """Around a decision: a Forbidden or Conflict raised inside is recorded, then re-raised."""
    try:
        yield
    except (Forbidden, Conflict) as refusal:
        record_refusal(registry, actor=actor, action=action, reason=refusal.message, model=model,
                       environment=environment, subject=subject)
        raise
