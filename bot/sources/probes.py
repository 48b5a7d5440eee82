"""Health probes: GET each deployment's health URL → `up` (1/0) and `health_latency_ms`.

A probe is a single attempt (no retries): retrying would hide exactly the flaps that
availability is meant to show, and inflate the response time. "Up" means a 2xx answer
within the timeout (redirects followed); anything else is "down", with the reason in
the pull's notes and one log line. `health_latency_ms` is recorded whenever the
target answered at all, since a slow 503 is still worth charting. Availability, MTTR
and MTBF are computed from the `up` series by `bot.domain.monitoring.availability`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from bot.config.sources import HttpOptions, ProbeSource
from bot.domain.monitoring.samples import SampleIn
from bot.domain.registry import Registry
from bot.sources.common import Collected, serving_version
from bot.sources.http import SourceError, describe, get, make_session

WHAT = "health endpoint"
UP_METRIC = "up"
LATENCY_METRIC = "health_latency_ms"


@dataclass(frozen=True)
class ProbeResult:
    up: bool
    latency_ms: float | None
    reason: str | None = None


def probe(url: str, *, timeout_s: float, source: str = "probe") -> ProbeResult:
    """One GET of a health URL."""
    with make_session(HttpOptions(timeout_s=timeout_s, retries=0)) as session:
        started = time.perf_counter()
        try:
            answer = get(session, url, source=source, what=WHAT, timeout_s=timeout_s)
        except SourceError as exc:
            return ProbeResult(False, None, exc.message)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
    if 200 <= answer.status < 300:
        return ProbeResult(True, elapsed_ms)
    return ProbeResult(False, elapsed_ms, f"{describe(WHAT, url)} answered {answer.status}.")


def collect(registry: Registry, source: ProbeSource, now: datetime) -> Collected:
    out = Collected()
    for env, url in source.targets:
        version = serving_version(registry.environment_state(source.model, env))
        result = probe(url, timeout_s=source.http.timeout_s, source=source.name)
        out.samples.append(SampleIn(source.model, env, UP_METRIC, 1.0 if result.up else 0.0, now, version=version))
        if result.latency_ms is not None:
            out.samples.append(SampleIn(source.model, env, LATENCY_METRIC, result.latency_ms, now, version=version))
        if not result.up:
            out.notes.append(f"{source.model} {env} is down: {result.reason}")
    return out
