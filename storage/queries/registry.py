"""The read queries the commands need. Each is backed by an index; none holds a business rule."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from storage.models import AuditEvent, Deployment, ModelVersion, RegisteredModel

POINTER_ACTIONS = ("promote", "rollback", "canary_promote")


_MODEL_BY_KEY = select(RegisteredModel).where(RegisteredModel.name_key == sa.bindparam("key"))


def model_by_key(session: Session, name: str) -> RegisteredModel | None:
    """Models are unique regardless of case; look them up the same way."""
    return session.exec(_MODEL_BY_KEY, params={"key": name.lower()}).first()


def model_names(session: Session, limit: int = 10_000) -> list[str]:
    """Names of the models, in name order (for "did you mean …" after a typo)."""
    return list(session.exec(select(RegisteredModel.name).order_by(col(RegisteredModel.name_key)).limit(limit)))


def models_by_ids(session: Session, ids: Iterable[int]) -> dict[int, RegisteredModel]:
    ids = list(ids)
    if not ids:
        return {}
    rows = session.exec(select(RegisteredModel).where(col(RegisteredModel.id).in_(ids))).all()
    return {row.id: row for row in rows if row.id is not None}




def version(session: Session, model_id: int, number: int) -> ModelVersion | None:
    return session.exec(
        select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.version == number)
    ).first()


def versions(session: Session, model_id: int, numbers: Iterable[int]) -> dict[int, ModelVersion]:
    numbers = list(numbers)
    if not numbers:
        return {}
    rows = session.exec(
        select(ModelVersion).where(ModelVersion.model_id == model_id, col(ModelVersion.version).in_(numbers))
    ).all()
    return {row.version: row for row in rows}


def latest_ready_version(session: Session, model_id: int) -> ModelVersion | None:
    return session.exec(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id, ModelVersion.status == "ready")
        .order_by(col(ModelVersion.version).desc())
        .limit(1)
    ).first()




def models_page(session: Session, *, offset: int, limit: int) -> tuple[Sequence[RegisteredModel], int]:
    total = session.exec(select(func.count()).select_from(RegisteredModel)).one()
    rows = session.exec(
        select(RegisteredModel).order_by(col(RegisteredModel.name_key)).offset(offset).limit(limit)
    ).all()
    return rows, total


def deployments_for(session: Session, model_ids: Iterable[int]) -> list[Deployment]:
    model_ids = list(model_ids)
    if not model_ids:
        return []
    return list(session.exec(select(Deployment).where(col(Deployment.model_id).in_(model_ids))).all())


def deployment(session: Session, model_id: int, environment: str) -> Deployment | None:
    return session.exec(
        select(Deployment).where(Deployment.model_id == model_id, Deployment.environment == environment)
    ).first()






def versions_that_served(session: Session, model_id: int, environment: str) -> list[int]:
    """Versions that were the stable pointer of this environment at some point."""
    rows = session.exec(
        select(AuditEvent.to_version)
        .where(
            AuditEvent.model_id == model_id,
            AuditEvent.environment == environment,
            col(AuditEvent.action).in_(POINTER_ACTIONS),
            col(AuditEvent.to_version).is_not(None),
        )
        .distinct()
    ).all()
    return sorted(int(v) for v in rows if v is not None)


def row_counts(session: Session) -> dict[str, int]:
    """Used by tests and `modelbot db status` to prove bad input wrote nothing."""
    counts = {}
    for table in (RegisteredModel, ModelVersion, Deployment, AuditEvent):
        counts[table.__tablename__] = session.exec(select(func.count()).select_from(table)).one()
    return counts




# ---- Core reads ---------------------------------------------------------------------------
#
# The registry's read hot paths select plain rows with SQLAlchemy Core on the session's
# connection: no ORM instances, identity map or per-call statement building. Statements are
# built once here with bound parameters, so their cache keys are memoised too. Column labels
# match the ORM attribute names the domain's converters read (`version`, `artifact_uri`, …).

_models = RegisteredModel.__table__  # type: ignore[attr-defined]
_versions = ModelVersion.__table__  # type: ignore[attr-defined]
_deployments = Deployment.__table__  # type: ignore[attr-defined]
_audit = AuditEvent.__table__  # type: ignore[attr-defined]

VERSION_COLUMNS = (
    _versions.c.version,
    _versions.c.artifact_uri,
    _versions.c.created_by,
    _versions.c.created_at,
    _versions.c.status,
    _versions.c.run_id,
    _versions.c.source,
    _versions.c.dataset_fingerprint,
    _versions.c.description,
    _versions.c.metrics,
    _versions.c.params,
    _versions.c.tags,
)
_MODEL_HEAD = (_models.c.id.label("m_id"), _models.c.name.label("m_name"), _models.c.latest_version.label("m_latest"))
_BY_KEY = _models.c.name_key == sa.bindparam("key")
_serving = _deployments.alias("serving")
_env_dep = _deployments.alias("env_dep")


def _serving_join(left: Any) -> Any:
    """Environments whose stable pointer is the joined version (one row per environment)."""
    return left.outerjoin(
        _serving, sa.and_(_serving.c.model_id == _models.c.id, _serving.c.stable_version == _versions.c.version)
    )


_SERVING_ENV = _serving.c.environment.label("serving_env")

_SHOW_NUMBER = (
    sa.select(*_MODEL_HEAD, *VERSION_COLUMNS, _SERVING_ENV)
    .select_from(
        _serving_join(
            _models.outerjoin(
                _versions,
                sa.and_(_versions.c.model_id == _models.c.id, _versions.c.version == sa.bindparam("number")),
            )
        )
    )
    .where(_BY_KEY)
)
_latest_alias = _versions.alias("latest_ready")
_LATEST_READY = (
    sa.select(_latest_alias.c.version)
    .where(_latest_alias.c.model_id == _models.c.id, _latest_alias.c.status == "ready")
    .order_by(_latest_alias.c.version.desc())
    .limit(1)
    .correlate(_models)
    .scalar_subquery()
)
_SHOW_LATEST = (
    sa.select(*_MODEL_HEAD, *VERSION_COLUMNS, _SERVING_ENV)
    .select_from(
        _serving_join(
            _models.outerjoin(
                _versions, sa.and_(_versions.c.model_id == _models.c.id, _versions.c.version == _LATEST_READY)
            )
        )
    )
    .where(_BY_KEY)
)
_SHOW_ENVIRONMENT = (
    sa.select(*_MODEL_HEAD, _env_dep.c.stable_version.label("env_stable"), *VERSION_COLUMNS, _SERVING_ENV)
    .select_from(
        _serving_join(
            _models.outerjoin(
                _env_dep,
                sa.and_(_env_dep.c.model_id == _models.c.id, _env_dep.c.environment == sa.bindparam("env")),
            ).outerjoin(
                _versions,
                sa.and_(_versions.c.model_id == _models.c.id, _versions.c.version == _env_dep.c.stable_version),
            )
        )
    )
    .where(_BY_KEY)
)


def show_rows(
    session: Session, name: str, *, number: int | None = None, environment: str | None = None
) -> Sequence[sa.Row[Any]]:
    """One statement: the model head (`m_id`, `m_name`, `m_latest`), the version (its columns
    are NULL when there is no such version) and `serving_env`, one row per environment whose
    stable pointer is that version. `number` picks a version, `environment` the version that
    environment's stable pointer names (`env_stable`), neither the latest ready one. No rows:
    no such model."""
    connection = session.connection()
    if environment is not None:
        return connection.execute(_SHOW_ENVIRONMENT, {"key": name.lower(), "env": environment}).all()
    if number is not None:
        return connection.execute(_SHOW_NUMBER, {"key": name.lower(), "number": number}).all()
    return connection.execute(_SHOW_LATEST, {"key": name.lower()}).all()


_MODEL_COLUMNS = (
    _models.c.id,
    _models.c.name,
    _models.c.description,
    _models.c.owner,
    _models.c.created_at,
    _models.c.latest_version,
)
_DEP_COLUMNS = (_deployments.c.environment.label("dep_env"), _deployments.c.stable_version.label("dep_stable"))
_MODEL_WITH_DEPLOYMENTS = (
    sa.select(*_MODEL_COLUMNS, *_DEP_COLUMNS)
    .select_from(_models.outerjoin(_deployments, _deployments.c.model_id == _models.c.id))
    .where(_BY_KEY)
)
_count_alias = _versions.alias("counted")
_VERSION_COUNT = (
    sa.select(func.count())
    .select_from(_count_alias)
    .where(_count_alias.c.model_id == _models.c.id)
    .correlate(_models)
    .scalar_subquery()
)
_MODEL_WITH_DEPLOYMENTS_AND_COUNT = (
    sa.select(*_MODEL_COLUMNS, *_DEP_COLUMNS, _VERSION_COUNT.label("version_count"))
    .select_from(_models.outerjoin(_deployments, _deployments.c.model_id == _models.c.id))
    .where(_BY_KEY)
)


def model_rows(session: Session, name: str, *, count_versions: bool = False) -> Sequence[sa.Row[Any]]:
    """The model's columns with each of its deployments (`dep_env`, `dep_stable`; NULL when it
    has none), optionally with `version_count`. No rows: no such model."""
    statement = _MODEL_WITH_DEPLOYMENTS_AND_COUNT if count_versions else _MODEL_WITH_DEPLOYMENTS
    return session.connection().execute(statement, {"key": name.lower()}).all()


_MODEL_HEAD_BY_KEY = sa.select(_models.c.id, _models.c.name, _models.c.latest_version).where(_BY_KEY)


def model_head(session: Session, name: str) -> sa.Row[Any] | None:
    """`id`, `name` and `latest_version` of the model, found regardless of case."""
    return session.connection().execute(_MODEL_HEAD_BY_KEY, {"key": name.lower()}).first()


_models_page = (
    sa.select(*_MODEL_COLUMNS, _models.c.name_key)
    .order_by(_models.c.name_key)
    .offset(sa.bindparam("offset"))
    .limit(sa.bindparam("limit"))
    .subquery("page")
)
_MODEL_TOTAL = sa.select(func.count()).select_from(_models)
_MODELS_PAGE = (
    sa.select(
        *(_models_page.c[c.name] for c in _MODEL_COLUMNS),
        _MODEL_TOTAL.scalar_subquery().label("total"),
        *_DEP_COLUMNS,
    )
    .select_from(_models_page.outerjoin(_deployments, _deployments.c.model_id == _models_page.c.id))
    .order_by(_models_page.c.name_key)
)


def models_page_rows(session: Session, *, offset: int, limit: int) -> tuple[Sequence[sa.Row[Any]], int]:
    """A page of models by name, one row per (model, deployment), and the number of models."""
    connection = session.connection()
    rows = connection.execute(_MODELS_PAGE, {"offset": offset, "limit": limit}).all()
    total = rows[0].total if rows else connection.execute(_MODEL_TOTAL).scalar_one()
    return rows, total


_VERSIONS_PAGE = (
    sa.select(*VERSION_COLUMNS)
    .where(_versions.c.model_id == sa.bindparam("model_id"))
    .order_by(_versions.c.version.desc())
    .offset(sa.bindparam("offset"))
    .limit(sa.bindparam("limit"))
)


def versions_page_rows(session: Session, model_id: int, *, offset: int, limit: int) -> Sequence[sa.Row[Any]]:
    return session.connection().execute(
        _VERSIONS_PAGE, {"model_id": model_id, "offset": offset, "limit": limit}
    ).all()


_VERSIONS_IN = sa.select(*VERSION_COLUMNS).where(
    _versions.c.model_id == sa.bindparam("model_id"),
    _versions.c.version.in_(sa.bindparam("numbers", expanding=True)),
)


def version_rows(session: Session, model_id: int, numbers: Iterable[int]) -> dict[int, sa.Row[Any]]:
    numbers = list(numbers)
    if not numbers:
        return {}
    rows = session.connection().execute(_VERSIONS_IN, {"model_id": model_id, "numbers": numbers})
    return {row.version: row for row in rows}


_LATEST_READY_ROW = (
    sa.select(*VERSION_COLUMNS)
    .where(_versions.c.model_id == sa.bindparam("model_id"), _versions.c.status == "ready")
    .order_by(_versions.c.version.desc())
    .limit(1)
)


def latest_ready_row(session: Session, model_id: int) -> sa.Row[Any] | None:
    return session.connection().execute(_LATEST_READY_ROW, {"model_id": model_id}).first()


_ARTIFACT_URIS = sa.select(_versions.c.version, _versions.c.artifact_uri).where(
    _versions.c.model_id == sa.bindparam("model_id"),
    _versions.c.version.in_(sa.bindparam("numbers", expanding=True)),
)


def artifact_uris(session: Session, model_id: int, numbers: Iterable[int]) -> dict[int, str]:
    numbers = list(numbers)
    if not numbers:
        return {}
    rows = session.connection().execute(_ARTIFACT_URIS, {"model_id": model_id, "numbers": numbers})
    return {row.version: row.artifact_uri for row in rows}


_stable_v = _versions.alias("stable_v")
_previous_v = _versions.alias("previous_v")
_canary_v = _versions.alias("canary_v")


def _pointer_join(left: Any, alias: Any, column: Any) -> Any:
    return left.outerjoin(alias, sa.and_(alias.c.model_id == _models.c.id, alias.c.version == column))


_ENVIRONMENT_STATE = (
    sa.select(
        _models.c.id.label("m_id"),
        _models.c.name.label("m_name"),
        _deployments.c.id.label("dep_id"),
        _deployments.c.stable_version,
        _deployments.c.previous_version,
        _deployments.c.canary_version,
        _deployments.c.canary_weight,
        _deployments.c.revision,
        _deployments.c.updated_at,
        _stable_v.c.artifact_uri.label("stable_uri"),
        _previous_v.c.artifact_uri.label("previous_uri"),
        _canary_v.c.artifact_uri.label("canary_uri"),
    )
    .select_from(
        _pointer_join(
            _pointer_join(
                _pointer_join(
                    _models.outerjoin(
                        _deployments,
                        sa.and_(
                            _deployments.c.model_id == _models.c.id,
                            _deployments.c.environment == sa.bindparam("env"),
                        ),
                    ),
                    _stable_v,
                    _deployments.c.stable_version,
                ),
                _previous_v,
                _deployments.c.previous_version,
            ),
            _canary_v,
            _deployments.c.canary_version,
        )
    )
    .where(_BY_KEY)
)


def environment_state_row(session: Session, name: str, environment: str) -> sa.Row[Any] | None:
    """The model head, its deployment in `environment` (`dep_id` NULL: none) and the artifact
    URIs of the versions the deployment's pointers name. None: no such model."""
    return session.connection().execute(_ENVIRONMENT_STATE, {"key": name.lower(), "env": environment}).first()


_AUDIT_COLUMNS = tuple(_audit.c[c] for c in (
    "id", "at", "actor", "environment", "action", "from_version", "to_version", "revision", "reason", "request_id",
    "weight",
))


def audit_rows(
    session: Session, model_id: int, *, environment: str | None, limit: int, before_id: int | None = None
) -> Sequence[sa.Row[Any]]:
    """The model's audit rows (of one environment, or of all), newest first."""
    query = sa.select(*_AUDIT_COLUMNS).where(_audit.c.model_id == model_id)
    if environment is not None:
        query = query.where(_audit.c.environment == environment)
    else:
        query = query.where(_audit.c.environment.is_not(None))
    if before_id is not None:
        query = query.where(_audit.c.id < before_id)
    return session.connection().execute(query.order_by(_audit.c.id.desc()).limit(limit)).all()


_STABLE_VERSION = sa.select(_deployments.c.stable_version).where(
    _deployments.c.model_id == sa.bindparam("model_id"), _deployments.c.environment == sa.bindparam("env")
)


def stable_version(session: Session, model_id: int, environment: str) -> int | None:
    """The environment's stable version; None when nothing serves it (or it has no deployment)."""
    return session.connection().execute(_STABLE_VERSION, {"model_id": model_id, "env": environment}).scalar()


# ---- Core writes --------------------------------------------------------------------------

# Hands out the next version number of the model whose name matches in any case, with the name
# as stored (the first spelling).
NEXT_VERSION_NUMBER = (
    sa.update(_models)
    .where(_models.c.name_key == sa.bindparam("b_key"))
    .values(latest_version=_models.c.latest_version + 1)
    .returning(_models.c.id, _models.c.name, _models.c.latest_version)
)
_INSERT_VERSION = sa.insert(_versions)


def next_version_number(session: Session, name: str) -> sa.Row[Any]:
    """(model id, its name as stored, the next version number) of the model named `name` in any
    case (it exists: the caller upserted it); the increment locks the model row until commit on
    PostgreSQL."""
    return session.connection().execute(NEXT_VERSION_NUMBER, {"b_key": name.lower()}).one()


def insert_version(session: Session, values: dict[str, Any]) -> None:
    session.connection().execute(_INSERT_VERSION, values)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert(dialect: str) -> Any:
    """The dialect's INSERT (it has `on_conflict_do_nothing`); imported on use, so a SQLite
    process never loads the PostgreSQL dialect (and asyncio with it)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    return insert


# Statements built once per dialect: building and hashing a statement costs more than running it on SQLite.
@functools.cache
def _model_upsert(dialect: str) -> Any:
    return (
        _insert(dialect)(RegisteredModel)
        .values(
            name=sa.bindparam("name"), name_key=sa.bindparam("key"), created_at=sa.bindparam("now"),
            latest_version=0, owner=sa.bindparam("owner"),
        )
        .on_conflict_do_nothing(index_elements=["name_key"])
    )


def upsert_model(session: Session, *, name: str, now: datetime, owner: str) -> None:
    """Create the model unless one of that name (in any case) exists."""
    session.execute(_model_upsert(_dialect(session)), {"name": name, "key": name.lower(), "now": now, "owner": owner})


@functools.cache
def _deployment_statements(dialect: str) -> tuple[Any, Any]:
    upsert = (
        _insert(dialect)(Deployment)
        .values(
            model_id=sa.bindparam("model_id"), environment=sa.bindparam("env"), canary_weight=0, revision=0,
            updated_at=sa.bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=["model_id", "environment"])
    )
    lock = select(Deployment).where(
        Deployment.model_id == sa.bindparam("model_id"), Deployment.environment == sa.bindparam("env")
    )
    if dialect != "sqlite":  # SQLite's BEGIN IMMEDIATE already excludes other writers
        lock = lock.with_for_update()
    return upsert, lock.execution_options(populate_existing=True)


def lock_deployment(session: Session, model_id: int, environment: str, *, now: datetime) -> Deployment:
    """The deployment row of (model, environment), inserted if missing, locked for the transaction."""
    upsert, lock = _deployment_statements(_dialect(session))
    params = {"model_id": model_id, "env": environment}
    session.execute(upsert, {**params, "now": now})
    return session.exec(lock, params=params).one()
