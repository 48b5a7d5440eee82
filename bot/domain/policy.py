"""Who may do what, per environment: the rules the policy file (`modelbot.toml`) sets.

Without a policy file modelbot is open, like a fresh install of the tools people know:
everyone may request and approve, and no environment needs approvals. Writing a policy file
is how a team turns on four-eyes, gates and roles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.domain.gates import Gate

DEFAULT_CANARY_STEPS = (5, 25, 50, 100)
# Resolves "@ml-leads" to the user ids in that Slack user group (cached by the caller).
GroupResolver = Callable[[str], frozenset[str]]


def no_groups(handle: str) -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True)
class Members:
    """A list of user ids / actor names and `@group` handles. Empty with `open=True` means anyone."""

    entries: tuple[str, ...] = ()
    open: bool = False

    def contains(self, actor: str, groups: GroupResolver = no_groups) -> bool:
        if self.open:
            return True
        for entry in self.entries:
            if entry.startswith("@"):
                if actor in groups(entry[1:]):
                    return True
            elif entry == actor:
                return True
        return False

    def describe(self) -> str:
        return "anyone" if self.open else ", ".join(self.entries) or "nobody"


@dataclass(frozen=True)
class EnvironmentPolicy:
    name: str
    approvals: int = 0
    approvers: Members = field(default_factory=lambda: Members(open=True))
    allow_self_approval: bool = False
    approval_channel: str | None = None
    expires_after: timedelta = timedelta(hours=24)
    requires: str | None = None
    gates: tuple[Gate, ...] = ()
    rollback_approvals: int = 0
    canary_steps: tuple[int, ...] = DEFAULT_CANARY_STEPS


@dataclass(frozen=True)
class Webhook:
    url: str
    secret_env: str | None
    events: tuple[str, ...] = ("deployment.changed",)


@dataclass(frozen=True)
class Policy:
    environments: dict[str, EnvironmentPolicy]
    admins: Members = field(default_factory=Members)
    deployers: Members = field(default_factory=lambda: Members(open=True))
    webhooks: tuple[Webhook, ...] = ()
    metric_directions: dict[str, str] = field(default_factory=dict)
    announce_channel: str | None = None
    source: str = "built-in defaults"
    # sections other features parse themselves (sources, monitoring, alerts, …), as loaded
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def environment_names(self) -> tuple[str, ...]:
        return tuple(self.environments)

    def env(self, name: str) -> EnvironmentPolicy:
        return self.environments[name]

    def is_admin(self, actor: str, groups: GroupResolver = no_groups) -> bool:
        return self.admins.contains(actor, groups)

    def may_deploy(self, actor: str, groups: GroupResolver = no_groups) -> bool:
        return self.is_admin(actor, groups) or self.deployers.contains(actor, groups)

    def may_approve(self, env: str, actor: str, groups: GroupResolver = no_groups) -> bool:
        return self.is_admin(actor, groups) or self.env(env).approvers.contains(actor, groups)

    def group_handles(self) -> set[str]:
        handles: set[str] = set()
        members: Iterable[Members] = (self.admins, self.deployers, *(e.approvers for e in self.environments.values()))
        for m in members:
            handles.update(entry[1:] for entry in m.entries if entry.startswith("@"))
        return handles


def default_policy() -> Policy:
    return Policy(environments={name: EnvironmentPolicy(name) for name in ("staging", "production")})
