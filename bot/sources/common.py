"""What every source's `collect` returns, and which version a sample is attributed to."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bot.domain.entities import EnvironmentState
from bot.domain.samples import SampleIn


@dataclass
class Collected:
    """Samples gathered by one pull, plus per-part errors (one failing query does not void the
    others) and notes (skipped values, down targets) for the log and the pull result."""

    samples: list[SampleIn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # True when there was nothing new to fetch (not an outage: no "no data" error)
    up_to_date: bool = False


def serving_version(state: EnvironmentState) -> int | None:
    """The version a live measurement belongs to when the source does not say.

    The stable version when no canary takes traffic; None during a canary, because then
    the numbers mix two versions and attributing them to either would mislead the
    "against the previous version" comparison.
    """
    if state.canary is not None and state.canary_weight > 0:
        return None
    return state.stable


def parse_version(raw: object) -> int | None:
    """A version label as Prometheus or a JSON API writes it: 7, "7", "v7"; else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 1 else None
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() and raw >= 1 else None
    if isinstance(raw, str):
        text = raw.strip().lower().removeprefix("v")
        if text.isdigit() and int(text) >= 1:
            return int(text)
    return None


def finite(value: float) -> bool:
    return math.isfinite(value)
