"""MLflow's changes reach modelbot: a webhook delivery and the poll run the same reconciliation.

A webhook names what changed (a version was created, a tag set, an alias moved); the poll
walks every followed model. Either way modelbot reads MLflow *first*, outside any
transaction, then writes one model's changes in one transaction, so re-delivery, a webhook
racing the poll, or two deliveries at once change nothing twice:

* **versions**: a READY version modelbot does not have is registered with MLflow's number,
  its run's metrics and params, source and run id (the import's own planning and writing
  functions; provenance `mlflow-sync`), and a "new version" card goes to
  `new_version_channel` in the same transaction. Tags and descriptions of versions that came
  from MLflow follow MLflow. A number modelbot already gave to a version of its own is a
  conflict: reported, never overwritten.
* **aliases**: `mlflow_aliases` holds what modelbot last knew each mapped alias to hold (its
  own writes record there too). An alias that now holds something else was moved outside
  modelbot, and `external_moves` decides (`bot.domain.mlflow.external`): `report` (notice +
  audit row), `accept` (the pointer follows through the registry's own move, audited),
  `revert` (the alias is put back through the outbox, with a notice). While modelbot's own alias writes for the model
  are still in the outbox, aliases are not judged: MLflow is about to change under them.
* **deliveries**: the delivery id is recorded in the transaction of its effect, so a delivery
  MLflow repeats (its HTTP retries reuse the id) is answered "duplicate" and changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.domain import names, notices
from bot.domain.errors import InvalidInput
from bot.domain.mlflow import external, outbound
from bot.domain.mlflow.settings import AliasTarget, SyncSettings
from bot.domain.mlflow.source import MlflowError, MlflowModel, MlflowRegistry, MlflowVersion
from bot.domain.mlflow_import import (
    FROM_MLFLOW,
    READY,
    SYNC_ACTOR,
    ModelResult,
    PlannedVersion,
    clean_text,
    insert_version,
    plan_version,
    skip_reason,
    update_version,
)
from bot.domain.policy import Policy
from bot.domain.registry import Registry
from storage.models import RegisteredModel
from storage.queries import mlflow as mlflow_queries
from storage.queries import outbox
from storage.queries import registry as queries

log = logging.getLogger("modelbot.mlflow")

EVENTS = ("registered_model.created", "model_version.created", "model_version_tag.set", "model_version_tag.deleted",
          "model_version_alias.created", "model_version_alias.deleted")
VERSION_EVENTS = ("model_version.created", "model_version_tag.set", "model_version_tag.deleted")
ALIAS_EVENTS = ("model_version_alias.created", "model_version_alias.deleted")
NEW_VERSION_TEMPLATE = "mlflow_new_version"
POLL = "poll"
# MLflow repeats a delivery within seconds (three HTTP retries); a week of ids is plenty
KEEP_DELIVERIES = timedelta(days=7)


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery, already verified: its id, `entity.action`, payload `data`, signing time."""

    delivery_id: str
    event: str
    data: Mapping[str, Any]
    sent_at: datetime | None = None


@dataclass
class SyncOutcome:
    """What one delivery or one model's reconciliation did."""

    status: str = "applied"  # applied | duplicate | ignored
    model: str | None = None
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.created:
            parts.append("registered " + ", ".join(f"v{n}" for n in self.created))
        if self.updated:
            parts.append("updated " + ", ".join(f"v{n}" for n in self.updated))
        parts.extend(self.external)
        parts.extend(self.notes)
        return "; ".join(parts) or "nothing to change"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "model": self.model, "created": list(self.created),
                "updated": list(self.updated), "external": list(self.external), "notes": list(self.notes)}


@dataclass
class PollReport:
    models: int = 0
    outcomes: list[SyncOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"models": self.models, "outcomes": [o.to_dict() for o in self.outcomes if o.summary() !=
                                                    "nothing to change"], "errors": list(self.errors)}


@dataclass(frozen=True)
class _AliasChange:
    alias: str
    target: AliasTarget
    current: int | None  # what MLflow holds now
    pointer: int | None  # what modelbot serves
    external: bool  # moved outside modelbot (not merely seen for the first time, nor back in agreement)


class _Duplicate(Exception):
    """Raised inside a transaction whose delivery id another request recorded first: roll back."""


class MlflowSync:
    """Follows MLflow for modelbot. Holds no state; every method may run in any thread or process."""

    def __init__(self, registry: Registry, policy: Policy, settings: SyncSettings, mlflow: MlflowRegistry, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.registry = registry
        self.policy = policy
        self.settings = settings
        self.mlflow = mlflow
        self.clock = clock or registry.clock

    # ---- webhook ------------------------------------------------------------------------

    def receive(self, delivery: Delivery) -> SyncOutcome:
        """Apply one verified delivery. MlflowError propagates (the sender retries; the poll catches up)."""
        with self.registry.reading() as session:
            if mlflow_queries.delivery_seen(session, delivery.delivery_id):
                return SyncOutcome(status="duplicate")
        raw_name = delivery.data.get("name")
        name = raw_name if isinstance(raw_name, str) else None
        if delivery.event not in EVENTS or name is None:
            return self._note(delivery, name, f"ignored: modelbot does not follow {delivery.event} events")
        problem = _problem(name)
        if problem is not None:
            return self._note(delivery, name, f"ignored: {problem}")
        if not self.settings.follows(name):
            return self._note(delivery, name, f"ignored: {name} is not among the followed models "
                                              f"({self.settings.describe_models()})")
        if delivery.event == "registered_model.created":
            return self._note(delivery, name, "noted: the model comes into modelbot with its first version")
        if delivery.event in VERSION_EVENTS:
            try:
                number = int(delivery.data.get("version"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return self._note(delivery, name, "ignored: the delivery names no version number")
            return self._versions(name, [number], delivery=delivery)
        return self._aliases(name, delivery=delivery)

    def _note(self, delivery: Delivery, name: str | None, text: str) -> SyncOutcome:
        """A delivery with nothing to change is recorded too: a repeat is a duplicate, and status shows it."""
        outcome = SyncOutcome(status="ignored" if text.startswith("ignored") else "applied", model=name, notes=[text])
        try:
            with self.registry.writing() as session:
                self._record(session, delivery, name, outcome)
        except _Duplicate:
            return SyncOutcome(status="duplicate", model=name)
        return outcome

    def _record(self, session: Session, delivery: Delivery | None, name: str | None, outcome: SyncOutcome) -> None:
        if delivery is None:
            return
        recorded = mlflow_queries.record_delivery(
            session, delivery_id=delivery.delivery_id, event=names.preview(delivery.event, 64),
            model=names.preview(name, 256) if name is not None else None, sent_at=delivery.sent_at,
            received_at=self.clock(), outcome=names.preview(outcome.summary(), 500))
        if not recorded:
            raise _Duplicate

    # ---- poll ---------------------------------------------------------------------------

    def poll(self) -> PollReport:
        """Reconcile every followed model; one model failing does not stop the others."""
        report = PollReport()
        now = self.clock()
        error: str | None = None
        try:
            models = [m for m in self.mlflow.search_registered_models()
                      if self.settings.follows(m.name) and skip_reason(m) is None]
            for model in models:
                try:
                    report.outcomes.append(self.reconcile(model))
                except MlflowError as exc:
                    report.errors.append(f"{model.name}: {exc}")
                report.models += 1
        except MlflowError as exc:
            error = str(exc)
            report.errors.append(error)
        if report.errors and error is None:
            error = f"{len(report.errors)} model(s) failed, first: {report.errors[0]}"
        with self.registry.writing() as session:
            mlflow_queries.record_sync(session, name=POLL, now=now, error=error, models_checked=report.models)
            mlflow_queries.forget_deliveries(session, now - KEEP_DELIVERIES)
        return report

    def reconcile(self, model: MlflowModel) -> SyncOutcome:
        """One model: versions modelbot lacks or holds differently, then its aliases."""
        versions = {v.version: v for v in self.mlflow.search_model_versions(model.name)}
        with self.registry.reading() as session:
            row = queries.model_by_key(session, model.name)
            have = mlflow_queries.all_versions(session, row.id) if row is not None else {}  # type: ignore[arg-type]
            ours = mlflow_queries.versions_registered_by(session, row.id, FROM_MLFLOW) if row is not None else set()  # type: ignore[arg-type]
        wanted: list[int] = []
        conflicts: list[int] = []
        for number, version in sorted(versions.items()):
            if version.status.upper() != READY:
                continue  # comes in once READY
            if number not in have:
                wanted.append(number)
            elif number not in ours:
                conflicts.append(number)  # reported when its webhook arrives; the poll stays quiet
            elif dataclasses.replace(plan_version(version, None, ModelResult(name=model.name)),
                                     with_run=False).differences(have[number]):
                wanted.append(number)
        outcome = self._versions(model.name, wanted, fetched=versions, mlflow_model=model) if wanted else (
            SyncOutcome(model=model.name))
        if conflicts:
            outcome.notes.append("conflict: " + ", ".join(f"v{n}" for n in conflicts) + " were registered in "
                                 "modelbot, not in MLflow; MLflow's versions of those numbers are not synced")
        aliases = self._aliases(model.name, mlflow_model=model)
        outcome.external.extend(aliases.external)
        outcome.notes.extend(aliases.notes)
        return outcome

    # ---- versions -----------------------------------------------------------------------

    def _versions(self, name: str, numbers: list[int], *, delivery: Delivery | None = None,
                  fetched: Mapping[int, MlflowVersion] | None = None,
                  mlflow_model: MlflowModel | None = None) -> SyncOutcome:
        outcome = SyncOutcome(model=name)
        result = ModelResult(name=name)
        with self.registry.reading() as session:
            row = queries.model_by_key(session, name)
            have = mlflow_queries.version_numbers(session, row.id) if row is not None else set()  # type: ignore[arg-type]
        plans: list[PlannedVersion] = []
        for number in numbers:
            version = (fetched or {}).get(number) or self.mlflow.get_model_version(name, number)
            if version is None:
                outcome.notes.append(f"v{number} no longer exists in MLflow")
                continue
            if version.status.upper() != READY:
                outcome.notes.append(f"v{number} is {version.status} in MLflow; it comes in once it is READY")
                continue
            run = None
            if number not in have and version.run_id:
                run = self.mlflow.get_run(version.run_id)
            plan = plan_version(version, run, result)
            plans.append(plan if number not in have else dataclasses.replace(plan, with_run=False))
        if row is None and plans and mlflow_model is None:
            mlflow_model = self.mlflow.get_registered_model(name)
        outcome.notes.extend(result.warnings)
        if not plans and delivery is None:
            return outcome
        try:
            with self.registry.writing() as session:
                self._write_versions(session, name, plans, mlflow_model, outcome)
                self._record(session, delivery, name, outcome)
        except _Duplicate:
            return SyncOutcome(status="duplicate", model=name)
        for note in outcome.notes:
            log.info("mlflow %s: %s", name, note)
        return outcome

    def _write_versions(self, session: Session, name: str, plans: list[PlannedVersion],
                        mlflow_model: MlflowModel | None, outcome: SyncOutcome) -> None:
        if not plans:
            return
        now = self.clock()
        model = queries.model_by_key(session, name)
        if model is None:
            description = clean_text(mlflow_model.description if mlflow_model else None, f"{name}: model description",
                                     ModelResult(name=name))
            mlflow_queries.insert_model_if_absent(
                session, name=name, created_at=(mlflow_model.created_at if mlflow_model else None) or now,
                owner=SYNC_ACTOR, description=description)
            model = queries.model_by_key(session, name)
            assert model is not None
        if model.name != name:
            outcome.notes.append(f"conflict: modelbot already has '{model.name}' and names are unique regardless of "
                                 "case; nothing synced")
            return
        model = mlflow_queries.lock_model(session, model.id)  # type: ignore[arg-type]
        existing = mlflow_queries.all_versions(session, model.id)  # type: ignore[arg-type]
        from_mlflow = mlflow_queries.versions_registered_by(session, model.id, FROM_MLFLOW)  # type: ignore[arg-type]
        for plan in plans:
            row = existing.get(plan.version)
            if row is None:
                insert_version(session, model.id, plan, now=now, actor=SYNC_ACTOR,  # type: ignore[arg-type]
                               reason=f"synced from MLflow {name} v{plan.version}")
                outcome.created.append(plan.version)
            elif plan.version not in from_mlflow:
                outcome.notes.append(f"conflict: {name} v{plan.version} was registered in modelbot, not in MLflow, so "
                                     "MLflow's version of that number is not synced (register versions of a "
                                     "followed model in MLflow only)")
            elif changed := plan.differences(row):
                update_version(session, row, plan, changed, now=now, actor=SYNC_ACTOR)
                outcome.updated.append(plan.version)
        if not outcome.created:
            return
        session.flush()
        mlflow_queries.raise_latest_version(session, model.id, max(outcome.created))  # type: ignore[arg-type]
        channel = self.settings.new_version_channel
        if channel is None:
            outcome.notes.append("no new_version_channel in [mlflow]: no card posted")
            return
        for plan in plans:
            if plan.version in outcome.created:
                outbox.enqueue(session, now=now, topic=notices.topic(model.id), kind="post",  # type: ignore[arg-type]
                               template=NEW_VERSION_TEMPLATE, data=self._card(session, model, plan), channel=channel)

    def _card(self, session: Session, model: RegisteredModel, plan: PlannedVersion) -> dict[str, Any]:
        """The new version's facts and, as the baseline, what the last environment (production) serves."""
        environments = list(self.registry.environments)
        baseline_env = environments[-1]
        dep = queries.deployment(session, model.id, baseline_env)  # type: ignore[arg-type]
        base = queries.version(session, model.id, dep.stable_version) if dep and dep.stable_version else None  # type: ignore[arg-type]
        return {
            "model": model.name, "version": plan.version, "metrics": dict(plan.metrics), "params": dict(plan.params),
            "tags": dict(plan.tags), "run_id": plan.run_id, "source": plan.source, "artifact_uri": plan.artifact_uri,
            "created_by": plan.created_by if plan.created_by not in FROM_MLFLOW else None,
            "description": plan.description, "environments": environments,
            "baseline": {"environment": baseline_env, "version": base.version if base else None,
                         "metrics": dict(base.metrics) if base else {}},
            "directions": dict(self.policy.metric_directions), "tracking_uri": self.settings.tracking_uri,
        }

    # ---- aliases ------------------------------------------------------------------------

    def _aliases(self, name: str, *, delivery: Delivery | None = None,
                 mlflow_model: MlflowModel | None = None) -> SyncOutcome:
        outcome = SyncOutcome(model=name)
        changes: list[_AliasChange] = []
        with self.registry.reading() as session:
            row = queries.model_by_key(session, name)
            in_flight = row is not None and bool(mlflow_queries.unfinished_rows(session, outbound.destination(row.id)))  # type: ignore[arg-type]
            have = mlflow_queries.version_numbers(session, row.id) if row is not None else set()  # type: ignore[arg-type]
        if row is None or in_flight:
            outcome.notes.append("aliases not compared: " + ("the model is not in modelbot yet" if row is None else
                                                             "modelbot's own alias writes are still being sent"))
        else:
            mlflow_model = mlflow_model or self.mlflow.get_registered_model(name)
            if mlflow_model is None:
                outcome.notes.append("aliases not compared: the model is gone from MLflow")
            else:
                # an alias may point at a version whose own webhook has not arrived yet: bring it in first
                missing = sorted({v for a, v in mlflow_model.aliases.items()
                                  if a in self.settings.targets() and v not in have})
                if missing:
                    pulled = self._versions(name, missing, mlflow_model=mlflow_model)
                    outcome.created.extend(pulled.created)
                    outcome.notes.extend(pulled.notes)
                with self.registry.reading() as session:
                    changes = self._changes(session, row.id, mlflow_model)  # type: ignore[arg-type]
        if not changes and delivery is None:
            return outcome  # the poll's usual case: nothing to write, so no write lock taken
        try:
            with self.registry.writing() as session:
                if changes:
                    self._apply_changes(session, row.id, mlflow_model, outcome)  # type: ignore[arg-type,union-attr]
                self._record(session, delivery, name, outcome)
        except _Duplicate:
            return SyncOutcome(status="duplicate", model=name)
        return outcome

    def _changes(self, session: Session, model_id: int, mlflow_model: MlflowModel) -> list[_AliasChange]:
        """Aliases whose MLflow value is not what modelbot last knew (first sight: what it serves)."""
        known = mlflow_queries.known_aliases(session, model_id)
        deployments = {d.environment: d for d in queries.deployments_for(session, [model_id])}
        out = []
        for alias, target in self.settings.targets().items():
            dep = deployments.get(target.environment)
            pointer = (dep.canary_version if target.canary else dep.stable_version) if dep is not None else None
            current = mlflow_model.aliases.get(alias)
            expected = known[alias].version if alias in known else pointer
            if current != expected or alias not in known:
                out.append(_AliasChange(alias, target, current, pointer, external=current not in (expected, pointer)))
        return out

    def _apply_changes(self, session: Session, model_id: int, mlflow_model: MlflowModel, outcome: SyncOutcome) -> None:
        if mlflow_queries.unfinished_rows(session, outbound.destination(model_id)):
            outcome.notes.append("aliases not compared: modelbot's own alias writes are still being sent")
            return
        model = queries.models_by_ids(session, [model_id])[model_id]
        now = self.clock()
        for change in self._changes(session, model_id, mlflow_model):
            mlflow_queries.remember_alias(session, model_id=model_id, alias=change.alias, version=change.current,
                                          now=now)
            if change.external:
                outcome.external.append(external.handle(
                    session, self.registry, self.policy, self.settings, model, change.alias, change.target,
                    current=change.current, pointer=change.pointer, now=now))


def _problem(name: str) -> str | None:
    try:
        names.model_name(name)
    except InvalidInput as exc:
        return str(exc)
    return None
