"""Wiring shared by every front end: open the database (upgrading it) and build the services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import Settings
from bot.domain.deployments import Deployments
from bot.domain.policy import GroupResolver, Policy, no_groups
from bot.domain.registry import Registry, utc_now
from bot.policy_file import load_policy
from storage.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    policy: Policy
    deployments: Deployments
    clock: Callable[[], datetime] = field(default=utc_now)

    def close(self) -> None:
        self.db.dispose()


def open_services(
    settings: Settings,
    *,
    upgrade: bool = True,
    policy: Policy | None = None,
    groups: GroupResolver = no_groups,
    clock: Callable[[], datetime] = utc_now,
) -> Services:
    """Policy errors surface before the database is touched (ConfigError with file:line)."""
    policy = policy or load_policy(settings.config_path, required=settings.config_required)
    db = Database(settings.database)
    if upgrade:
        db.upgrade()
    registry = Registry(db, environments=policy.environment_names, clock=clock)
    deployments = Deployments(registry, policy, groups=groups, clock=clock)
    return Services(settings=settings, db=db, registry=registry, policy=policy, deployments=deployments, clock=clock)
