"""Bring an MLflow model registry into modelbot, as often as you like.

Teams try modelbot only if their MLflow models come along, and they will run the import
again and again while both systems live side by side; so the import is **idempotent**: a
second run over an unchanged MLflow writes nothing at all (no rows, no audit entries, no
messages) and reports 0 created / 0 updated.

Mapping (one MLflow model version → one modelbot version):

* number: MLflow version N becomes modelbot version N of the same model. Both number versions
  per model upwards, so keeping N keeps every link people already share ("churn v7"). A model
  that already exists in modelbot with versions that did not come from MLflow is **refused**
  (with a message) rather than renumbered.
* artifact URI = the version's `source` as MLflow reports it (`models:/…`, `runs:/…/model`,
  `s3://…`): that is the URI an MLflow user loads the model from. `source` is kept as well;
  `run_link`/`storage_location` are not used (often empty, or a UI link rather than a
  location). A version without a source gets `models:/NAME/N`.
* `run_id`, `description`, version tags → the same fields; the run's latest metric values →
  metrics; the run's params → params; `creation_timestamp` → created_at; `user_id` →
  created_by (`mlflow-import` when MLflow recorded no user).
* status `READY` imports; `PENDING_REGISTRATION`/`FAILED_REGISTRATION` are skipped with a note.
* names or keys modelbot cannot hold (model names beyond letters/digits/._-, metric keys with
  spaces, multi-line params…) are skipped with a warning that names them; the version stays.
* versions deleted in MLflow are left alone in modelbot and reported.

Provenance: every imported version gets a `register` audit row by actor `mlflow-import`; those
rows (which the database never lets anyone change) are how a later run tells "came from
MLflow" from "registered in modelbot".

Aliases → environments: see `DEFAULT_ALIAS_MAP` and `_pointer_targets`. An alias that maps to
an environment moves that environment's stable pointer through the registry's own pointer-move
path (`Registry._move`, the one approvals use): one audit row per real move with actor
`mlflow-import` and reason `imported from MLflow alias champion`, and the usual webhook /
announcement outbox rows when a policy is given. The import never clears a pointer.

Transactions: MLflow is read for one model (versions, runs) before any transaction opens; then
that model is written in one write transaction. A failure part-way leaves whole models
imported and the rest untouched, and re-running continues where it stopped.

This module does no HTTP: it calls an `MlflowSource` (`bot.domain.mlflow.source`; the REST
client in `bot.sources.mlflow` implements it) that returns plain dataclasses. The live sync
(`bot.domain.mlflow.inbound`) plans and writes versions with the same functions, so a version
synced live and one imported later are the same row with the same provenance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session

from bot.domain import audit, names, notices
from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, InvalidInput
from bot.domain.mlflow.source import MlflowError, MlflowModel, MlflowRun, MlflowSource, MlflowVersion
from bot.domain.policy import Policy
from bot.domain.registry import Registry
from storage.models import ModelVersion
from storage.queries import mlflow as mlflow_queries
from storage.queries import registry as queries

IMPORT_ACTOR = "mlflow-import"
SYNC_ACTOR = "mlflow-sync"
# `register` audit rows by these actors mark a version as one that came from MLflow
FROM_MLFLOW = (IMPORT_ACTOR, SYNC_ACTOR)
# Used when no --alias-map is given; entries whose environment the policy does not define are
# dropped. Given --alias-map options *replace* this map (so a team whose "prod" alias means
# something else can leave it out). Aliases are matched regardless of case.
DEFAULT_ALIAS_MAP: Mapping[str, str] = {
    "production": "production",
    "staging": "staging",
    "prod": "production",
    "champion": "production",
    "challenger": "staging",
}
# Legacy stages (deprecated in MLflow 2.9) count only for an environment no alias maps to.
STAGE_ENVIRONMENTS: Mapping[str, str] = {"Production": "production", "Staging": "staging"}
READY = "READY"
PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow 3 stores prompts as registered models


# ---- options --------------------------------------------------------------------------------


def parse_since(raw: str) -> datetime:
    """`--since`: an ISO date (midnight UTC) or an ISO date-time (naive means UTC)."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--since '{names.preview(raw)}' is not a date: write it as YYYY-MM-DD (UTC), for example 2026-01-31."
        ) from None
    return as_utc(moment)


def resolve_alias_map(pairs: Sequence[str] | None, environments: tuple[str, ...]) -> dict[str, str]:
    """The alias → environment map in force: the defaults, or exactly the `--alias-map` pairs."""
    if not pairs:
        return {alias: env for alias, env in DEFAULT_ALIAS_MAP.items() if env in environments}
    out: dict[str, str] = {}
    for raw in pairs:
        alias, sep, env = raw.partition("=")
        alias = alias.strip().lower()
        if not sep or not alias or not env.strip():
            raise InvalidInput(
                f"--alias-map '{names.preview(raw)}' is not ALIAS=ENV: write for example --alias-map champion=production."
            )
        try:
            env = names.environment(env, environments)
        except InvalidInput as exc:
            raise InvalidInput(f"--alias-map {names.preview(alias)}: {exc}") from None
        if out.get(alias, env) != env:
            raise InvalidInput(f"--alias-map {names.preview(alias)} is given twice with different environments.")
        out[alias] = env
    return out


@dataclass(frozen=True)
class ImportOptions:
    """What to import. `alias_map` must come from `resolve_alias_map` (it is not re-checked)."""

    models: tuple[str, ...] = ()
    since: datetime | None = None
    alias_map: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False


# ---- report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointerChange:
    environment: str
    from_version: int | None
    to_version: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "from_version": self.from_version,
                "to_version": self.to_version, "reason": self.reason}


@dataclass
class ModelResult:
    """What happened to one MLflow model. `outcome`: created, updated, unchanged, skipped or refused."""

    name: str
    outcome: str = "unchanged"
    created: list[int] = field(default_factory=list)
    updated: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    before_since: list[int] = field(default_factory=list)
    deleted_in_mlflow: list[int] = field(default_factory=list)
    moves: list[PointerChange] = field(default_factory=list)
    model_fields_updated: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "versions": {
                "created": list(self.created),
                "updated": [{"version": v, "fields": list(f)} for v, f in self.updated],
                "unchanged": list(self.unchanged),
                "skipped": list(self.skipped),
                "before_since": list(self.before_since),
            },
            "model_fields_updated": list(self.model_fields_updated),
            "deleted_in_mlflow": list(self.deleted_in_mlflow),
            "pointer_moves": [m.to_dict() for m in self.moves],
            "warnings": list(self.warnings),
        }


@dataclass
class ImportReport:
    tracking_uri: str
    dry_run: bool
    models: list[ModelResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # not tied to one model (e.g. --model not found)

    def totals(self) -> dict[str, int]:
        def count(outcome: str) -> int:
            return sum(1 for m in self.models if m.outcome == outcome)

        return {
            "models_created": count("created"),
            "models_updated": count("updated"),
            "models_unchanged": count("unchanged"),
            "models_skipped": count("skipped") + count("refused"),
            "versions_created": sum(len(m.created) for m in self.models),
            "versions_updated": sum(len(m.updated) for m in self.models),
            "versions_unchanged": sum(len(m.unchanged) for m in self.models),
            "versions_skipped": sum(len(m.skipped) for m in self.models),
            "pointer_moves": sum(len(m.moves) for m in self.models),
            "warnings": len(self.all_warnings()),
        }

    def all_warnings(self) -> list[str]:
        return [*self.warnings, *(w for m in self.models for w in m.warnings)]

    def to_dict(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "dry_run": self.dry_run, "totals": self.totals(),
                "models": [m.to_dict() for m in self.models], "warnings": self.all_warnings()}


# ---- the import -----------------------------------------------------------------------------


class _Refused(Conflict):
    """Raised inside a model's transaction so that nothing of that model is written."""


@dataclass(frozen=True)
class PlannedVersion:
    """One version's modelbot fields, validated before the transaction opens. Without the run
    (`with_run=False`: the live sync updating tags) metrics and params are left as they are."""

    version: int
    artifact_uri: str
    run_id: str | None
    source: str | None
    description: str | None
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    created_by: str
    created_at: datetime | None
    with_run: bool = True

    def differences(self, row: ModelVersion) -> tuple[str, ...]:
        changed = [f for f in ("artifact_uri", "run_id", "source", "description", "created_by")
                   if getattr(row, f) != getattr(self, f)]
        mappings = ("metrics", "params", "tags") if self.with_run else ("tags",)
        changed += [f for f in mappings if dict(getattr(row, f) or {}) != getattr(self, f)]
        if self.created_at is not None and as_utc(row.created_at) != self.created_at:
            changed.append("created_at")
        return tuple(changed)

    def apply(self, row: ModelVersion) -> None:
        for f in ("artifact_uri", "run_id", "source", "description", "created_by"):
            setattr(row, f, getattr(self, f))
        if self.with_run:
            row.metrics, row.params = dict(self.metrics), dict(self.params)
        row.tags = dict(self.tags)
        if self.created_at is not None:
            row.created_at = self.created_at


def insert_version(session: Session, model_id: int, plan: PlannedVersion, *, now: datetime, actor: str,
                   reason: str) -> None:
    """A version that came from MLflow, with the `register` audit row that records where it came from.
    The caller raises the model's `latest_version` afterwards (`raise_latest_version`)."""
    session.add(ModelVersion(
        model_id=model_id, version=plan.version, artifact_uri=plan.artifact_uri, run_id=plan.run_id,
        source=plan.source, description=plan.description, metrics=dict(plan.metrics), params=dict(plan.params),
        tags=dict(plan.tags), created_by=plan.created_by, created_at=plan.created_at or now,
    ))
    audit.record(session, at=now, actor=actor, model_id=model_id, action="register", to_version=plan.version,
                 reason=reason)


def update_version(session: Session, row: ModelVersion, plan: PlannedVersion, changed: tuple[str, ...], *,
                   now: datetime, actor: str) -> None:
    plan.apply(row)
    session.add(row)
    audit.record(session, at=now, actor=actor, model_id=row.model_id, action="update", to_version=plan.version,
                 reason=f"updated from MLflow: {', '.join(changed)}")


def skip_reason(model: MlflowModel) -> str | None:
    """Why a registered model cannot come into modelbot at all (a name modelbot refuses, a prompt)."""
    problem = _problem(names.model_name, model.name)
    if problem is not None:
        return f"model '{names.preview(model.name)}' skipped: {problem}"
    if model.tags.get(PROMPT_TAG, "").lower() == "true":
        return f"{model.name} skipped: it is an MLflow prompt, not a model."
    return None


class MlflowImporter:
    """Runs one import. `policy` (optional) makes pointer moves send the usual webhooks/announcements."""

    def __init__(self, registry: Registry, source: MlflowSource, *, policy: Policy | None = None) -> None:
        self.registry = registry
        self.source = source
        self.policy = policy

    def run(self, options: ImportOptions, *, tracking_uri: str = "") -> ImportReport:
        report = ImportReport(tracking_uri=tracking_uri, dry_run=options.dry_run)
        done = 0
        try:
            for model in self._models(options, report):
                report.models.append(self._one(model, options))
                done += 1
        except MlflowError as exc:
            if done and not options.dry_run:
                raise type(exc)(f"{exc} ({done} model(s) were imported before this; the import is idempotent, "
                                "so running it again continues where it stopped.)") from exc
            raise
        return report

    def _models(self, options: ImportOptions, report: ImportReport) -> Iterator[MlflowModel]:
        if not options.models:
            yield from self.source.search_registered_models()
            return
        for name in options.models:
            model = self.source.get_registered_model(name)
            if model is None:
                report.warnings.append(f"{name}: there is no registered model by that name in MLflow.")
            else:
                yield model

    def _one(self, mlflow_model: MlflowModel, options: ImportOptions) -> ModelResult:
        name = mlflow_model.name
        result = ModelResult(name=name)
        skipped = skip_reason(mlflow_model)
        if skipped is not None:
            result.outcome = "skipped"
            result.warn(skipped)
            return result
        versions = self.source.search_model_versions(name)
        selected: list[MlflowVersion] = []
        why_missing: dict[int, str] = {}
        for v in versions:
            if options.since is not None and (v.created_at is None or v.created_at < options.since):
                result.before_since.append(v.version)
                why_missing[v.version] = f"created before --since {iso(options.since)}"
            elif v.status.upper() != READY:
                result.skipped.append(v.version)
                why_missing[v.version] = f"status {v.status}"
                result.warn(f"{name} v{v.version} skipped: its MLflow status is {v.status}"
                            + (f" ({names.preview(v.status_message, 80)})" if v.status_message else "") + ".")
            else:
                selected.append(v)
        runs: dict[str, MlflowRun | None] = {}
        for run_id in dict.fromkeys(v.run_id for v in selected if v.run_id):
            runs[run_id] = self.source.get_run(run_id)
            if runs[run_id] is None:
                result.warn(f"{name}: run {names.preview(run_id)} no longer exists in MLflow; its versions are "
                            "imported without metrics and params.")
        planned = [plan_version(v, runs.get(v.run_id) if v.run_id else None, result) for v in selected]
        targets = _pointer_targets(mlflow_model, versions, options.alias_map, self.registry.environments, result)
        description = clean_text(mlflow_model.description, f"{name}: model description", result)
        numbers = {v.version for v in versions}
        transaction = self.registry.reading if options.dry_run else self.registry.writing
        try:
            with transaction() as session:
                self._apply(session, mlflow_model, description, planned, targets, numbers, why_missing, result,
                            write=not options.dry_run)
        except _Refused as exc:
            return ModelResult(name=name, outcome="refused", warnings=[*result.warnings, str(exc)])
        return result

    def _apply(
        self,
        session: Session,
        mlflow_model: MlflowModel,
        description: str | None,
        planned: list[PlannedVersion],
        targets: dict[str, tuple[int, str]],
        mlflow_numbers: set[int],
        why_missing: dict[int, str],
        result: ModelResult,
        *,
        write: bool,
    ) -> None:
        name = mlflow_model.name
        now = self.registry.clock()
        model = queries.model_by_key(session, name)
        inserted = False
        if model is None:
            if not planned:
                result.outcome = "skipped"
                result.warn(f"{name}: nothing to import (no READY versions"
                            + (" created at/after --since" if result.before_since else "") + ").")
                return
            if write:
                inserted = mlflow_queries.insert_model_if_absent(
                    session, name=name, created_at=mlflow_model.created_at or now, owner=IMPORT_ACTOR,
                    description=description)
                model = queries.model_by_key(session, name)
            if inserted or not write:
                result.outcome = "created"
        existing: dict[int, ModelVersion] = {}
        imported: set[int] = set()
        if model is not None:
            if model.name != name:
                raise _Refused(
                    f"{name} refused: modelbot already has '{model.name}' and model names are unique regardless "
                    "of case; rename one of them to import it."
                )
            # Serialises with `register` (which bumps this row) so numbers cannot collide mid-import.
            model = mlflow_queries.lock_model(session, model.id)  # type: ignore[arg-type]
            existing = mlflow_queries.all_versions(session, model.id)  # type: ignore[arg-type]
            imported = mlflow_queries.versions_registered_by(session, model.id, FROM_MLFLOW)  # type: ignore[arg-type]
            foreign = sorted(set(existing) - imported)
            if foreign:
                raise _Refused(
                    f"{name} refused: it already exists in modelbot with versions that did not come from MLflow "
                    f"({_numbers(foreign)}); importing would have to renumber them. Rename the model on one side "
                    "to import it."
                )
            if not inserted and model.description != description:
                result.model_fields_updated = ("description",)
                if write:
                    model.description = description
                    session.add(model)

        for plan in planned:
            row = existing.get(plan.version)
            if row is None:
                result.created.append(plan.version)
                if write:
                    assert model is not None
                    insert_version(session, model.id, plan, now=now, actor=IMPORT_ACTOR,  # type: ignore[arg-type]
                                   reason=f"imported from MLflow {name} v{plan.version}")
                continue
            changed = plan.differences(row)
            if not changed:
                result.unchanged.append(plan.version)
                continue
            result.updated.append((plan.version, changed))
            if write:
                update_version(session, row, plan, changed, now=now, actor=IMPORT_ACTOR)
        if write and result.created:
            assert model is not None
            session.flush()
            mlflow_queries.raise_latest_version(session, model.id, max(result.created))  # type: ignore[arg-type]

        result.deleted_in_mlflow = sorted(imported - mlflow_numbers)
        if result.deleted_in_mlflow:
            result.warn(f"{name}: {_numbers(result.deleted_in_mlflow)} no longer exist in MLflow (deleted there); "
                        "kept in modelbot as they are.")

        statuses = {number: row.status for number, row in existing.items()}
        statuses.update({number: "ready" for number in result.created})
        for env, (number, label) in sorted(targets.items()):
            if number not in statuses:
                why = why_missing.get(number) or ("no such version in MLflow" if number not in mlflow_numbers
                                                  else "not imported")
                result.warn(f"{name}: MLflow {label} points to v{number}, which is not in modelbot ({why}); "
                            f"{env} left as it is.")
                continue
            if statuses[number] != "ready":
                result.warn(f"{name}: MLflow {label} points to v{number}, which is {statuses[number]} in modelbot; "
                            f"{env} left as it is.")
                continue
            reason = f"imported from MLflow {label}"
            if not write:
                dep = queries.deployment(session, model.id, env) if model is not None else None  # type: ignore[arg-type]
                current = dep.stable_version if dep is not None else None
                if current != number:
                    result.moves.append(PointerChange(env, current, number, reason))
                continue
            assert model is not None
            session.flush()
            dep = self.registry.lock_deployment(session, model, env)
            if dep.stable_version == number:
                continue
            move = self.registry.move_pointer(session, model, dep, number, actor=IMPORT_ACTOR, action="promote",
                                       reason=reason, request_id=None)
            if self.policy is not None:
                notices.deployment_changed(session, self.policy, move, now=now, model_id=model.id)  # type: ignore[arg-type]
            result.moves.append(PointerChange(env, move.audit.from_version, number, reason))

        if result.outcome != "created" and (result.created or result.updated or result.moves
                                            or result.model_fields_updated):
            result.outcome = "updated"


# ---- helpers --------------------------------------------------------------------------------


def _pointer_targets(
    model: MlflowModel,
    versions: list[MlflowVersion],
    alias_map: Mapping[str, str],
    environments: tuple[str, ...],
    result: ModelResult,
) -> dict[str, tuple[int, str]]:
    """environment → (version, what pointed there), by the documented rule.

    1. Each alias whose lower-cased name is in the alias map points its environment at its
       version. Aliases that map to the same environment but disagree leave it alone (warning).
    2. For an environment no alias maps to, the legacy stage of the same name (`Production`,
       `Staging`) decides: the highest READY version in that stage.
    """
    by_env: dict[str, dict[str, int]] = {}
    for alias, number in sorted(model.aliases.items()):
        env = alias_map.get(alias.lower())
        if env is not None:
            by_env.setdefault(env, {})[alias] = number
    targets: dict[str, tuple[int, str]] = {}
    for env, aliases in by_env.items():
        numbers = set(aliases.values())
        if len(numbers) > 1:
            listed = ", ".join(f"{a} → v{n}" for a, n in sorted(aliases.items()))
            result.warn(f"{model.name}: aliases that map to {env} disagree ({listed}); {env} left as it is.")
            continue
        label = ("alias " if len(aliases) == 1 else "aliases ") + ", ".join(sorted(aliases))
        targets[env] = (numbers.pop(), label)
    for stage, env in STAGE_ENVIRONMENTS.items():
        if env in by_env or env not in environments:
            continue
        staged = [v.version for v in versions if v.current_stage == stage and v.status.upper() == READY]
        if staged:
            targets[env] = (max(staged), f"stage {stage}")
    return targets


def plan_version(v: MlflowVersion, run: MlflowRun | None, result: ModelResult) -> PlannedVersion:
    where = f"{v.name} v{v.version}"
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    for key, value in sorted((run.metrics if run else {}).items()):
        problem = _problem(names.key, key, "metric") or _problem(names.metric_value, key, value)
        if problem:
            result.warn(f"{where}: metric '{names.preview(key)}' skipped: {problem}")
        else:
            metrics[key] = float(value)
    for what, source, target in (("param", run.params if run else {}, params), ("tag", v.tags, tags)):
        for key, value in sorted(source.items()):
            problem = _problem(names.key, key, what) or _problem(names.short, value, f"{what} {key}")
            if problem:
                result.warn(f"{where}: {what} '{names.preview(key)}' skipped: {problem}")
            else:
                target[key] = value
    run_id = v.run_id
    if run_id is not None and (problem := _problem(names.short, run_id, "run id", 256)):
        result.warn(f"{where}: run id dropped: {problem}")
        run_id = None
    source = v.source
    if source is not None and (problem := _problem(names.short, source, "source", names.URI_MAX)):
        result.warn(f"{where}: source dropped: {problem}")
        source = None
    created_by = IMPORT_ACTOR
    if v.user_id:
        if problem := _problem(names.actor, v.user_id):
            result.warn(f"{where}: user '{names.preview(v.user_id)}' not usable ({problem}); created by {IMPORT_ACTOR}.")
        else:
            created_by = names.actor(v.user_id)
    return PlannedVersion(
        version=v.version,
        artifact_uri=source or f"models:/{v.name}/{v.version}",
        run_id=run_id,
        source=source,
        description=clean_text(v.description, f"{where}: description", result),
        metrics=metrics,
        params=params,
        tags=tags,
        created_by=created_by,
        created_at=v.created_at,
    )


def clean_text(value: str | None, where: str, result: ModelResult) -> str | None:
    """Descriptions are kept even when modelbot would refuse them as typed input: cleaned, with a warning."""
    if value is None or _problem(names.text, value, "description") is None:
        return value
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in value)
    if len(cleaned) > names.TEXT_MAX:
        cleaned = cleaned[: names.TEXT_MAX - 1] + "…"
    result.warn(f"{where} cleaned: control characters replaced and/or cut to {names.TEXT_MAX} characters.")
    return cleaned


def _problem(check: Any, *args: Any) -> str | None:
    """Run one of `names`' validators; its message, or None when the value is fine."""
    try:
        check(*args)
    except InvalidInput as exc:
        return str(exc)
    return None


def _numbers(numbers: Iterable[int]) -> str:
    return ", ".join(f"v{n}" for n in numbers)
