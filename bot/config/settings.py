"""Settings from the environment, validated once at start-up: the one place that reads
environment variables (tests/test_architecture.py checks it; the README lists every one).

A wrong value stops start-up with one line naming the variable and what to write instead.
Secrets are kept out of `repr()` so they cannot reach a log by accident.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from storage.db import DEFAULT_URL, DatabaseSettings

MAX_LEADER_INTERVAL_S = 10.0
OUTBOX_PREFIX = "MODELBOT_OUTBOX_"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    db_lock_timeout_s: float = 5.0
    config_path: Path = Path("modelbot.toml")
    # True when MODELBOT_CONFIG names a file explicitly: then a missing file is an error
    config_required: bool = False
    slack_api_url: str = "https://slack.com/api/"
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    # REST API: requests per second per token (a burst of 60 allowed)
    api_rate_per_second: float = 20.0
    # who acts in CLI verbs that take no --actor (tokens, register); None: the login name
    actor: str | None = None
    # `modelbot serve`: run the scheduler (leader-elected) and the outbox worker in the process
    scheduler: bool = True
    scheduler_leader_interval_s: float = 5.0
    delivery: bool = True
    # test-only: every digest fires every N seconds instead of its schedule
    digest_test_every_s: int | None = None
    # `modelbot shell`: who you are without --user (None: the shell's own user)
    shell_user: str | None = None
    # the terminal allows colour: NO_COLOR unset or empty (no-color.org) and TERM is not `dumb`
    terminal_colour: bool = True
    # MODELBOT_OUTBOX_* as set, parsed and checked by the outbox worker's settings (bot/delivery/settings.py)
    outbox: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def database(self) -> DatabaseSettings:
        return DatabaseSettings(url=self.database_url, lock_timeout_s=self.db_lock_timeout_s)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        api_url = env.get("MODELBOT_SLACK_API_URL") or "https://slack.com/api/"
        if not api_url.startswith(("http://", "https://")):
            raise ConfigError("MODELBOT_SLACK_API_URL must be an http(s) URL, for example https://slack.com/api/.")
        if not api_url.endswith("/"):
            api_url += "/"
        return cls(
            database_url=env.get("MODELBOT_DATABASE_URL") or DEFAULT_URL,
            db_lock_timeout_s=_positive_float(env, "MODELBOT_DB_LOCK_TIMEOUT", 5.0),
            config_path=Path(env.get("MODELBOT_CONFIG") or "modelbot.toml"),
            config_required=bool(env.get("MODELBOT_CONFIG")),
            slack_api_url=api_url,
            slack_bot_token=_token(env, "SLACK_BOT_TOKEN", ("xoxb-",)),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_app_token=_token(env, "SLACK_APP_TOKEN", ("xapp-",)),
            api_rate_per_second=_positive_float(env, "MODELBOT_API_RATE_PER_SECOND", 20.0, "requests per second"),
            actor=env.get("MODELBOT_ACTOR") or None,
            scheduler=_switch(env, "MODELBOT_SCHEDULER"),
            scheduler_leader_interval_s=min(MAX_LEADER_INTERVAL_S, max(
                0.1, _positive_float(env, "MODELBOT_SCHEDULER_LEADER_INTERVAL_S", 5.0))),
            delivery=_switch(env, "MODELBOT_DELIVERY"),
            digest_test_every_s=_whole(env, "MODELBOT_TEST_DIGEST_EVERY_S"),
            shell_user=env.get("MODELBOT_SHELL_USER") or None,
            terminal_colour=not env.get("NO_COLOR") and env.get("TERM") != "dumb",
            outbox={name: value for name, value in env.items() if name.startswith(OUTBOX_PREFIX)},
        )


def _switch(env: Mapping[str, str], name: str) -> bool:
    """On unless set to off (0, false, no)."""
    return (env.get(name) or "").strip().lower() not in ("off", "0", "false", "no")


def _whole(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if not raw:
        return None
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a whole number of seconds, for example {name}=2.")
    return int(raw)


def _positive_float(env: Mapping[str, str], name: str, default: float, unit: str = "seconds") -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of {unit}, for example {name}=5.") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number of {unit}, for example {name}=5.")
    return value


def _token(env: Mapping[str, str], name: str, prefixes: tuple[str, ...]) -> str | None:
    raw = env.get(name)
    if not raw:
        return None
    if not raw.startswith(prefixes):
        # never echo the value: it may be a real secret pasted into the wrong variable
        raise ConfigError(f"{name} does not look like a Slack token: it should start with {prefixes[0]}.")
    return raw


def named_secret(name: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The value of a variable named elsewhere: a secret the policy file names (`[mlflow] token_env`,
    a webhook's `secret_env`), or one of MLflow's own client variables (`MLFLOW_TRACKING_*`, read as
    MLflow reads them). Read at use, so rotating a secret needs a restart and no migration.
    Callers never log it; an empty variable counts as unset."""
    if not name:
        return None
    env = os.environ if env is None else env
    return env.get(name) or None
