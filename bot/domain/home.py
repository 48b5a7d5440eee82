"""What one person's App Home shows: the models they care about, how each is doing, what fires.

**Watching.** A person watches a model when they own it (registered it: `owner`), when they
did anything to it that the audit log records (registered, requested, approved, rejected,
promoted, rolled back, ran a canary: any audit event with them as the actor), or when they
subscribed a channel to its digest (`subscriptions.created_by`). Nothing to configure, and it
matches what people expect ("the models I work on"). When the registry is small
(`SMALL_REGISTRY` models or fewer), or the person watches nothing yet, the Home lists every
model instead (watched ones first), so a new user is never shown an empty page.

**Health.** Per environment the same line `/model status` shows for every model
(`bot.domain.monitoring.status.EnvironmentLine`: headline quality and latency, uptime, dataset drift,
number of firing alerts, stale data), computed here for an arbitrary page of models because
`status.overview` can only page through all models from the first. Firing alerts come from
`AlertActions.overview` in one query for the whole page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.domain.alerting.actions import AlertActions
from bot.domain.monitoring import status
from bot.domain.monitoring.samples import Samples
from bot.domain.policy import GroupResolver, Members, Policy, no_groups
from bot.domain.registry import Registry
from storage.queries import home as queries

SMALL_REGISTRY = 25
# Slack user ids: only these can have an App Home (CLI and CI actors are names like "ci-bot").
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
# who counts as using approvals in an environment whose approvers are "anyone"
APPROVAL_ACTIONS = ("promote_requested", "rollback_requested", "canary_promote_requested", "approve", "reject")
# one refresh publishes every Home in one outbox row, within its lease: keep it bounded
MAX_AUDIENCE = 50

Scope = Literal["watched", "all"]


@dataclass(frozen=True)
class HomeEnvironment:
    """What serves one environment (stable, canary and its weight) and how it is doing."""

    environment: str
    stable: int | None
    canary: int | None
    canary_weight: int
    health: status.EnvironmentLine


@dataclass(frozen=True)
class HomeModel:
    name: str
    description: str | None
    owner: str | None
    latest_version: int
    watched: bool
    environments: tuple[HomeEnvironment, ...]  # only environments that serve something or have data
    firing: tuple[Mapping[str, Any], ...]  # AlertActions.overview entries that fire (not silenced)


@dataclass(frozen=True)
class HomeModels:
    """One page of the Home's model list."""

    items: tuple[HomeModel, ...]
    scope: Scope  # "watched": only the person's models; "all": every model, watched first
    offset: int
    total: int  # models in scope
    watched_total: int
    registry_total: int

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        return end if end < self.total else None


def models_for(registry: Registry, user: str, query: status.StatusQuery, *, offset: int, limit: int) -> HomeModels:
    """A page of the models `user` watches (or of all models; see the module docstring), with
    what serves each environment, health lines and firing alerts."""
    with registry.reading() as session:
        registry_total, watched_total = queries.counts(session, user)
        scope: Scope = "watched" if watched_total and registry_total > SMALL_REGISTRY else "all"
        rows = queries.models_page(session, user, watched_only=scope == "watched", offset=offset, limit=limit)
        total = watched_total if scope == "watched" else registry_total
        deployments = queries.deployments_of(session, [m.id for m, _ in rows if m.id is not None])
    firing = _firing_by_model(registry, query.now, {m.name for m, _ in rows})
    samples = Samples(registry)
    items = []
    for model, mine in rows:
        envs = []
        for env in registry.environments:
            dep = deployments.get((model.id or 0, env))
            fires = [f for f in firing.get(model.name, ()) if f["environment"] == env]
            line = status.environment_line(samples, model.name, env, dep.stable_version if dep else None, query,
                                           len(fires))
            if line is None and (dep is None or dep.canary_version is None):
                continue
            envs.append(HomeEnvironment(
                environment=env, stable=dep.stable_version if dep else None,
                canary=dep.canary_version if dep else None, canary_weight=dep.canary_weight if dep else 0,
                health=line or _empty_line(env, dep.stable_version if dep else None)))
        items.append(HomeModel(
            name=model.name, description=model.description, owner=model.owner, latest_version=model.latest_version,
            watched=bool(mine), environments=tuple(envs), firing=tuple(firing.get(model.name, ())),
        ))
    return HomeModels(tuple(items), scope, offset, total, watched_total, registry_total)


def _empty_line(env: str, stable: int | None) -> status.EnvironmentLine:
    return status.EnvironmentLine(environment=env, stable=stable, quality=None, latency=None, uptime=None,
                                  dataset_drift=None, firing=0, newest=None, stale=False)


def _firing_by_model(registry: Registry, now: datetime, models: set[str]) -> dict[str, list[dict[str, Any]]]:
    """What fires now (silenced alerts excluded), by model name: one query for every model."""
    if not models:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for entry in AlertActions(registry).overview(now)["firing"]:
        if entry["model"] in models:
            out.setdefault(entry["model"], []).append(entry)
    return out


# ---- who should see a refreshed Home ----------------------------------------------------------------


def approval_audience(registry: Registry, policy: Policy, environment: str,
                      groups: GroupResolver = no_groups) -> list[str]:
    """The Slack users whose "waiting for your approval" list changes when a request of this
    environment opens or is decided: its approvers and the admins (user groups resolved). When
    anyone may approve there, the people who requested or voted in it lately stand in for
    "everyone", who cannot be listed."""
    env_policy = policy.environments.get(environment)
    if env_policy is None:
        return []
    users: set[str] = set()
    for members in (env_policy.approvers, policy.admins):
        users |= _members(members, groups)
    if env_policy.approvers.open:
        with registry.reading() as session:
            users |= set(queries.recent_actors(session, environment, APPROVAL_ACTIONS, MAX_AUDIENCE * 5))
    return sorted(u for u in users if SLACK_USER.match(u))[:MAX_AUDIENCE]


def admin_audience(policy: Policy, groups: GroupResolver = no_groups) -> list[str]:
    """The admins (user groups resolved) who have an App Home."""
    return sorted(u for u in _members(policy.admins, groups) if SLACK_USER.match(u))[:MAX_AUDIENCE]


def _members(members: Members, groups: GroupResolver) -> set[str]:
    out: set[str] = set()
    for entry in members.entries:
        if entry.startswith("@"):
            out |= set(groups(entry[1:]))
        else:
            out.add(entry)
    return out
