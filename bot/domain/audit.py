"""One audit row per decision, and one per refusal: every row of the audit log is written here
(registry moves, deployment decisions, alert actions, subscriptions, tokens, MLflow's sync).

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
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.domain import names
from bot.domain.entities import AuditEntry, as_utc
from bot.domain.errors import Conflict, Forbidden
from storage.queries import audit as queries
from storage.queries import registry as registry_queries

if TYPE_CHECKING:
    from bot.domain.registry import Registry

REFUSED = "_refused"


def record(
    session: Session, *, at: datetime, actor: str, action: str, model_id: int | None = None,
    environment: str | None = None, reason: str | None = None, subject: str | None = None,
    from_version: int | None = None, to_version: int | None = None, revision: int | None = None,
    weight: int | None = None, request_id: str | None = None,
) -> None:
    """The decision's row, in the caller's write transaction (after the changes it records)."""
    session.flush()
    queries.append(session, _values(locals()))


def record_shown(
    session: Session, *, model_name: str | None, at: datetime, actor: str, action: str,
    model_id: int | None = None, environment: str | None = None, reason: str | None = None,
    subject: str | None = None, from_version: int | None = None, to_version: int | None = None,
    revision: int | None = None, weight: int | None = None, request_id: str | None = None,
) -> AuditEntry:
    """`record`, for a decision whose message shows the row (with its id)."""
    session.flush()
    values = _values(locals())
    values["id"] = queries.append_returning_id(session, values)
    return entry(values, model_name)


def record_refusal(
    registry: Registry, *, actor: str, action: str, reason: str, at: datetime | None = None,
    model: str | None = None, model_id: int | None = None, environment: str | None = None,
    subject: str | None = None, to_version: int | None = None, weight: int | None = None,
    request_id: str | None = None,
) -> None:
    """The refusal's row, in a transaction of its own (the refused one has rolled back). The
    model is named (`model`, looked up here) or already known (`model_id`)."""
    with registry.writing() as session:
        if model_id is None and model:
            found = registry_queries.model_by_key(session, model)
            model_id = found.id if found is not None else None
        record(session, at=at or registry.clock(), actor=actor, action=action + REFUSED, model_id=model_id,
               environment=environment, reason=reason, subject=subject, to_version=to_version, weight=weight,
               request_id=request_id)


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


def entry(row: Any, model_name: str | None) -> AuditEntry:
    """An audit row (a mapping of its columns, or a row with attributes) as the entity people
    see in `history`."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name, None)
    return AuditEntry(
        id=get("id") or 0, at=as_utc(get("at")), actor=get("actor"), model=model_name,
        environment=get("environment"), action=get("action"), from_version=get("from_version"),
        to_version=get("to_version"), revision=get("revision"), reason=get("reason"),
        request_id=get("request_id"), weight=get("weight"),
    )


def _values(arguments: dict[str, Any]) -> dict[str, Any]:
    """The row's columns from a recording function's arguments; a reason longer than any text
    the domain accepts (a refusal quoting a hostile input) is cut there."""
    values = {column: arguments[column] for column in queries.COLUMNS}
    reason = values["reason"]
    values["reason"] = reason[:names.TEXT_MAX] if reason else None
    return values
