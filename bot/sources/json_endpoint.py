"""JSON endpoint: GET a URL and pick metric values out of the document by path.

For serving systems that expose their own numbers as JSON (a `/stats` route, a
feature store's summary). Paths are the small language in `bot/config/jsonpath.py`
(`data.metrics[0].value`, `items[*].latency`); a path that selects several values is
reduced by its `aggregate` (mean by default). Values must be numbers or numeric
strings; booleans count as 0/1 (an `"healthy": true` flag is a fine metric). All
samples are stamped with the pull time. One metric whose path is missing does not
stop the others: it is reported as an error of this pull.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.config.sources import JsonMetric, JsonSource
from bot.domain.errors import InvalidInput
from bot.domain.monitoring.samples import SampleIn
from bot.domain.registry import Registry
from bot.sources.common import Collected, parse_version, serving_version
from bot.sources.http import SourceError, describe, get_json, make_session

WHAT = "JSON endpoint"


def collect(registry: Registry, source: JsonSource, now: datetime) -> Collected:
    with make_session(source.http) as session:
        document = get_json(session, source.url, source=source.name, what=WHAT, timeout_s=source.http.timeout_s,
                            max_bytes=source.http.max_bytes)
    out = Collected()
    version = _version(source, document, out) or serving_version(
        registry.environment_state(source.model, source.environment))
    for metric in source.metrics:
        try:
            value = extract(document, metric)
        except InvalidInput as exc:
            out.errors.append(f"{metric.metric}: {exc.message}")
            continue
        out.samples.append(SampleIn(source.model, source.environment, metric.metric, value, now, version=version))
    if not out.samples and out.errors:
        raise SourceError(source.name, f"{describe(WHAT, source.url)}: " + "; ".join(out.errors))
    return out


def extract(document: Any, metric: JsonMetric) -> float:
    """The metric's value in `document`: its path, numbers checked, several values aggregated."""
    values = [_number(v, metric.path.text) for v in metric.path.select(document)]
    if not values:
        raise InvalidInput(f"{metric.path.text} selects an empty list, so there is no value.")
    if not metric.path.fans_out:
        return values[0]
    return aggregate(values, metric.aggregate)


def aggregate(values: Sequence[float], how: str) -> float:
    if how == "count":
        return float(len(values))
    if how == "sum":
        return math.fsum(values)
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    if how == "last":
        return values[-1]
    return math.fsum(values) / len(values)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise InvalidInput(f"{path} holds the text '{value[:40]}', not a number.") from None
    else:
        kind = "null" if value is None else "a list" if isinstance(value, list) else "an object"
        raise InvalidInput(f"{path} holds {kind}, not a number; extend the path to the number inside.")
    if not math.isfinite(number):
        raise InvalidInput(f"{path} holds {value}, not a finite number.")
    return number


def _version(source: JsonSource, document: Any, out: Collected) -> int | None:
    if source.version_path is None:
        return None
    try:
        found = source.version_path.select(document)
    except InvalidInput as exc:
        out.notes.append(f"version_path: {exc.message}")
        return None
    version = parse_version(found[0]) if found else None
    if version is None:
        out.notes.append(f"version_path {source.version_path.text} holds no version number.")
    return version
