"""Wiring shared by every front end: open the database (upgrading it) and build the services."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.config.settings import Settings
from bot.domain.channels import ChannelResolver, no_channel_names
from bot.domain.policy import GroupResolver, Policy, no_groups
from bot.domain.registry import Registry, utc_now
from storage.db import Database

if TYPE_CHECKING:
    from bot.domain.deployments import Deployments


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    policy: Policy
    clock: Callable[[], datetime] = field(default=utc_now)
    groups: GroupResolver = field(default=no_groups)
    # `#name` → channel id through Slack (bot/slack/channels.py) when a bot token is configured
    channels: ChannelResolver = field(default=no_channel_names)
    _deployments: Deployments | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def deployments(self) -> Deployments:
        """Built on first use: a read-only command (`modelbot show`) never imports the
        promotion/approval machinery. Built once; every caller gets the same instance."""
        if self._deployments is None:
            with self._lock:
                if self._deployments is None:
                    from bot.domain.deployments import Deployments

                    self._deployments = Deployments(self.registry, self.policy, groups=self.groups, clock=self.clock)
        return self._deployments

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
    if policy is None:
        from bot.config.policy_file import load_policy

        policy = load_policy(settings.config_path, required=settings.config_required)
    db = Database(settings.database)
    if upgrade:
        db.upgrade()
    registry = Registry(db, environments=policy.environment_names, clock=clock)
    return Services(settings=settings, db=db, registry=registry, policy=policy, clock=clock, groups=groups)
