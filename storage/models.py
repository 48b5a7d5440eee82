"""SQLModel tables.

Invariants live in the schema where a database can hold them: unique names regardless of
case (`name_key`), versions that belong to exactly one model (composite foreign keys from
deployments to `(model_id, version)`), one stable version per (model, environment) (one
deployment row per pair), canary weight in 0..100, and an audit log whose rows the database
refuses to update or delete (triggers in the migration). Rows never leave `storage`: the
domain converts them into frozen entities.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index)


class RegisteredModel(SQLModel, table=True):
    __tablename__ = "registered_models"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, nullable=False)
    # lower-cased name: the unique key, so `Churn` and `churn` cannot both exist
    name_key: str = Field(max_length=64, nullable=False, sa_column_kwargs={"unique": True})
    description: str | None = Field(default=None)
    owner: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_column=utc_column())
    # last version number handed out; incremented atomically by UPDATE … RETURNING
    latest_version: int = Field(default=0, nullable=False)


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_versions"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
        sa.CheckConstraint("version >= 1", name="ck_model_versions_positive"),
        sa.CheckConstraint("status in ('ready', 'archived')", name="ck_model_versions_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    version: int = Field(nullable=False)
    artifact_uri: str = Field(nullable=False)
    run_id: str | None = Field(default=None)
    source: str | None = Field(default=None)
    dataset_fingerprint: str | None = Field(default=None)
    description: str | None = Field(default=None)
    metrics: dict[str, float] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    params: dict[str, str] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    tags: dict[str, str] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    created_by: str = Field(nullable=False)
    created_at: datetime = Field(sa_column=utc_column())
    status: str = Field(default="ready", nullable=False)


class Deployment(SQLModel, table=True):
    """What one environment of one model serves: the pointers, not copies."""

    __tablename__ = "deployments"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "environment", name="uq_deployments_model_env"),
        sa.ForeignKeyConstraint(
            ["model_id", "stable_version"], ["model_versions.model_id", "model_versions.version"],
            name="fk_deployments_stable",
        ),
        sa.ForeignKeyConstraint(
            ["model_id", "previous_version"], ["model_versions.model_id", "model_versions.version"],
            name="fk_deployments_previous",
        ),
        sa.ForeignKeyConstraint(
            ["model_id", "canary_version"], ["model_versions.model_id", "model_versions.version"],
            name="fk_deployments_canary",
        ),
        sa.CheckConstraint("canary_weight >= 0 AND canary_weight <= 100", name="ck_deployments_weight"),
        sa.CheckConstraint("revision >= 0", name="ck_deployments_revision"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    environment: str = Field(max_length=32, nullable=False)
    stable_version: int | None = Field(default=None)
    previous_version: int | None = Field(default=None)
    canary_version: int | None = Field(default=None)
    canary_weight: int = Field(default=0, nullable=False)
    revision: int = Field(default=0, nullable=False)
    updated_at: datetime = Field(sa_column=utc_column())


class AuditEvent(SQLModel, table=True):
    """Append-only: the migration installs triggers that refuse UPDATE and DELETE.

    Pointer moves carry the deployment `revision` they produced; the unique index on
    (model, environment, revision) makes a gap-free, duplicate-free chain a database fact.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "environment", "revision", name="uq_audit_events_revision"),
        sa.Index("ix_audit_events_model_env_id", "model_id", "environment", "id"),
        sa.Index("ix_audit_events_model_id", "model_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column())
    actor: str = Field(nullable=False)
    model_id: int | None = Field(default=None, foreign_key="registered_models.id")
    environment: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=32, nullable=False)
    from_version: int | None = Field(default=None)
    to_version: int | None = Field(default=None)
    revision: int | None = Field(default=None)
    reason: str | None = Field(default=None)
    request_id: str | None = Field(default=None, max_length=64)
