"""Registry operations: register, read, promote, roll back, history.

The rules live here; `storage` only knows tables, transactions and locks. Every pointer
move happens in one write transaction that locks the deployment row, bumps its revision
and appends exactly one audit row carrying that revision, so concurrent moves serialise in
the database and the audit chain has no gaps.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.domain import names
from bot.domain.entities import (
    AuditEntry,
    EnvironmentState,
    ModelSummary,
    Page,
    PointerMove,
    Version,
    as_utc,
)
from bot.domain.errors import Conflict, InvalidInput, NotFound, Unavailable
from bot.domain.refs import VersionRef, parse_ref
from storage import queries
from storage.db import Database, DatabaseBusy, DatabaseUnreachable
from storage.models import AuditEvent, Deployment, ModelVersion, RegisteredModel

DEFAULT_ENVIRONMENTS = ("staging", "production")
MAX_PAGE = 500
Clock = Callable[[], datetime]
# Called inside the pointer move's transaction, so the messages it causes commit with it.
OnMove = Callable[[Session, RegisteredModel, PointerMove], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class NewVersion:
    """Everything `register` accepts; validated by `Registry.register` before any write."""

    model: str
    artifact_uri: str
    actor: str
    metrics: Mapping[str, float | str] | None = None
    params: Mapping[str, str] | None = None
    tags: Mapping[str, str] | None = None
    run_id: str | None = None
    source: str | None = None
    dataset_fingerprint: str | None = None
    description: str | None = None


class Registry:
    """The registry service. Thread-safe: it holds no mutable state besides the engine."""

    def __init__(
        self,
        db: Database,
        *,
        environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.environments = environments
        self.clock = clock

    # ---- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        with _database_errors(), self.db.read() as session:
            yield session

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        with _database_errors(), self.db.write() as session:
            yield session

    # ---- register -----------------------------------------------------------------------

    def register(self, new: NewVersion) -> Version:
        name = names.model_name(new.model)
        actor = names.actor(new.actor)
        artifact = names.short(new.artifact_uri, "artifact URI", names.URI_MAX)
        if not artifact:
            raise InvalidInput("Say where the model is stored: add --artifact URI (for example s3://bucket/churn/7).")
        metrics = {
            names.key(k, "metric"): names.metric_value(k, v) for k, v in (new.metrics or {}).items()
        }
        params = {names.key(k, "param"): _value(v, f"param {k}") for k, v in (new.params or {}).items()}
        tags = {names.key(k, "tag"): _value(v, f"tag {k}") for k, v in (new.tags or {}).items()}
        run_id = names.short(new.run_id, "run id", 256)
        source = names.short(new.source, "source", names.URI_MAX)
        fingerprint = names.short(new.dataset_fingerprint, "dataset fingerprint", 256)
        description = names.text(new.description, "description")
        now = self.clock()
        with self.writing() as session:
            model = self._model_for_register(session, name, actor, now)
            number = session.execute(
                sa.update(RegisteredModel)
                .where(RegisteredModel.id == model.id)  # type: ignore[arg-type]
                .values(latest_version=RegisteredModel.latest_version + 1)
                .returning(RegisteredModel.latest_version)
            ).scalar_one()
            row = ModelVersion(
                model_id=model.id,  # type: ignore[arg-type]
                version=number,
                artifact_uri=artifact,
                run_id=run_id,
                source=source,
                dataset_fingerprint=fingerprint,
                description=description,
                metrics=metrics,
                params=params,
                tags=tags,
                created_by=actor,
                created_at=now,
            )
            session.add(row)
            session.add(
                AuditEvent(at=now, actor=actor, model_id=model.id, action="register", to_version=number)
            )
            session.flush()
            return _version(row, model.name, ())

    def _model_for_register(self, session: Session, name: str, actor: str, now: datetime) -> RegisteredModel:
        session.execute(
            self.db.upsert_insert(RegisteredModel)
            .values(name=name, name_key=name.lower(), created_at=now, latest_version=0, owner=actor)
            .on_conflict_do_nothing(index_elements=["name_key"])
        )
        model = queries.model_by_key(session, name)
        assert model is not None
        if model.name != name:
            raise Conflict(
                f"A model named '{model.name}' already exists and names are unique regardless of case: "
                f"register to '{model.name}' or choose a different name."
            )
        return model

    # ---- reads --------------------------------------------------------------------------

    def list_models(self, *, offset: int = 0, limit: int = 50) -> Page[ModelSummary]:
        offset, limit = _paging(offset, limit)
        with self.reading() as session:
            rows, total = queries.models_page(session, offset=offset, limit=limit)
            serving: dict[int, dict[str, int]] = {}
            for dep in queries.deployments_for(session, [r.id for r in rows if r.id is not None]):
                if dep.stable_version is not None:
                    serving.setdefault(dep.model_id, {})[dep.environment] = dep.stable_version
            items = tuple(_summary(r, serving.get(r.id or 0, {}), self.environments) for r in rows)
            return Page(items=items, total=total, offset=offset, limit=limit)

    def get_model(self, name: str) -> ModelSummary:
        with self.reading() as session:
            model = self._model(session, name)
            serving = {
                d.environment: d.stable_version
                for d in queries.deployments_for(session, [model.id])  # type: ignore[list-item]
                if d.stable_version is not None
            }
            return _summary(model, serving, self.environments)

    def list_versions(self, name: str, *, offset: int = 0, limit: int = 20) -> Page[Version]:
        offset, limit = _paging(offset, limit)
        with self.reading() as session:
            model = self._model(session, name)
            rows, total = queries.versions_page(session, model.id, offset=offset, limit=limit)  # type: ignore[arg-type]
            serving = self._serving_by_version(session, model)
            items = tuple(_version(r, model.name, serving.get(r.version, ())) for r in rows)
            return Page(items=items, total=total, offset=offset, limit=limit)

    def show(self, name: str, ref: str | VersionRef = "latest") -> Version:
        with self.reading() as session:
            model = self._model(session, name)
            row = self._resolve(session, model, ref)
            serving = self._serving_by_version(session, model)
            return _version(row, model.name, serving.get(row.version, ()))

    def versions(self, name: str, refs: list[str | VersionRef]) -> list[Version]:
        """Resolve several references in one read transaction (for compare)."""
        with self.reading() as session:
            model = self._model(session, name)
            serving = self._serving_by_version(session, model)
            rows = [self._resolve(session, model, ref) for ref in refs]
            return [_version(r, model.name, serving.get(r.version, ())) for r in rows]

    def environment_state(self, name: str, environment: str) -> EnvironmentState:
        env = names.environment(environment, self.environments)
        with self.reading() as session:
            model = self._model(session, name)
            dep = queries.deployment(session, model.id, env)  # type: ignore[arg-type]
            return _state(session, model, env, dep)

    def history(
        self, name: str, environment: str | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[AuditEntry]:
        """Pointer moves and other environment events, oldest first (the last `limit` of them)."""
        env = names.environment(environment, self.environments) if environment else None
        _, limit = _paging(0, limit)
        with self.reading() as session:
            model = self._model(session, name)
            rows = queries.audit_for_model(
                session, model.id, environment=env, limit=limit, before_id=before_id  # type: ignore[arg-type]
            )
            return [_audit(r, model.name) for r in reversed(rows)]

    # ---- pointer moves ------------------------------------------------------------------

    def promote(
        self,
        name: str,
        ref: str | VersionRef,
        environment: str,
        *,
        actor: str,
        reason: str | None = None,
        request_id: str | None = None,
        action: str = "promote",
        on_move: OnMove | None = None,
    ) -> PointerMove:
        """Move the stable pointer; the old stable becomes `previous` (kept warm for rollback)."""
        env = names.environment(environment, self.environments)
        actor = names.actor(actor)
        reason = names.text(reason, "reason")
        with self.writing() as session:
            model = self._model(session, name)
            target = self._resolve(session, model, ref)
            if target.status != "ready":
                raise Conflict(f"{model.name} v{target.version} is {target.status} and cannot be promoted.")
            dep = self._locked_deployment(session, model, env)
            if dep.stable_version == target.version:
                raise Conflict(f"{model.name} v{target.version} already serves {env}.")
            move = self._move(
                session, model, dep, target.version, actor=actor, action=action, reason=reason,
                request_id=request_id,
            )
            if on_move is not None:
                on_move(session, model, move)
            return move

    def rollback(
        self,
        name: str,
        environment: str,
        *,
        actor: str,
        to: str | VersionRef | None = None,
        reason: str | None = None,
        request_id: str | None = None,
        on_move: OnMove | None = None,
    ) -> PointerMove:
        """Back to the previous stable, or to a named version that served this environment before."""
        env = names.environment(environment, self.environments)
        actor = names.actor(actor)
        reason = names.text(reason, "reason")
        with self.writing() as session:
            model = self._model(session, name)
            dep = self._locked_deployment(session, model, env)
            if to is None:
                if dep.previous_version is None:
                    raise Conflict(
                        f"{model.name} has no previous version in {env} to roll back to: "
                        f"name one with 'to VERSION', or promote instead."
                    )
                target_version = dep.previous_version
            else:
                target_version = self._resolve(session, model, to).version
                served = queries.versions_that_served(session, model.id, env)  # type: ignore[arg-type]
                if target_version not in served:
                    listed = ", ".join(f"v{v}" for v in served) or "none yet"
                    raise Conflict(
                        f"{model.name} v{target_version} never served {env}, so it is not a rollback target "
                        f"(versions that did: {listed}); use promote for a new version."
                    )
            if dep.stable_version == target_version:
                raise Conflict(f"{model.name} v{target_version} already serves {env}: nothing to roll back.")
            move = self._move(
                session, model, dep, target_version, actor=actor, action="rollback", reason=reason,
                request_id=request_id,
            )
            if on_move is not None:
                on_move(session, model, move)
            return move

    def _move(
        self,
        session: Session,
        model: RegisteredModel,
        dep: Deployment,
        to_version: int,
        *,
        actor: str,
        action: str,
        reason: str | None,
        request_id: str | None,
    ) -> PointerMove:
        now = self.clock()
        from_version = dep.stable_version
        dep.previous_version = from_version
        dep.stable_version = to_version
        # a rollback or a promotion ends any canary running beside the old stable
        dep.canary_version = None
        dep.canary_weight = 0
        dep.revision += 1
        dep.updated_at = now
        session.add(dep)
        event = AuditEvent(
            at=now,
            actor=actor,
            model_id=model.id,
            environment=dep.environment,
            action=action,
            from_version=from_version,
            to_version=to_version,
            revision=dep.revision,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        session.add(event)
        try:
            session.flush()
        except IntegrityError as exc:  # pragma: no cover - the lock makes this unreachable
            raise Conflict("Another change to this environment happened at the same time; try again.") from exc
        return PointerMove(state=_state(session, model, dep.environment, dep), audit=_audit(event, model.name))

    def _locked_deployment(self, session: Session, model: RegisteredModel, env: str) -> Deployment:
        session.execute(
            self.db.upsert_insert(Deployment)
            .values(model_id=model.id, environment=env, canary_weight=0, revision=0, updated_at=self.clock())
            .on_conflict_do_nothing(index_elements=["model_id", "environment"])
        )
        statement = select(Deployment).where(Deployment.model_id == model.id, Deployment.environment == env)
        dep = session.exec(self.db.lock_for_update(statement).execution_options(populate_existing=True)).one()
        return dep

    # ---- helpers ------------------------------------------------------------------------

    def _model(self, session: Session, name: str) -> RegisteredModel:
        if not name or len(name) > names.MODEL_NAME_MAX or not names.MODEL_NAME_RE.fullmatch(name):
            names.model_name(name)
        model = queries.model_by_key(session, name)
        if model is None:
            raise NotFound(f"There is no model named '{names.preview(name)}': `list` shows the models that exist.")
        return model

    def _resolve(self, session: Session, model: RegisteredModel, ref: str | VersionRef) -> ModelVersion:
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.latest:
            row = queries.latest_ready_version(session, model.id)  # type: ignore[arg-type]
            if row is None:
                raise NotFound(f"{model.name} has no versions yet: register one first.")
            return row
        if parsed.environment is not None:
            env = names.environment(parsed.environment, self.environments)
            dep = queries.deployment(session, model.id, env)  # type: ignore[arg-type]
            if dep is None or dep.stable_version is None:
                raise NotFound(f"Nothing of {model.name} serves {env} yet: promote a version first.")
            number = dep.stable_version
        else:
            assert parsed.number is not None
            number = parsed.number
        row = queries.version(session, model.id, number)  # type: ignore[arg-type]
        if row is None:
            hint = f"versions go from 1 to {model.latest_version}" if model.latest_version else "it has none yet"
            raise NotFound(f"{model.name} has no version {number} ({hint}).")
        return row

    def _serving_by_version(self, session: Session, model: RegisteredModel) -> dict[int, tuple[str, ...]]:
        serving: dict[int, list[str]] = {}
        for dep in queries.deployments_for(session, [model.id]):  # type: ignore[list-item]
            if dep.stable_version is not None:
                serving.setdefault(dep.stable_version, []).append(dep.environment)
        return {v: tuple(sorted(envs)) for v, envs in serving.items()}


# ---- conversions ------------------------------------------------------------------------


def _value(value: object, what: str) -> str:
    text = names.short(str(value), what)
    assert text is not None
    return text


def _paging(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0:
        raise InvalidInput("The page offset cannot be negative.")
    if limit < 1 or limit > MAX_PAGE:
        raise InvalidInput(f"The page size must be between 1 and {MAX_PAGE}.")
    return offset, limit


def _version(row: ModelVersion, model_name: str, serving: tuple[str, ...]) -> Version:
    return Version(
        model=model_name,
        version=row.version,
        artifact_uri=row.artifact_uri,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        status=row.status,
        run_id=row.run_id,
        source=row.source,
        dataset_fingerprint=row.dataset_fingerprint,
        description=row.description,
        metrics=dict(row.metrics or {}),
        params=dict(row.params or {}),
        tags=dict(row.tags or {}),
        serving=serving,
    )


def _summary(row: RegisteredModel, serving: dict[str, int], environments: tuple[str, ...]) -> ModelSummary:
    ordered = {env: serving[env] for env in environments if env in serving}
    return ModelSummary(
        name=row.name,
        description=row.description,
        owner=row.owner,
        created_at=as_utc(row.created_at),
        latest_version=row.latest_version,
        serving=ordered,
    )


def _state(session: Session, model: RegisteredModel, env: str, dep: Deployment | None) -> EnvironmentState:
    if dep is None:
        return EnvironmentState(model.name, env, None, None, None, 0, 0, None)
    wanted = [v for v in (dep.stable_version, dep.previous_version, dep.canary_version) if v is not None]
    rows = queries.versions(session, model.id, wanted)  # type: ignore[arg-type]

    def uri(number: int | None) -> str | None:
        return rows[number].artifact_uri if number is not None and number in rows else None

    return EnvironmentState(
        model=model.name,
        environment=env,
        stable=dep.stable_version,
        previous=dep.previous_version,
        canary=dep.canary_version,
        canary_weight=dep.canary_weight,
        revision=dep.revision,
        updated_at=as_utc(dep.updated_at) if dep.updated_at else None,
        stable_artifact_uri=uri(dep.stable_version),
        canary_artifact_uri=uri(dep.canary_version),
        previous_artifact_uri=uri(dep.previous_version),
    )


def _audit(row: AuditEvent, model_name: str | None) -> AuditEntry:
    return AuditEntry(
        id=row.id or 0,
        at=as_utc(row.at),
        actor=row.actor,
        model=model_name,
        environment=row.environment,
        action=row.action,
        from_version=row.from_version,
        to_version=row.to_version,
        revision=row.revision,
        reason=row.reason,
        request_id=row.request_id,
    )


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except DatabaseBusy as exc:
        raise Unavailable(str(exc)) from exc
    except DatabaseUnreachable as exc:
        raise Unavailable(str(exc)) from exc
