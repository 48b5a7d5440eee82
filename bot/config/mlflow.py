"""`[mlflow]` in modelbot.toml: follow an MLflow registry live and write decisions back to it.

    [mlflow]
    tracking_uri = "http://mlflow.internal:5000"
    token_env = "MLFLOW_TRACKING_TOKEN"              # optional bearer token
    webhook_secret_env = "MODELBOT_MLFLOW_WEBHOOK_SECRET"
    new_version_channel = "C0MODELS"                 # where "new version" cards go
    models = ["churn", "fraud-*"]                    # globs; default: every registered model
    aliases = { staging = "staging", production = "champion" }
    canary_alias_suffix = "-canary"                  # production canary → alias "champion-canary"
    poll_interval = "1m"                             # reconciliation when webhooks are missing or lost
    external_moves = "report"                        # report | accept | revert

The policy file registers the section; it is parsed here, by whoever needs it (`serve` at
start-up, the delivery worker, the scheduler's poll, `modelbot mlflow …`), with errors that
name the file and the line of the offending key. Secrets are never in the file: only the
names of the environment variables that hold them (read through `bot.config.settings`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.config.settings import ConfigError
from bot.config.toml_file import PolicyFile
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.mlflow.settings import (
    DEFAULT_CANARY_SUFFIX,
    DEFAULT_POLL_INTERVAL,
    EXTERNAL_MOVES,
    SECTION,
    SyncSettings,
)
from bot.domain.mlflow.source import MlflowConfigError, check_tracking_uri
from bot.domain.policy import Policy

KEYS = {"tracking_uri", "token_env", "webhook_secret_env", "new_version_channel", "models", "aliases",
        "canary_alias_suffix", "poll_interval", "external_moves"}
MIN_POLL_INTERVAL = timedelta(seconds=5)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
# MLflow's own rule for alias names (mlflow.utils.validation), kept to ASCII
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_RESERVED_ALIAS = re.compile(r"^(latest|[vV]\d+)$", re.IGNORECASE)
_GLOB = re.compile(r"^[A-Za-z0-9._\-*?\[\]!]{1,64}$")


def mlflow_config(policy: Policy) -> SyncSettings | None:
    """The `[mlflow]` section of a loaded policy, or None when there is none (no sync)."""
    raw = policy.sections.get(SECTION)
    if raw is None:
        return None
    try:
        return parse_mlflow(raw, None, environments=policy.environment_names)
    except ConfigError:  # read the file again only to say on which line
        return parse_mlflow(raw, _file_of(policy), environments=policy.environment_names)


def parse_mlflow(raw: Any, file: PolicyFile | None, *, environments: Sequence[str]) -> SyncSettings:
    """Validate `[mlflow]`; a ConfigError names the file and the line of the offending key."""

    def error(message: str, key: str | None = None) -> ConfigError:
        if file is None:
            return ConfigError(f"[mlflow] {message}")
        return file.error(message, key, SECTION)

    if not isinstance(raw, dict):
        raise error("[mlflow] must be a table.")
    for key in raw:
        if key not in KEYS:
            raise error(f"unknown key '{key}' in [mlflow]; known: {', '.join(sorted(KEYS))}.", key)
    uri = raw.get("tracking_uri")
    if not isinstance(uri, str):
        raise error("tracking_uri is required: the MLflow tracking server's address, like "
                    "\"http://mlflow.internal:5000\".", "tracking_uri" if "tracking_uri" in raw else None)
    try:
        tracking_uri = check_tracking_uri(uri)
    except MlflowConfigError as exc:
        raise error(str(exc), "tracking_uri") from None
    token_env = _env_name(raw, "token_env", error)
    secret_env = _env_name(raw, "webhook_secret_env", error)
    channel = raw.get("new_version_channel")
    if channel is not None and (not isinstance(channel, str) or not _CHANNEL.match(channel)):
        raise error("new_version_channel must be a Slack channel id like \"C0MODELS\" (open the channel's details "
                    "to copy it).", "new_version_channel")
    models = raw.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) and _GLOB.match(m) for m in models):
        raise error("models must be a list of model names or globs, like [\"churn\", \"fraud-*\"].", "models")
    aliases = _aliases(raw.get("aliases"), environments, error)
    suffix = raw.get("canary_alias_suffix", DEFAULT_CANARY_SUFFIX)
    if not isinstance(suffix, str) or (suffix and not _ALIAS.match(suffix)):
        raise error("canary_alias_suffix must be letters, digits, '-' or '_', like \"-canary\" (or \"\" for no "
                    "canary aliases).", "canary_alias_suffix")
    clash = {a + suffix for a in aliases.values()} & set(aliases.values()) if suffix else set()
    if clash:
        raise error(f"canary_alias_suffix makes alias '{sorted(clash)[0]}', which is already the alias of an "
                    "environment; choose other aliases or another canary_alias_suffix.",
                    "canary_alias_suffix" if "canary_alias_suffix" in raw else "aliases")
    poll = DEFAULT_POLL_INTERVAL
    if "poll_interval" in raw:
        try:
            poll = parse_duration(raw["poll_interval"])
        except InvalidInput as exc:
            raise error(exc.message, "poll_interval") from None
        if poll < MIN_POLL_INTERVAL:
            raise error("poll_interval must be at least 5s: every poll reads every followed model.", "poll_interval")
    moves = raw.get("external_moves", "report")
    if moves not in EXTERNAL_MOVES:
        raise error(f"external_moves must be one of {', '.join(EXTERNAL_MOVES)}: report (tell Slack), accept "
                    "(the pointer follows) or revert (put the alias back).", "external_moves")
    return SyncSettings(
        tracking_uri=tracking_uri, aliases=aliases, token_env=token_env, webhook_secret_env=secret_env,
        new_version_channel=channel, models=tuple(models), canary_alias_suffix=suffix, poll_interval=poll,
        external_moves=moves,
    )


def _env_name(raw: dict[str, Any], key: str, error: Any) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise error(f"{key} must name an environment variable, like \"MODELBOT_MLFLOW_WEBHOOK_SECRET\" (the secret "
                    "itself never goes into this file).", key)
    return value


def _aliases(raw: Any, environments: Sequence[str], error: Any) -> dict[str, str]:
    """environment → alias; by default each environment writes the alias of its own name."""
    if raw is None:
        return {env: env for env in environments}
    example = "aliases = { staging = \"staging\", production = \"champion\" }"
    if not isinstance(raw, dict):
        raise error(f"aliases must be a table of environment = \"alias\", like {example}.", "aliases")
    out: dict[str, str] = {}
    for env, alias in raw.items():
        if env not in environments:
            raise error(f"aliases names environment \"{env}\", which the policy does not define; use one of "
                        f"{', '.join(environments)}.", "aliases")
        if not isinstance(alias, str) or not _ALIAS.match(alias) or _RESERVED_ALIAS.match(alias):
            raise error(f"the alias of {env} must be letters, digits, '-' or '_' and not \"latest\" or \"v7\" "
                        f"(MLflow reserves those), like {example}.", "aliases")
        if alias in out.values():
            raise error(f"alias \"{alias}\" is given to two environments; each needs its own.", "aliases")
        out[env] = alias
    # environment order, so cards and status list them as the policy does
    return {env: out[env] for env in environments if env in out}


def _file_of(policy: Policy) -> PolicyFile | None:
    """The policy file again, so errors found after loading still point at a line."""
    path = Path(policy.source)
    try:
        return PolicyFile(path, path.read_text(encoding="utf-8"))
    except OSError:
        return None
