"""Load and validate `modelbot.toml`. A bad file stops start-up naming the file, the line and
what to write instead: people edit this file by hand, usually in a hurry."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from bot.config.settings import ConfigError
from bot.config.toml_file import PolicyFile
from bot.domain import names
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.gates import parse_gate
from bot.domain.policy import (
    DEFAULT_CANARY_STEPS,
    EnvironmentPolicy,
    Members,
    Policy,
    Webhook,
    default_policy,
)

TOP_KEYS = {"roles", "environments", "webhooks", "metrics", "announce_channel", "monitoring", "alerts", "sources",
            "retention", "subscriptions", "drift", "api", "mlflow"}
# Parsed by the features that own them (bot/sources, bot/jobs, alerting), with `PolicyFile.error`.
FEATURE_SECTIONS = {"monitoring", "alerts", "sources", "retention", "subscriptions", "drift", "api", "mlflow"}
ENV_KEYS = {"approvals", "approvers", "allow_self_approval", "approval_channel", "expires_after", "requires", "gates",
            "rollback_approvals", "canary_approvals", "canary_steps"}
# the keys that ask for approvals, each of which must be possible to meet
APPROVAL_KEYS = ("approvals", "rollback_approvals", "canary_approvals")
ROLE_KEYS = {"admins", "deployers"}
WEBHOOK_KEYS = {"url", "secret_env", "events"}
WEBHOOK_EVENTS = {"deployment.changed", "promotion.requested", "promotion.decided", "canary.changed"}
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_MEMBER = re.compile(r"^(@[a-z0-9][a-z0-9._-]{0,79}|[A-Za-z0-9][A-Za-z0-9._:-]{0,127})$")


def load_policy(path: Path, *, required: bool = False) -> Policy:
    if not path.exists():
        if required:
            raise ConfigError(f"{path}: policy file not found (MODELBOT_CONFIG points here); copy "
                              "modelbot.example.toml to start.")
        return default_policy()
    text = path.read_text(encoding="utf-8")
    file = PolicyFile(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\(at line (\d+), column \d+\)", message)
        if where:
            message = message.replace(where.group(0), "").strip()
            raise ConfigError(f"{path}:{where.group(1)}: {message} — check quotes, brackets and commas on that "
                              "line.") from None
        raise ConfigError(f"{path}: {message} — check quotes, brackets and commas.") from None
    return parse_policy(data, file)


def parse_policy(data: dict[str, Any], file: PolicyFile) -> Policy:
    for key in data:
        if key not in TOP_KEYS:
            raise file.error(f"unknown section or key '{key}'; known: {', '.join(sorted(TOP_KEYS))}.", key, None)
    roles = data.get("roles", {})
    _expect_table(roles, "roles", file)
    for key in roles:
        if key not in ROLE_KEYS:
            raise file.error(f"unknown role '{key}' in [roles]; use admins or deployers.", key, "roles")
    admins = _members(roles.get("admins"), "admins", "roles", file, default=Members())
    deployers = _members(roles.get("deployers"), "deployers", "roles", file, default=Members(open=True))

    raw_envs = data.get("environments") or {"staging": {}, "production": {}}
    _expect_table(raw_envs, "environments", file)
    environments: dict[str, EnvironmentPolicy] = {}
    for name, raw in raw_envs.items():
        section = f"environments.{name}"
        try:
            names.environment_name(name)
        except InvalidInput as exc:
            raise file.error(exc.message, None, section) from None
        _expect_table(raw, section, file)
        environments[name] = _environment(name, raw, section, file)
    for env in environments.values():
        _check_satisfiable(env, admins, deployers, file)
        if env.requires and env.requires not in environments:
            raise file.error(f"requires = \"{env.requires}\" names no environment; use one of "
                             f"{', '.join(environments)}.", "requires", f"environments.{env.name}")

    webhooks = []
    raw_hooks = data.get("webhooks", [])
    if not isinstance(raw_hooks, list):
        raise file.error("webhooks must be a list of [[webhooks]] tables.", "webhooks")
    for raw in raw_hooks:
        webhooks.append(_webhook(raw, file))

    metrics = data.get("metrics", {})
    _expect_table(metrics, "metrics", file)
    directions = metrics.get("directions", {})
    _expect_table(directions, "metrics.directions", file)
    for metric, direction in directions.items():
        if direction not in ("higher", "lower"):
            raise file.error(f"direction of {metric} must be \"higher\" or \"lower\".", metric, "metrics.directions")
    announce = data.get("announce_channel")
    if announce is not None and (not isinstance(announce, str) or not _CHANNEL.match(announce)):
        raise file.error("announce_channel must be a Slack channel id like \"C0123ABCD\".", "announce_channel")
    # imported on use: `modelbot show` reads a policy without sources or alerts, and should not pay for them
    if "sources" in data:
        from bot.config.sources import parse_sources

        parse_sources(data["sources"], file, environments=tuple(environments))
    if "alerts" in data:
        from bot.config.alerts import parse_alerts

        parse_alerts(data["alerts"], file, environments=tuple(environments))
    return Policy(
        environments=environments,
        admins=admins,
        deployers=deployers,
        webhooks=tuple(webhooks),
        metric_directions=dict(directions),
        announce_channel=announce,
        source=str(file.path),
        sections={k: v for k, v in data.items() if k in FEATURE_SECTIONS},
    )


def _environment(name: str, raw: dict[str, Any], section: str, file: PolicyFile) -> EnvironmentPolicy:
    for key in raw:
        if key not in ENV_KEYS:
            raise file.error(f"unknown key '{key}' in [{section}]; known: {', '.join(sorted(ENV_KEYS))}.", key, section)
    approvals = _int(raw.get("approvals", 0), "approvals", section, file, 0, 10)
    rollback_approvals = _int(raw.get("rollback_approvals", 0), "rollback_approvals", section, file, 0, 10)
    canary_approvals = _int(raw.get("canary_approvals", 0), "canary_approvals", section, file, 0, 10)
    approvers = _members(raw.get("approvers"), "approvers", section, file, default=Members(open=True))
    channel = raw.get("approval_channel")
    if channel is not None and (not isinstance(channel, str) or not _CHANNEL.match(channel)):
        raise file.error("approval_channel must be a Slack channel id like \"C0123ABCD\" (open the channel's "
                         "details to copy it).", "approval_channel", section)
    if (approvals or rollback_approvals or canary_approvals) and channel is None:
        raise file.error(f"[{section}] needs approvals but has no approval_channel; add approval_channel = "
                         "\"C0123ABCD\".", "approvals", section)
    allow_self = raw.get("allow_self_approval", False)
    if not isinstance(allow_self, bool):
        raise file.error("allow_self_approval must be true or false.", "allow_self_approval", section)
    try:
        expires = parse_duration(raw.get("expires_after", "24h"))
    except InvalidInput as exc:
        raise file.error(exc.message, "expires_after", section) from None
    requires = raw.get("requires")
    if requires is not None and not isinstance(requires, str):
        raise file.error("requires must be an environment name in quotes, like \"staging\".", "requires", section)
    raw_gates = raw.get("gates", [])
    if not isinstance(raw_gates, list) or not all(isinstance(g, str) for g in raw_gates):
        raise file.error("gates must be a list of strings, like [\"auc >= current.auc - 0.005\"].", "gates", section)
    gates = []
    for text in raw_gates:
        try:
            gates.append(parse_gate(text))
        except InvalidInput as exc:
            raise file.error(exc.message, "gates", section) from None
    steps = raw.get("canary_steps", list(DEFAULT_CANARY_STEPS))
    if (not isinstance(steps, list) or not steps or not all(isinstance(s, int) and 1 <= s <= 100 for s in steps)
            or steps != sorted(set(steps)) or steps[-1] != 100):
        raise file.error("canary_steps must be increasing percentages ending at 100, like [5, 25, 50, 100].",
                         "canary_steps", section)
    return EnvironmentPolicy(
        name=name, approvals=approvals, approvers=approvers, allow_self_approval=allow_self,
        approval_channel=channel, expires_after=expires, requires=requires, gates=tuple(gates),
        rollback_approvals=rollback_approvals, canary_approvals=canary_approvals, canary_steps=tuple(steps),
    )


def _check_satisfiable(env: EnvironmentPolicy, admins: Members, deployers: Members, file: PolicyFile) -> None:
    """Approvals that can never be met would leave every request to expire: refuse them at start.

    Approvers of an environment are its `approvers` and the admins, each counted once; without
    `allow_self_approval` the requester's own vote does not count, so when every possible
    requester (deployers and admins) is also an approver, one fewer vote is possible. A @group
    or an open list has members we cannot count before Slack answers: it is taken as enough.
    """
    named = (*env.approvers.entries, *admins.entries)
    if env.approvers.open or any(entry.startswith("@") for entry in named):
        return
    people = set(named)
    possible = len(people)
    requesters_counted = not deployers.open and not any(e.startswith("@") for e in deployers.entries)
    if not env.allow_self_approval and requesters_counted:
        requesters = set(deployers.entries) | set(admins.entries)
        if requesters and requesters <= people:
            possible -= 1  # whoever asks cannot approve their own request
    for key in APPROVAL_KEYS:
        needed = getattr(env, key)
        if needed > possible:
            listed = ", ".join(sorted(people)) or "nobody"
            why = " (the requester cannot approve their own request: allow_self_approval = false)" \
                if possible < len(people) else ""
            raise file.error(f"{key} = {needed} can never be met: at most {possible} of the people who may approve in "
                             f"[environments.{env.name}] ({listed}) can vote on one request{why}. Lower {key}, or "
                             "add approvers.", key, f"environments.{env.name}")


def _webhook(raw: Any, file: PolicyFile) -> Webhook:
    if not isinstance(raw, dict):
        raise file.error("each [[webhooks]] entry must be a table with url, secret_env and events.", "webhooks")
    for key in raw:
        if key not in WEBHOOK_KEYS:
            raise file.error(f"unknown key '{key}' in [[webhooks]]; known: url, secret_env, events.", key, "webhooks")
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise file.error("webhook url must start with https:// (or http:// for local receivers).", "url", "webhooks")
    secret_env = raw.get("secret_env")
    if secret_env is not None and (not isinstance(secret_env, str) or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", secret_env)):
        raise file.error("secret_env must name an environment variable, like \"MODELBOT_WEBHOOK_SECRET\".",
                         "secret_env", "webhooks")
    events = raw.get("events", ["deployment.changed"])
    if not isinstance(events, list) or not events or any(e not in WEBHOOK_EVENTS for e in events):
        raise file.error(f"webhook events must be a list from {', '.join(sorted(WEBHOOK_EVENTS))}.", "events", "webhooks")
    return Webhook(url=url, secret_env=secret_env, events=tuple(events))


def _members(raw: Any, key: str, section: str, file: PolicyFile, *, default: Members) -> Members:
    if raw is None:
        return default
    if not isinstance(raw, list) or not all(isinstance(x, str) and _MEMBER.match(x) for x in raw):
        raise file.error(f"{key} must be a list of Slack user ids or @group handles, like [\"U0123ABCD\", \"@ml-leads\"].",
                         key, section)
    return Members(entries=tuple(raw), open=False)


def _int(raw: Any, key: str, section: str, file: PolicyFile, low: int, high: int) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
        raise file.error(f"{key} must be a whole number from {low} to {high}.", key, section)
    return raw


def _expect_table(value: Any, section: str, file: PolicyFile) -> None:
    if not isinstance(value, dict):
        raise file.error(f"[{section}] must be a table.", None, section)
