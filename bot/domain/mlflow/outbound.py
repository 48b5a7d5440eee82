"""Decisions reach MLflow: every pointer move sets or deletes the mapped alias, through the outbox.

A pointer move (promote, rollback, canary start/step/promote/abort, an accepted external
move) writes one outbox row in its own transaction (`pointer_moved`, called by `notices`):
the environment's state after the move. Rows of one model form one destination, delivered in
order and retried with backoff by the worker, so `models:/churn@champion` ends where the last
decision left it, whatever failed in between. A row asks for *state*, not a delta: the
writer reads MLflow's aliases first and changes only what differs, so a retried or repeated
row writes nothing twice; each alias it does change gets one audit row, keyed by the outbox
row, so a worker that dies between MLflow's answer and its bookkeeping cannot audit twice.

Which models are followed and which alias an environment writes are decided at delivery,
from `[mlflow]`: a row for a model MLflow does not follow is finished as skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.domain import audit
from bot.domain.entities import AuditEntry, EnvironmentState
from bot.domain.mlflow.settings import SECTION, SyncSettings
from bot.domain.mlflow.source import MlflowNotFound, MlflowRegistry
from bot.domain.policy import Policy
from bot.domain.registry import Registry
from storage.queries import mlflow as mlflow_queries
from storage.queries import outbox
from storage.queries import registry as queries

KIND = "mlflow_alias"
# one tracking server behind every model's alias writes: its failures pause them all, announced once
CIRCUIT = "mlflow:tracking-server"
WRITER_ACTOR = "modelbot"
SET_ACTION = "mlflow_alias_set"
DELETE_ACTION = "mlflow_alias_deleted"


def destination(model_id: int) -> str:
    """Alias writes of one model go out in the order they were decided, apart from its Slack messages."""
    return f"mlflow-alias:{model_id}"


def pointer_moved(
    session: Session, policy: Policy, state: EnvironmentState, audit: AuditEntry, *, now: datetime, model_id: int,
) -> None:
    """Queue the alias write a pointer move causes, in the move's transaction (when `[mlflow]` is set)."""
    if SECTION not in policy.sections:
        return
    enqueue_state(session, model=state.model, model_id=model_id, environment=state.environment, stable=state.stable,
                  canary=state.canary, revision=state.revision, now=now, cause=f"{audit.action} by {audit.actor}")


def enqueue_state(session: Session, *, model: str, model_id: int, environment: str, stable: int | None,
                  canary: int | None, revision: int, now: datetime, cause: str) -> None:
    """Ask for the aliases of `environment` to hold these versions (None: no alias)."""
    outbox.enqueue(session, now=now, topic=destination(model_id), destination=f"mlflow:{model_id}", circuit=CIRCUIT,
                   kind=KIND, template=KIND, data={
        "model": model, "model_id": model_id, "environment": environment, "stable": stable, "canary": canary,
        "revision": revision, "cause": cause,
    })


@dataclass(frozen=True)
class AliasWrite:
    alias: str
    environment: str
    version: int | None  # None: delete the alias


@dataclass(frozen=True)
class AliasResult:
    """What one row did in MLflow: `written` changed it, `unchanged` already held; `skipped` says why not."""

    written: tuple[AliasWrite, ...] = ()
    unchanged: tuple[AliasWrite, ...] = ()
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.skipped:
            return {"skipped": self.skipped}
        return {"written": {w.alias: w.version for w in self.written},
                "unchanged": {w.alias: w.version for w in self.unchanged}}


class NotInMlflow(Exception):
    """The model or version the alias should point at does not exist in MLflow: a person must act."""


def planned_writes(settings: SyncSettings, data: Mapping[str, Any]) -> list[AliasWrite] | str:
    """The aliases one row asks for, or why it asks for none."""
    model, environment = str(data.get("model") or ""), str(data.get("environment") or "")
    if not settings.follows(model):
        return f"{model} is not among the models MLflow sync follows ({settings.describe_models()})"
    alias = settings.alias_of(environment)
    if alias is None:
        return f"no MLflow alias is mapped to {environment}"
    writes = [AliasWrite(alias, environment, _int(data.get("stable")))]
    canary = settings.canary_alias_of(environment)
    if canary is not None:
        writes.append(AliasWrite(canary, environment, _int(data.get("canary"))))
    return writes


@dataclass
class AliasWriter:
    """Applies alias rows to MLflow; called by the delivery worker, outside any transaction."""

    registry: Registry
    settings: SyncSettings
    mlflow: MlflowRegistry
    clock: Callable[[], datetime] | None = field(default=None)

    def apply(self, row_id: int, data: Mapping[str, Any], *, retried: bool = False) -> AliasResult:
        """Raises MlflowError (the worker decides: retry or fail) or NotInMlflow (fail).

        `retried`: an earlier attempt of this row may have changed MLflow and died before its
        bookkeeping; an alias that already holds what the row asks, but not what modelbot last
        knew, is then audited as this row's write."""
        planned = planned_writes(self.settings, data)
        if isinstance(planned, str):
            return AliasResult(skipped=planned)
        name = str(data["model"])
        current = self.mlflow.get_registered_model(name)
        if current is None:
            raise NotInMlflow(f"{name} is not a registered model in MLflow, so alias "
                              f"{planned[0].alias} cannot be set: register it there (or leave it out of "
                              "[mlflow] models).")
        written: list[AliasWrite] = []
        unchanged: list[AliasWrite] = []
        for write in planned:
            if current.aliases.get(write.alias) == write.version:
                unchanged.append(write)
                continue
            if write.version is None:
                self.mlflow.delete_alias(name, write.alias)
            else:
                try:
                    self.mlflow.set_alias(name, write.alias, write.version)
                except MlflowNotFound:
                    raise NotInMlflow(f"{name} v{write.version} does not exist in MLflow, so alias {write.alias} "
                                      "cannot point at it: modelbot registered it, not MLflow.") from None
            written.append(write)
        self._record(row_id, int(data["model_id"]), planned, written, data, retried=retried)
        return AliasResult(written=tuple(written), unchanged=tuple(unchanged))

    def _record(self, row_id: int, model_id: int, planned: list[AliasWrite], written: list[AliasWrite],
                data: Mapping[str, Any], *, retried: bool) -> None:
        now = (self.clock or self.registry.clock)()
        with self.registry.writing() as session:
            if queries.models_by_ids(session, [model_id]) == {}:
                return  # the model was deleted meanwhile: nothing to remember
            known = mlflow_queries.known_aliases(session, model_id)
            for index, write in enumerate(planned):
                before = known[write.alias].version if write.alias in known else None
                mlflow_queries.remember_alias(session, model_id=model_id, alias=write.alias, version=write.version,
                                              now=now)
                ours = write in written or (retried and write.alias in known and before != write.version)
                request_id = f"outbox:{row_id}:{index}"
                if not ours or mlflow_queries.audit_request_exists(session, model_id, request_id):
                    continue
                target = f"v{write.version}" if write.version is not None else "deleted"
                audit.record(
                    session, at=now, actor=WRITER_ACTOR, model_id=model_id, environment=write.environment,
                    action=SET_ACTION if write.version is not None else DELETE_ACTION, to_version=write.version,
                    reason=f"MLflow alias {write.alias} → {target} ({data.get('cause') or 'pointer move'})",
                    request_id=request_id,
                )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
