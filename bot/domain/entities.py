"""Frozen domain entities: what the domain hands to renderers, CLIs and APIs.

ORM rows never leave the storage/domain boundary; these are plain values, safe to pass to
threads and to serialise. `to_dict()` gives the stable JSON shapes documented in the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Version:
    model: str
    version: int
    artifact_uri: str
    created_by: str
    created_at: datetime
    status: str = "ready"
    run_id: str | None = None
    source: str | None = None
    dataset_fingerprint: str | None = None
    description: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # environments whose stable pointer is this version right now
    serving: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "artifact_uri": self.artifact_uri,
            "run_id": self.run_id,
            "source": self.source,
            "dataset_fingerprint": self.dataset_fingerprint,
            "description": self.description,
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "tags": dict(self.tags),
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "serving": list(self.serving),
        }


@dataclass(frozen=True)
class EnvironmentState:
    """The read model a serving layer polls: which versions serve, and with what weight."""

    model: str
    environment: str
    stable: int | None
    previous: int | None
    canary: int | None
    canary_weight: int
    revision: int
    updated_at: datetime | None
    stable_artifact_uri: str | None = None
    canary_artifact_uri: str | None = None
    previous_artifact_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "environment": self.environment,
            "stable": self.stable,
            "stable_artifact_uri": self.stable_artifact_uri,
            "previous": self.previous,
            "previous_artifact_uri": self.previous_artifact_uri,
            "canary": self.canary,
            "canary_artifact_uri": self.canary_artifact_uri,
            "canary_weight": self.canary_weight,
            "revision": self.revision,
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class ModelSummary:
    name: str
    description: str | None
    owner: str | None
    created_at: datetime
    latest_version: int
    # environment -> stable version (only environments that serve something)
    serving: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "created_at": iso(self.created_at),
            "latest_version": self.latest_version,
            "serving": dict(self.serving),
        }


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    model: str | None
    environment: str | None
    action: str
    from_version: int | None
    to_version: int | None
    revision: int | None
    reason: str | None
    request_id: str | None
    # a canary's traffic weight after a canary action; None for other actions
    weight: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "actor": self.actor,
            "model": self.model,
            "environment": self.environment,
            "action": self.action,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "revision": self.revision,
            "reason": self.reason,
            "request_id": self.request_id,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class PointerMove:
    """The outcome of promote/rollback: the new state and the audit row that records it."""

    state: EnvironmentState
    audit: AuditEntry
