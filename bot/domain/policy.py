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
    # approvals needed to start a canary beside the stable version (stepping it needs none;
    # promoting it to 100 % needs `approvals`)
    canary_approvals: int = 0
    canary_steps: tuple[int, ...] = DEFAULT_CANARY_STEPS

    def approvals_for(self, kind: str) -> int:
        """Approvals a change of this kind needs here (the kinds of `bot.domain.deployments.REQUEST_KINDS`)."""
        if kind == "rollback":
            return self.rollback_approvals
        if kind == "canary_start":
            return self.canary_approvals
        return self.approvals


@dataclass(frozen=True)
class Roles:
    """What one person may do, with the policy's @groups already resolved.

    Resolving a group may call Slack, so decisions compute this before their database
    transaction opens: no network call ever happens while a write lock is held.
    """

    actor: str
    admin: bool = False
    deployer: bool = False
    approves: frozenset[str] = frozenset()  # environments this person may approve in

    def may_approve(self, environment: str) -> bool:
        return self.admin or environment in self.approves


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

    def roles(self, actor: str, groups: GroupResolver = no_groups) -> Roles:
        """Everything `actor` may do, resolving each @group the policy names (at most once each)."""
        known: dict[str, frozenset[str]] = {}

        def resolve(handle: str) -> frozenset[str]:
            if handle not in known:
                known[handle] = groups(handle)
            return known[handle]

        admin = self.admins.contains(actor, resolve)
        return Roles(
            actor=actor, admin=admin, deployer=admin or self.deployers.contains(actor, resolve),
            approves=frozenset(name for name, env in self.environments.items() if env.approvers.contains(actor, resolve)),
        )

    def group_handles(self) -> set[str]:
        handles: set[str] = set()
        members: Iterable[Members] = (self.admins, self.deployers, *(e.approvers for e in self.environments.values()))
        for m in members:
            handles.update(entry[1:] for entry in m.entries if entry.startswith("@"))
        return handles


def default_policy() -> Policy:
    return Policy(environments={name: EnvironmentPolicy(name) for name in ("staging", "production")})
