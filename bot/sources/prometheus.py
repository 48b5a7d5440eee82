"""Prometheus HTTP API: instant and range queries, results mapped to metric samples.

One PromQL query per metric, with `{model}`, `{environment}` (or `{env}`) and
`{version}` filled in per model and environment (and per serving version when the
query names `{version}`). Each result series becomes samples of that metric; its
version is, in order: the series' `version` label, the version the query was filled
with, or the stable version when no canary takes traffic (see `common.serving_version`).
A query must yield at most one series per version — "sum by (version)" or
"avg by (version)" says how to combine instances; we refuse to guess.

NaN and ±Inf values (`histogram_quantile` over no traffic) are skipped with a note:
they mean "no data", not a number to chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bot.config.sources import DEFAULT_MAX_RESPONSE_BYTES, PrometheusSource, PromQuery, fill
from bot.domain.entities import EnvironmentState
from bot.domain.monitoring.samples import SampleIn
from bot.domain.registry import Registry
from bot.sources.common import Collected, parse_version, serving_version
from bot.sources.http import SourceError, describe, get_json, make_session

WHAT = "Prometheus"


@dataclass(frozen=True)
class Series:
    """One result series: its labels and (time, value) points; values may be NaN."""

    labels: dict[str, str]
    points: tuple[tuple[datetime, float], ...]


def instant_query(
    session: requests.Session, base_url: str, query: str, at: datetime, *, source: str, timeout_s: float,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> list[Series]:
    """`GET /api/v1/query?query=…&time=…`: one point per series, at `at`."""
    data = _api(session, f"{base_url}/api/v1/query", {"query": query, "time": _epoch(at)}, source, timeout_s, max_bytes)
    return _series(data, f"{base_url}/api/v1/query", source)


def range_query(
    session: requests.Session,
    base_url: str,
    query: str,
    start: datetime,
    end: datetime,
    step: timedelta,
    *,
    source: str,
    timeout_s: float,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> list[Series]:
    """`GET /api/v1/query_range`: points every `step` from `start` to `end` (inclusive)."""
    params = {"query": query, "start": _epoch(start), "end": _epoch(end), "step": f"{step.total_seconds():g}s"}
    url = f"{base_url}/api/v1/query_range"
    return _series(_api(session, url, params, source, timeout_s, max_bytes), url, source)


def collect(registry: Registry, source: PrometheusSource, now: datetime) -> Collected:
    """Run every query for every model and environment; errors are per query."""
    out = Collected()
    with make_session(source.http) as session:
        for model in source.models:
            for env in source.environments:
                state = registry.environment_state(model, env)
                for query in source.queries:
                    try:
                        _one(session, source, query, state, now, out)
                    except SourceError as exc:
                        if exc.unreachable:  # one clear error, not the same one per query
                            raise
                        out.errors.append(f"{query.metric} ({model} {env}): {exc.message}")
    return out


def _one(
    session: requests.Session,
    source: PrometheusSource,
    query: PromQuery,
    state: EnvironmentState,
    now: datetime,
    out: Collected,
) -> None:
    model, env = state.model, state.environment
    default = serving_version(state)
    if query.uses_version:
        versions = [v for v in (state.stable, state.canary) if v is not None]
        if not versions:
            out.notes.append(f"{query.metric} ({model} {env}): nothing serves, so no {{version}} to query.")
            return
    else:
        versions = [default]
    for version in versions:
        promql = fill(query.query, model=model, environment=env, version=version)
        if source.range is None:
            series = instant_query(session, source.url, promql, now, source=source.name,
                                   timeout_s=source.http.timeout_s, max_bytes=source.http.max_bytes)
        else:
            series = range_query(session, source.url, promql, now - source.range, now, source.step,
                                 source=source.name, timeout_s=source.http.timeout_s, max_bytes=source.http.max_bytes)
        if not series:
            out.notes.append(f"{query.metric} ({model} {env}): the query returned no series.")
            continue
        seen: set[int | None] = set()
        for s in series:
            labelled = parse_version(s.labels["version"]) if "version" in s.labels else None
            tagged = labelled if labelled is not None else (version if query.uses_version else default)
            if tagged in seen:
                raise SourceError(
                    source.name,
                    f"the query returned {len(series)} series for one version; aggregate them, for example "
                    "with sum by (version) (…) or avg by (version) (…).",
                )
            seen.add(tagged)
            skipped = 0
            for at, value in s.points:
                if not math.isfinite(value):
                    skipped += 1
                    continue
                out.samples.append(SampleIn(model, env, query.metric, value, at, version=tagged))
            if skipped:
                out.notes.append(f"{query.metric} ({model} {env}): {skipped} NaN/Inf value(s) skipped "
                                 "(no traffic in the rate window?).")


def _api(session: requests.Session, url: str, params: dict[str, str], source: str, timeout_s: float,
         max_bytes: int) -> Any:
    document = get_json(session, url, source=source, what=WHAT, timeout_s=timeout_s, params=params,
                        max_bytes=max_bytes)
    if not isinstance(document, dict) or document.get("status") != "success":
        reason = document.get("error") if isinstance(document, dict) else None
        raise SourceError(source, f"{describe(WHAT, url)} refused the query: {reason or 'no status: success'}.")
    data = document.get("data")
    if not isinstance(data, dict):
        raise SourceError(source, f"{describe(WHAT, url)} answered without a data object.")
    return data


def _series(data: dict[str, Any], url: str, source: str) -> list[Series]:
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar":
            return [Series({}, (_point(result),))]
        if kind == "vector":
            return [Series(dict(item.get("metric", {})), (_point(item["value"]),)) for item in result]
        if kind == "matrix":
            return [Series(dict(item.get("metric", {})), tuple(_point(p) for p in item["values"])) for item in result]
    except (KeyError, TypeError, ValueError, IndexError):
        raise SourceError(source, f"{describe(WHAT, url)} answered a {kind} result in an unexpected shape.") from None
    raise SourceError(source, f"{describe(WHAT, url)} answered a {kind!r} result; use a query that returns numbers.")


def _point(pair: Any) -> tuple[datetime, float]:
    timestamp, value = pair
    return datetime.fromtimestamp(float(timestamp), UTC), float(value)


def _epoch(at: datetime) -> str:
    return f"{at.timestamp():.3f}"
