"""What every source's `collect` returns (`Collected`, from the monitoring domain), which version a
live sample is attributed to, and version labels as sources write them."""

from __future__ import annotations

import math

from bot.domain.entities import EnvironmentState
from bot.domain.monitoring.attribution import Serving
from bot.domain.monitoring.recording import Collected

__all__ = ["Collected", "finite", "parse_version", "serving_version"]


def serving_version(state: EnvironmentState) -> int | None:
    """The version a live measurement belongs to when the source does not say: the one serving
    alone now, or None while a canary takes traffic (the attribution rule, `attribution.py`)."""
    return Serving(None, state.stable, state.canary, state.canary_weight).sole


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
