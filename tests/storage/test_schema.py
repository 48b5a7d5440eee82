"""Invariants the database itself enforces, and the migration chain."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.domain.registry import NewVersion, Registry
from storage.db import HEAD_REVISION, Database, DatabaseSettings
from storage.migrations.runner import head_revision
from storage.models import AuditEvent, Deployment


def test_head_revision_constant_matches_scripts() -> None:
    assert head_revision() == HEAD_REVISION


def test_upgrade_is_idempotent(db: Database) -> None:
    db.upgrade()
    assert db.current_revision() == HEAD_REVISION


def _seed(db: Database) -> Registry:
    registry = Registry(db)
    registry.register(NewVersion(model="churn", artifact_uri="s3://x", actor="ci"))
    registry.promote("churn", "1", "production", actor="a")
    return registry


def test_audit_log_refuses_update_and_delete(db: Database) -> None:
    _seed(db)
    for statement in (sa.update(AuditEvent).values(actor="mallory"), sa.delete(AuditEvent)):
        with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
            session.execute(statement)
    with db.read() as session:
        actors = session.execute(sa.select(AuditEvent.actor)).scalars().all()
    assert "mallory" not in actors and len(actors) == 2


def test_one_deployment_row_per_model_and_environment(db: Database) -> None:
    _seed(db)
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(Deployment(model_id=1, environment="production", stable_version=1,
                               updated_at=datetime.now(UTC)))


def test_deployment_cannot_point_at_another_models_version(db: Database) -> None:
    registry = _seed(db)
    registry.register(NewVersion(model="fraud", artifact_uri="s3://y", actor="ci"))
    with pytest.raises(IntegrityError), db.write() as session:
        # fraud has only v1; v2 exists nowhere for it
        session.add(Deployment(model_id=2, environment="staging", stable_version=2,
                               updated_at=datetime.now(UTC)))


def test_audit_revision_cannot_repeat(db: Database) -> None:
    _seed(db)
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(AuditEvent(at=datetime.now(UTC), actor="x", model_id=1, environment="production",
                               action="promote", to_version=1, revision=1))


def test_canary_weight_bounded(db: Database) -> None:
    _seed(db)
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(sa.update(Deployment).values(canary_weight=150))


def test_upgrading_an_old_database_keeps_data_and_the_append_only_rule(database_url: str) -> None:
    """Each migration must upgrade a populated database, not only an empty one."""
    from alembic import command

    from storage.migrations.runner import alembic_config

    db = Database(DatabaseSettings(url=database_url))
    try:
        command.upgrade(alembic_config(db.engine), "0001")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO registered_models (name, name_key, created_at, latest_version) "
                "VALUES ('churn', 'churn', CURRENT_TIMESTAMP, 0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO audit_events (at, actor, model_id, action) VALUES (CURRENT_TIMESTAMP, 'ci', 1, 'register')"
            )
        db.upgrade()
        assert db.current_revision() == HEAD_REVISION
        with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
            session.execute(sa.delete(AuditEvent))
        with db.read() as session:
            assert session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one() == 1
    finally:
        db.dispose()
