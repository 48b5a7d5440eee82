"""The outbox worker's settings, from the `MODELBOT_OUTBOX_*` variables the settings module read.

Defaults suit production (Slack's 1 post per second per channel, a 10 s HTTP timeout, a
60 s lease). Tests and drills shorten them through the same variables, so a real
`modelbot deliver` process can be killed and restarted inside a test without waiting minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.config.settings import ConfigError
from bot.delivery.circuits import CircuitSettings


@dataclass(frozen=True)
class DeliverySettings:
    # how long a claimed row belongs to one worker; another worker may take it over afterwards
    lease_seconds: float = 60.0
    # per Slack or webhook HTTP call; whole seconds because slack_sdk's WebClient takes an int
    http_timeout_s: int = 10
    # how long an idle worker waits before looking for due rows again
    poll_seconds: float = 1.0
    # rows sent in parallel by one worker per lane (slack, webhook, …), each of a different destination
    concurrency: int = 4
    # seconds between chat.postMessage calls into one channel (Slack: about 1 per second)
    post_interval_s: float = 1.0
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    # a row still failing with retryable errors this long after it was written is marked failed
    give_up_after: timedelta = timedelta(hours=24)
    # circuit breakers: consecutive failures that pause a destination, and the pause (doubling to the cap)
    circuits: CircuitSettings = field(default_factory=CircuitSettings)

    def __post_init__(self) -> None:
        if self.lease_seconds < 2 * self.http_timeout_s:
            raise ConfigError(
                f"MODELBOT_OUTBOX_LEASE_SECONDS ({self.lease_seconds:g}) must be at least twice "
                f"MODELBOT_OUTBOX_HTTP_TIMEOUT ({self.http_timeout_s}): a send may need a history lookup "
                "and the post itself before the lease runs out."
            )
        if self.backoff_cap_s < self.backoff_base_s:
            raise ConfigError("MODELBOT_OUTBOX_BACKOFF_CAP must not be smaller than MODELBOT_OUTBOX_BACKOFF_BASE.")
        if self.circuits.pause_cap_s < self.circuits.pause_base_s:
            raise ConfigError("MODELBOT_OUTBOX_CIRCUIT_PAUSE_CAP must not be smaller than "
                              "MODELBOT_OUTBOX_CIRCUIT_PAUSE.")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeliverySettings:
        """From `Settings.outbox` (or any mapping of those variables): defaults for what is unset."""
        defaults = cls()
        return cls(
            lease_seconds=_number(env, "MODELBOT_OUTBOX_LEASE_SECONDS", defaults.lease_seconds),
            http_timeout_s=int(_number(env, "MODELBOT_OUTBOX_HTTP_TIMEOUT", defaults.http_timeout_s, whole=True)),
            poll_seconds=_number(env, "MODELBOT_OUTBOX_POLL_SECONDS", defaults.poll_seconds),
            concurrency=int(_number(env, "MODELBOT_OUTBOX_CONCURRENCY", defaults.concurrency, whole=True)),
            post_interval_s=_number(env, "MODELBOT_OUTBOX_POST_INTERVAL", defaults.post_interval_s, zero_ok=True),
            backoff_base_s=_number(env, "MODELBOT_OUTBOX_BACKOFF_BASE", defaults.backoff_base_s),
            backoff_cap_s=_number(env, "MODELBOT_OUTBOX_BACKOFF_CAP", defaults.backoff_cap_s),
            give_up_after=timedelta(
                hours=_number(env, "MODELBOT_OUTBOX_GIVE_UP_HOURS", defaults.give_up_after.total_seconds() / 3600)
            ),
            circuits=CircuitSettings(
                failures=int(_number(env, "MODELBOT_OUTBOX_CIRCUIT_FAILURES", defaults.circuits.failures, whole=True)),
                pause_base_s=_number(env, "MODELBOT_OUTBOX_CIRCUIT_PAUSE", defaults.circuits.pause_base_s),
                pause_cap_s=_number(env, "MODELBOT_OUTBOX_CIRCUIT_PAUSE_CAP", defaults.circuits.pause_cap_s),
            ),
        )


def _number(env: Mapping[str, str], name: str, default: float, *, whole: bool = False, zero_ok: bool = False) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    example = f"{name}={int(default) if whole else default:g}"
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name} must be {kind}, for example {example}.") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{name} must be a positive number, for example {example}.")
    return value
