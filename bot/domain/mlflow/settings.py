"""What `[mlflow]` in modelbot.toml decides, as the domain uses it (parsed in `bot.config.mlflow`).

Which registered models are followed, which MLflow alias each environment's pointer writes,
and what happens when an alias is moved in MLflow directly. Secrets are not here: only the
names of the environment variables that hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase

SECTION = "mlflow"
EXTERNAL_MOVES = ("report", "accept", "revert")
DEFAULT_POLL_INTERVAL = timedelta(minutes=1)
DEFAULT_CANARY_SUFFIX = "-canary"


@dataclass(frozen=True)
class AliasTarget:
    """What one MLflow alias mirrors: the stable pointer of an environment, or its canary."""

    environment: str
    canary: bool = False


@dataclass(frozen=True)
class SyncSettings:
    tracking_uri: str
    # modelbot environment → MLflow alias its stable pointer writes
    aliases: Mapping[str, str] = field(default_factory=dict)
    token_env: str | None = None
    webhook_secret_env: str | None = None
    new_version_channel: str | None = None
    # globs over registered model names, matched regardless of case; empty: every model
    models: tuple[str, ...] = ()
    # a production canary writes alias "champion" + this suffix; empty: canaries write no alias
    canary_alias_suffix: str = DEFAULT_CANARY_SUFFIX
    poll_interval: timedelta = DEFAULT_POLL_INTERVAL
    external_moves: str = "report"

    def follows(self, model: str) -> bool:
        if not self.models:
            return True
        name = model.lower()
        return any(fnmatchcase(name, pattern.lower()) for pattern in self.models)

    def alias_of(self, environment: str) -> str | None:
        return self.aliases.get(environment)

    def canary_alias_of(self, environment: str) -> str | None:
        alias = self.aliases.get(environment)
        return alias + self.canary_alias_suffix if alias and self.canary_alias_suffix else None

    def targets(self) -> dict[str, AliasTarget]:
        """Every alias modelbot writes, with what it mirrors (stable aliases first, in environment order)."""
        out = {alias: AliasTarget(env) for env, alias in self.aliases.items()}
        for env in self.aliases:
            canary = self.canary_alias_of(env)
            if canary is not None:
                out[canary] = AliasTarget(env, canary=True)
        return out

    def describe_models(self) -> str:
        return ", ".join(self.models) if self.models else "every registered model"
