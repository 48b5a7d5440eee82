"""Is MLflow in step with modelbot? The answers `/model show MODEL @ENV` and `modelbot mlflow status` give.

Per alias: what modelbot serves, what MLflow holds (read live when the caller could, else
what modelbot last knew), and whether a write is waiting in the outbox or failed there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.domain.entities import as_utc, iso
from bot.domain.errors import NotFound
from bot.domain.mlflow import outbound
from bot.domain.mlflow.inbound import POLL
from bot.domain.mlflow.settings import SyncSettings
from bot.domain.registry import Registry
from storage.models import OutboxMessage
from storage.queries import mlflow as mlflow_queries
from storage.queries import registry as queries

RECENT_ROWS = 50


@dataclass(frozen=True)
class AliasState:
    model: str
    alias: str
    environment: str
    canary: bool
    serving: int | None  # modelbot's pointer (stable, or canary for a canary alias)
    mlflow: int | None  # what MLflow holds
    known: bool  # False: modelbot has never seen this alias (and was given no live answer)
    pending: str | None = None  # a write waiting in the outbox, said in words
    failed: str | None = None  # the newest write failed, and nothing was delivered after it

    @property
    def status(self) -> str:
        if self.failed:
            return "failed"
        if self.pending:
            return "pending"
        if not self.known:
            return "unknown"
        return "in_sync" if self.mlflow == self.serving else "drift"

    def describe(self) -> str:
        holds = f"v{self.mlflow}" if self.mlflow is not None else "not set"
        serves = f"v{self.serving}" if self.serving is not None else "nothing"
        what = f"{self.environment} canary" if self.canary else self.environment
        if self.status == "in_sync":
            return f"MLflow alias {self.alias} → {holds} ✓" if self.mlflow is not None else (
                f"MLflow alias {self.alias} not set, and nothing serves {what} ✓")
        if self.status == "pending":
            return f"MLflow alias {self.alias}: {self.pending}"
        if self.status == "failed":
            return f"MLflow alias {self.alias}: the write failed ({self.failed}); it holds {holds}"
        if self.status == "unknown":
            return f"MLflow alias {self.alias}: not checked yet (the next poll reads it)"
        return f"MLflow alias {self.alias} → {holds}, but {what} serves {serves} (drift)"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "alias": self.alias, "environment": self.environment, "canary": self.canary,
                "serving": self.serving, "mlflow": self.mlflow, "status": self.status, "pending": self.pending,
                "failed": self.failed, "text": self.describe()}


@dataclass(frozen=True)
class SyncStatus:
    settings: SyncSettings
    followed: tuple[str, ...]
    aliases: tuple[AliasState, ...]
    live: bool  # MLflow's aliases were read just now (else: as modelbot last knew them)
    now: datetime
    last_event: dict[str, Any] | None = None
    last_poll: dict[str, Any] | None = None
    pending_writes: int = 0
    failed_writes: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def drift(self) -> tuple[AliasState, ...]:
        return tuple(a for a in self.aliases if a.status in ("drift", "failed"))

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        return {
            "tracking_uri": s.tracking_uri, "models": list(s.models) or ["*"], "followed": list(self.followed),
            "aliases_map": dict(s.aliases), "canary_alias_suffix": s.canary_alias_suffix,
            "external_moves": s.external_moves, "poll_interval_s": s.poll_interval.total_seconds(),
            "live": self.live, "last_event": self.last_event, "last_poll": self.last_poll,
            "pending_writes": self.pending_writes, "failed_writes": list(self.failed_writes),
            "aliases": [a.to_dict() for a in self.aliases], "drift": [a.to_dict() for a in self.drift],
        }


def alias_states(registry: Registry, settings: SyncSettings, model: str, environment: str | None = None) -> list[AliasState]:
    """The aliases of one model (of one environment), as modelbot last knew them."""
    with registry.reading() as session:
        row = queries.model_by_key(session, model)
        if row is None:
            raise NotFound(f"There is no model named '{model}': `list` shows the models that exist.")
        if not settings.follows(row.name):
            return []
        states = _states(session, settings, row.id, row.name, None)  # type: ignore[arg-type]
    # a canary alias is worth a line only while a canary runs or the alias is (or is about to be) set
    return [s for s in states if (environment is None or s.environment == environment)
            and not (s.canary and s.serving is None and s.mlflow is None and not s.pending and not s.failed)]


def followed_models(registry: Registry, settings: SyncSettings) -> list[str]:
    """Models in modelbot that `[mlflow] models` follows."""
    with registry.reading() as session:
        return [r.name for r in _all_models(session) if settings.follows(r.name)]


def sync_status(registry: Registry, settings: SyncSettings, *, now: datetime,
                live: Mapping[str, Mapping[str, int]] | None = None) -> SyncStatus:
    """Everything at once. `live`: model name → its aliases, read from MLflow just now (None: unreachable)."""
    with registry.reading() as session:
        rows = _all_models(session)
        followed = [(r.id, r.name) for r in rows if settings.follows(r.name)]
        aliases: list[AliasState] = []
        for model_id, name in followed:
            aliases.extend(_states(session, settings, model_id, name, None if live is None else live.get(name, {})))
        delivery = mlflow_queries.last_delivery(session)
        poll = mlflow_queries.sync_status(session, POLL)
        unfinished = mlflow_queries.rows_by_status(session, outbound.KIND, ("pending", "sending"))
        failed = mlflow_queries.rows_by_status(session, outbound.KIND, ("failed",))
    last_event = None
    if delivery is not None:
        received = as_utc(delivery.received_at)
        last_event = {"event": delivery.event, "model": delivery.model, "received_at": iso(received),
                      "lag_s": (received - as_utc(delivery.sent_at)).total_seconds() if delivery.sent_at else None,
                      "outcome": delivery.outcome}
    last_poll = None
    if poll is not None:
        last_poll = {"attempt_at": iso(poll.last_attempt_at), "success_at": iso(poll.last_success_at),
                     "error": poll.last_error, "models_checked": poll.models_checked,
                     "age_s": (now - as_utc(poll.last_success_at)).total_seconds() if poll.last_success_at else None}
    failures = tuple({"id": r.id, "model": r.data.get("model"), "environment": r.data.get("environment"),
                      "error": r.last_error} for r in failed)
    return SyncStatus(settings=settings, followed=tuple(name for _, name in followed), aliases=tuple(aliases),
                      live=live is not None, now=now, last_event=last_event, last_poll=last_poll,
                      pending_writes=len(unfinished), failed_writes=failures)


def _all_models(session: Session) -> list[Any]:
    out: list[Any] = []
    while True:
        page, total = queries.models_page(session, offset=len(out), limit=500)
        out.extend(page)
        if not page or len(out) >= total:
            return out


def _states(session: Session, settings: SyncSettings, model_id: int, name: str,
            live: Mapping[str, int] | None) -> list[AliasState]:
    known = mlflow_queries.known_aliases(session, model_id)
    deployments = {d.environment: d for d in queries.deployments_for(session, [model_id])}
    rows = mlflow_queries.newest_rows(session, outbound.destination(model_id), RECENT_ROWS)
    out = []
    for alias, target in settings.targets().items():
        dep = deployments.get(target.environment)
        serving = (dep.canary_version if target.canary else dep.stable_version) if dep is not None else None
        if live is not None:
            mlflow, seen = live.get(alias), True
        else:
            mlflow, seen = (known[alias].version, True) if alias in known else (None, False)
        pending, failed = _outbox_state(rows, target.environment, "canary" if target.canary else "stable",
                                        mlflow if seen else None)
        out.append(AliasState(model=name, alias=alias, environment=target.environment, canary=target.canary,
                              serving=serving, mlflow=mlflow, known=seen, pending=pending, failed=failed))
    return out


def _outbox_state(rows: Sequence[OutboxMessage], environment: str, key: str,
                  known: int | None) -> tuple[str | None, str | None]:
    """The newest row of this environment decides: waiting, failed, or (delivered) nothing to say.
    A waiting row is described with the error of the destination's oldest waiting row: that is
    the one the others wait behind."""
    unfinished = [r for r in rows if r.status in ("pending", "sending")]
    for row in rows:  # newest first
        if row.data.get("environment") != environment:
            continue
        target = row.data.get(key)
        if row.status in ("pending", "sending"):
            if target == known:
                return None, None  # this alias already holds what the waiting row asks
            head = unfinished[-1]
            wants = f"v{target}" if target is not None else "removal"
            queued = f"{len(unfinished)} writes queued" if len(unfinished) > 1 else "queued"
            why = f"; attempt {head.attempts}: {head.last_error}" if head.last_error else ""
            return f"{wants} waiting to be written ({queued}{why})", None
        if row.status == "failed":
            return None, f"{row.last_error} — `modelbot outbox retry {row.id}` after fixing it"
        return None, None
    return None, None
