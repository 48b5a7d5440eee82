"""Registry operations: register, read, promote, roll back, history.

The rules live here; `storage` only knows tables, transactions and locks. Every pointer
move happens in one write transaction that locks the deployment row, bumps its revision
and appends exactly one audit row carrying that revision, so concurrent moves serialise in
the database and the audit chain has no gaps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.domain import audit, names
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
from storage.db import Database, DatabaseBusy, DatabaseUnreachable
from storage.models import Deployment, ModelVersion, RegisteredModel
from storage.queries import registry as queries

DEFAULT_ENVIRONMENTS = ("staging", "production")
MAX_PAGE = 500
Clock = Callable[[], datetime]


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
            model_id, model_name, number = self._model_for_register(session, name, actor, now)
            queries.insert_version(
                session,
                {
                    "model_id": model_id,
                    "version": number,
                    "artifact_uri": artifact,
                    "run_id": run_id,
                    "source": source,
                    "dataset_fingerprint": fingerprint,
                    "description": description,
                    "metrics": metrics,
                    "params": params,
                    "tags": tags,
                    "created_by": actor,
                    "created_at": now,
                    "status": "ready",
                },
            )
            audit.record(session, at=now, actor=actor, model_id=model_id, action="register", to_version=number)
            return Version(
                model=model_name,
                version=number,
                artifact_uri=artifact,
                created_by=actor,
                created_at=as_utc(now),
                status="ready",
                run_id=run_id,
                source=source,
                dataset_fingerprint=fingerprint,
                description=description,
                metrics=dict(metrics),
                params=dict(params),
                tags=dict(tags),
                serving=(),
            )

    def _model_for_register(self, session: Session, name: str, actor: str, now: datetime) -> tuple[int, str, int]:
        """Create the model if needed and hand out its next version number: (id, name as stored, number).

        Names are looked up in any case here as everywhere: `CHURN` registers the next version of
        `churn`, whose name keeps its first spelling."""
        queries.upsert_model(session, name=name, now=now, owner=actor)
        # the increment locks the model row until commit on PostgreSQL, so numbers never repeat
        model_id, stored_name, number = queries.next_version_number(session, name)
        return model_id, stored_name, number

    # ---- reads --------------------------------------------------------------------------

    def list_models(self, *, offset: int = 0, limit: int = 50) -> Page[ModelSummary]:
        offset, limit = _paging(offset, limit)
        with self.reading() as session:
            rows, total = queries.models_page_rows(session, offset=offset, limit=limit)
            items: list[ModelSummary] = []
            for model_rows in _grouped(rows):
                items.append(_summary(model_rows[0], _serving_by_environment(model_rows), self.environments))
            return Page(items=tuple(items), total=total, offset=offset, limit=limit)

    def get_model(self, name: str) -> ModelSummary:
        _check_name(name)
        with self.reading() as session:
            rows = queries.model_rows(session, name)
            if not rows:
                raise _no_model(name, session)
            return _summary(rows[0], _serving_by_environment(rows), self.environments)

    def list_versions(self, name: str, *, offset: int = 0, limit: int = 20) -> Page[Version]:
        offset, limit = _paging(offset, limit)
        _check_name(name)
        with self.reading() as session:
            model_rows = queries.model_rows(session, name, count_versions=True)
            if not model_rows:
                raise _no_model(name, session)
            model = model_rows[0]
            rows = queries.versions_page_rows(session, model.id, offset=offset, limit=limit)
            serving = _serving_by_version(model_rows)
            items = tuple(_versions_from_rows(rows, model.name, serving))
            return Page(items=items, total=model.version_count, offset=offset, limit=limit)

    def show(self, name: str, ref: str | VersionRef = "latest") -> Version:
        _check_name(name)
        try:
            parsed = parse_ref(ref) if isinstance(ref, str) else ref
            env = names.environment(parsed.environment, self.environments) if parsed.environment is not None else None
        except InvalidInput:
            # a bad reference is reported after a missing model, as it always was: take the slow path
            with self.reading() as session:
                model = self.model_row(session, name)
                self.version_row(session, model, ref)
            raise  # pragma: no cover - version_row raised above
        with self.reading() as session:
            if env is not None:
                rows = queries.show_rows(session, name, environment=env)
            elif parsed.latest:
                rows = queries.show_rows(session, name)
            else:
                assert parsed.number is not None
                rows = queries.show_rows(session, name, number=parsed.number)
            if not rows:
                raise _no_model(name, session)
            head = rows[0]
            if head.version is None:
                if parsed.latest:
                    raise _no_versions(head.m_name)
                if env is not None:
                    if head.env_stable is None:
                        raise _not_serving(head.m_name, env)
                    raise _no_version(head.m_name, head.env_stable, head.m_latest)
                assert parsed.number is not None
                raise _no_version(head.m_name, parsed.number, head.m_latest)
            serving = tuple(sorted(r.serving_env for r in rows if r.serving_env is not None))
            return _version(head, head.m_name, serving)

    def versions(self, name: str, refs: list[str | VersionRef]) -> list[Version]:
        """Resolve several references in one read transaction (for compare)."""
        _check_name(name)
        with self.reading() as session:
            model_rows = queries.model_rows(session, name)
            if not model_rows:
                raise _no_model(name, session)
            model = model_rows[0]
            stable = {r.dep_env: r.dep_stable for r in model_rows if r.dep_env is not None}
            # parse every reference first (stopping at the first bad one, which is raised in
            # its turn), then fetch the versions they name with at most two statements
            # (kind, environment, number): kind is "latest", "environment" or "number"
            plans: list[tuple[str, str, int | None]] = []
            failure: InvalidInput | None = None
            for ref in refs:
                try:
                    parsed = parse_ref(ref) if isinstance(ref, str) else ref
                    if parsed.latest:
                        plans.append(("latest", "", None))
                    elif parsed.environment is not None:
                        env = names.environment(parsed.environment, self.environments)
                        plans.append(("environment", env, stable.get(env)))
                    else:
                        assert parsed.number is not None
                        plans.append(("number", "", parsed.number))
                except InvalidInput as exc:
                    failure = exc
                    break
            found = queries.version_rows(session, model.id, {n for _, _, n in plans if n is not None})
            latest = (
                queries.latest_ready_row(session, model.id) if any(k == "latest" for k, _, _ in plans) else None
            )
            serving = _serving_by_version(model_rows)
            out: list[Version] = []
            for kind, env_name, number in plans:
                if kind == "latest":
                    if latest is None:
                        raise _no_versions(model.name)
                    row = latest
                else:
                    if kind == "environment" and number is None:
                        raise _not_serving(model.name, env_name)
                    assert number is not None
                    if number not in found:
                        raise _no_version(model.name, number, model.latest_version)
                    row = found[number]
                out.append(_version(row, model.name, serving.get(row.version, ())))
            if failure is not None:
                raise failure
            return out

    def environment_state(self, name: str, environment: str) -> EnvironmentState:
        env = names.environment(environment, self.environments)
        _check_name(name)
        with self.reading() as session:
            row = queries.environment_state_row(session, name, env)
            if row is None:
                raise _no_model(name, session)
            if row.dep_id is None:
                return EnvironmentState(row.m_name, env, None, None, None, 0, 0, None)
            return EnvironmentState(
                model=row.m_name,
                environment=env,
                stable=row.stable_version,
                previous=row.previous_version,
                canary=row.canary_version,
                canary_weight=row.canary_weight,
                revision=row.revision,
                updated_at=as_utc(row.updated_at) if row.updated_at else None,
                stable_artifact_uri=row.stable_uri if row.stable_version is not None else None,
                canary_artifact_uri=row.canary_uri if row.canary_version is not None else None,
                previous_artifact_uri=row.previous_uri if row.previous_version is not None else None,
            )

    def history(
        self, name: str, environment: str | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[AuditEntry]:
        """Pointer moves and other environment events, oldest first (the last `limit` of them)."""
        env = names.environment(environment, self.environments) if environment else None
        _, limit = _paging(0, limit)
        _check_name(name)
        with self.reading() as session:
            model = queries.model_head(session, name)
            if model is None:
                raise _no_model(name, session)
            rows = queries.audit_rows(session, model.id, environment=env, limit=limit, before_id=before_id)
            return [audit.entry(r, model.name) for r in reversed(rows)]

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
    ) -> PointerMove:
        """Move the stable pointer; the old stable becomes `previous` (kept warm for rollback)."""
        env = names.environment(environment, self.environments)
        actor = names.actor(actor)
        reason = names.text(reason, "reason")
        with self.writing() as session:
            model = self.model_row(session, name)
            target = self._resolve_row(session, model, ref)
            if target.status != "ready":
                raise Conflict(f"{model.name} v{target.version} is {target.status} and cannot be promoted.")
            dep = self.lock_deployment(session, model, env)
            if dep.stable_version == target.version:
                raise Conflict(f"{model.name} v{target.version} already serves {env}.")
            move = self.move_pointer(
                session, model, dep, target.version, actor=actor, action=action, reason=reason,
                request_id=request_id,
            )
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
    ) -> PointerMove:
        """Back to the previous stable, or to a named version that served this environment before."""
        env = names.environment(environment, self.environments)
        actor = names.actor(actor)
        reason = names.text(reason, "reason")
        with self.writing() as session:
            model = self.model_row(session, name)
            dep = self.lock_deployment(session, model, env)
            target_version = self.rollback_target(session, model, dep, env, to)
            move = self.move_pointer(
                session, model, dep, target_version, actor=actor, action="rollback", reason=reason,
                request_id=request_id,
            )
            return move

    def rollback_target(
        self, session: Session, model: RegisteredModel, dep: Deployment | None, env: str, to: str | VersionRef | None
    ) -> int:
        """The version a rollback puts back: the previous stable one, or a named version that served
        this environment before. Never a version new to it: that is a promotion, with its rules."""
        named = self._resolve_row(session, model, to).version if to is not None else None  # NotFound first
        if dep is None or dep.stable_version is None:
            raise Conflict(f"Nothing of {model.name} serves {env}, so there is nothing to roll back.")
        if named is None:
            if dep.previous_version is None:
                raise Conflict(f"{model.name} has no previous version in {env} to roll back to: name a version "
                               "that served it before, or promote instead.")
            target = dep.previous_version
        else:
            target = named
            served = queries.versions_that_served(session, model.id, env)  # type: ignore[arg-type]
            if target not in served:
                listed = ", ".join(f"v{v}" for v in served) or "none yet"
                raise Conflict(f"{model.name} v{target} never served {env}, so it is not a rollback target "
                               f"(versions that did: {listed}); use promote for a new version.")
        if dep.stable_version == target:
            raise Conflict(f"{model.name} v{target} already serves {env}: nothing to roll back.")
        return target

    def move_pointer(
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
        """Point `dep` (locked by `lock_deployment`) at `to_version` and append its audit row;
        the old stable becomes `previous` and any canary ends with it. No rule is checked here:
        callers have decided."""
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
        try:
            entry = audit.record_shown(
                session, model_name=model.name, at=now, actor=actor, model_id=model.id, environment=dep.environment,
                action=action, from_version=from_version, to_version=to_version, revision=dep.revision,
                reason=reason, request_id=request_id or new_request_id(),
            )
        except IntegrityError as exc:  # pragma: no cover - the lock makes this unreachable
            raise Conflict("Another change to this environment happened at the same time; try again.") from exc
        return PointerMove(state=state_of(session, model, dep.environment, dep), audit=entry)

    def lock_deployment(self, session: Session, model: RegisteredModel, env: str) -> Deployment:
        """The deployment row of (model, environment), created if needed and locked for this
        transaction: every pointer move and canary change decides under this lock."""
        return queries.lock_deployment(session, model.id, env, now=self.clock())  # type: ignore[arg-type]

    # ---- helpers ------------------------------------------------------------------------

    def model_row(self, session: Session, name: str) -> RegisteredModel:
        """The model named `name` (any case), or NotFound naming `list`."""
        _check_name(name)
        model = queries.model_by_key(session, name)
        if model is None:
            raise _no_model(name, session)
        return model

    def version_row(self, session: Session, model: RegisteredModel, ref: str | VersionRef) -> ModelVersion:
        """The version a reference (`7`, `latest`, `@production`) names, or NotFound."""
        number = self._ref_number(session, model, ref)
        if number is None:
            row = queries.latest_ready_version(session, model.id)  # type: ignore[arg-type]
            if row is None:
                raise _no_versions(model.name)
            return row
        found = queries.version(session, model.id, number)  # type: ignore[arg-type]
        if found is None:
            raise _no_version(model.name, number, model.latest_version)
        return found

    def _resolve_row(self, session: Session, model: RegisteredModel, ref: str | VersionRef) -> Any:
        """`version_row` with plain rows (the version's columns) instead of an ORM instance."""
        number = self._ref_number(session, model, ref)
        if number is None:
            row = queries.latest_ready_row(session, model.id)  # type: ignore[arg-type]
            if row is None:
                raise _no_versions(model.name)
            return row
        found = queries.version_rows(session, model.id, (number,))  # type: ignore[arg-type]
        if number not in found:
            raise _no_version(model.name, number, model.latest_version)
        return found[number]

    def _ref_number(self, session: Session, model: RegisteredModel, ref: str | VersionRef) -> int | None:
        """The version number a reference names; None for `latest` (the newest ready version)."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.latest:
            return None
        if parsed.environment is not None:
            env = names.environment(parsed.environment, self.environments)
            stable = queries.stable_version(session, model.id, env)  # type: ignore[arg-type]
            if stable is None:
                raise _not_serving(model.name, env)
            return stable
        assert parsed.number is not None
        return parsed.number


# ---- conversions ------------------------------------------------------------------------

# audit columns a plain insert must name (the ORM filled them with None)
def _check_name(name: str) -> None:
    if not name or len(name) > names.MODEL_NAME_MAX or not names.MODEL_NAME_RE.fullmatch(name):
        names.model_name(name)


def _no_model(name: str, session: Session) -> NotFound:
    hint = names.did_you_mean(name, queries.model_names(session))
    return NotFound(f"There is no model named '{names.preview(name)}': `list` shows the models that exist.{hint}")


def _no_versions(model_name: str) -> NotFound:
    return NotFound(f"{model_name} has no versions yet: register one first.")


def _not_serving(model_name: str, env: str) -> NotFound:
    return NotFound(f"Nothing of {model_name} serves {env} yet: promote a version first.")


def _no_version(model_name: str, number: int, latest_version: int) -> NotFound:
    hint = f"versions go from 1 to {latest_version}" if latest_version else "it has none yet"
    return NotFound(f"{model_name} has no version {number} ({hint}).")


def _serving_by_version(rows: Sequence[Any]) -> dict[int, tuple[str, ...]]:
    """version -> environments whose stable pointer it is, from rows carrying `dep_env`/`dep_stable`."""
    serving: dict[int, list[str]] = {}
    for row in rows:
        if row.dep_stable is not None:
            serving.setdefault(row.dep_stable, []).append(row.dep_env)
    return {v: tuple(sorted(envs)) for v, envs in serving.items()}


def _serving_by_environment(rows: Sequence[Any]) -> dict[str, int]:
    return {row.dep_env: row.dep_stable for row in rows if row.dep_stable is not None}


def _grouped(rows: Sequence[Any]) -> list[list[Any]]:
    """Consecutive rows of the same model (`id`) together, in order."""
    groups: list[list[Any]] = []
    for row in rows:
        if groups and groups[-1][0].id == row.id:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


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


def _version(row: Any, model_name: str, serving: tuple[str, ...]) -> Version:
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


_VERSION_FIELDS = tuple(f.name for f in dataclasses.fields(Version))
# Version is a frozen dataclass without __post_init__ or slots: its instances are their
# __dict__, so a page of them can be built without the frozen __setattr__ per field
_FAST_VERSION = (
    not hasattr(Version, "__post_init__")
    and not hasattr(Version, "__slots__")
    and set(_VERSION_FIELDS) == {
        "model", "version", "artifact_uri", "created_by", "created_at", "status", "run_id", "source",
        "dataset_fingerprint", "description", "metrics", "params", "tags", "serving",
    }
)


def _versions_from_rows(
    rows: Sequence[Any], model_name: str, serving: Mapping[int, tuple[str, ...]]
) -> Iterator[Version]:
    """`_version` for rows of `queries.VERSION_COLUMNS`, in their order."""
    for (number, artifact_uri, created_by, created_at, status, run_id, source, fingerprint, description,
         metrics, params, tags) in rows:
        values = {
            "model": model_name,
            "version": number,
            "artifact_uri": artifact_uri,
            "created_by": created_by,
            "created_at": as_utc(created_at),
            "status": status,
            "run_id": run_id,
            "source": source,
            "dataset_fingerprint": fingerprint,
            "description": description,
            "metrics": dict(metrics or {}),
            "params": dict(params or {}),
            "tags": dict(tags or {}),
            "serving": serving.get(number, ()),
        }
        if _FAST_VERSION:
            version = object.__new__(Version)
            version.__dict__.update(values)
            yield version
        else:  # pragma: no cover - only if Version grows validation or slots
            yield Version(**values)


def _summary(row: Any, serving: dict[str, int], environments: tuple[str, ...]) -> ModelSummary:
    ordered = {env: serving[env] for env in environments if env in serving}
    return ModelSummary(
        name=row.name,
        description=row.description,
        owner=row.owner,
        created_at=as_utc(row.created_at),
        latest_version=row.latest_version,
        serving=ordered,
    )


def state_of(session: Session, model: RegisteredModel, env: str, dep: Deployment | None) -> EnvironmentState:
    """What `dep` points at, with the artifact URIs of those versions."""
    if dep is None:
        return EnvironmentState(model.name, env, None, None, None, 0, 0, None)
    wanted = {v for v in (dep.stable_version, dep.previous_version, dep.canary_version) if v is not None}
    uris = queries.artifact_uris(session, model.id, wanted)  # type: ignore[arg-type]

    def uri(number: int | None) -> str | None:
        return uris.get(number) if number is not None else None

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


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except DatabaseBusy as exc:
        raise Unavailable(str(exc)) from exc
    except DatabaseUnreachable as exc:
        raise Unavailable(str(exc)) from exc
