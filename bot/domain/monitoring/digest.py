"""Digests: what one subscription's message says about a period, and sending it exactly once.

`build()` gathers the facts (per model and environment: the stable version's key numbers of
the window with ▲/▼ against its window before, drift and availability, the pointer moves of the
period — promote, rollback, canary start/step/promote/abort, once each; not approvals or other
audit events — and "no data since …" where a series or a source went quiet) as plain JSON for
the outbox, plus the series for the chart: per metric its lines, the moves as a few readable
markers (moves closer than `MERGE_FRACTION` of the period share one), the constant thresholds of
the alert rules watching it, and its unit. `commit()` writes the digest's outbox rows and marks the subscription sent for
that period in one transaction, under a lock on the subscription row, and writes nothing if
the period was already sent: so a re-run for the same scheduled time (a restart, a leader
takeover, a coalesced misfire, two leaders during a network partition) cannot post twice.

The numbers are `/model status`'s (`bot.domain.monitoring.status.model_status` with the digest's window),
so a digest and a status query never disagree; `environment_numbers` is the one seam between
them.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.alerting.rules import AlertRules
from bot.domain.compare import Direction, verdict
from bot.domain.entities import as_utc, iso
from bot.domain.errors import NotFound
from bot.domain.monitoring import status
from bot.domain.monitoring.attribution import Move
from bot.domain.monitoring.samples import Point, Samples
from bot.domain.policy import Policy
from bot.domain.registry import Registry
from bot.domain.schedule import Period
from bot.domain.subscriptions import SubscriptionView
from storage.queries import outbox
from storage.queries import samples as q

MAX_MODELS = 30
MAX_METRICS_PER_ENV = 12
CHART_METRICS = 6
CHART_SERIES = 8
CHART_POINTS = 400
MAX_MARKERS = 5
MERGE_FRACTION = 0.06
"""Moves within 6 % of the period of each other are one marker ("v3 → v4 → v3")."""
TEMPLATE = "digest"
CHART_TEMPLATE = "digest_chart"
log = logging.getLogger("modelbot.digest")


def digest_key(subscription_id: int, period: Period) -> str:
    """The message key of one subscription's digest for one period (its chart threads under it)."""
    return f"digest:{subscription_id}:{period.key}"


def topic(subscription_id: int) -> str:
    """The digest post is delivered before its chart: same topic, id order."""
    return f"digest:{subscription_id}"


def metric_kind(name: str) -> str:
    """Drift and availability get their own line in the digest; everything else is a key number."""
    lowered = name.lower()
    if "drift" in lowered or lowered.startswith("psi"):
        return "drift"
    if "availability" in lowered or "uptime" in lowered:
        return "availability"
    return "metric"


@dataclass(frozen=True)
class ChartSeries:
    metric: str
    label: str  # "churn · production"
    points: list[tuple[datetime, float]]


@dataclass(frozen=True)
class ChartMarker:
    at: datetime
    series: str  # the label of the line it belongs to: "churn · production"
    text: str  # "v3 → v4", or "v3 → v4 → v3" for moves merged into one marker


@dataclass(frozen=True)
class Threshold:
    """A constant alert threshold on one metric, drawn as a horizontal line."""

    metric: str
    series: str
    value: float
    text: str  # "accuracy < 0.8 (rule 3)"


@dataclass(frozen=True)
class ChartData:
    title: str
    timezone: str
    start: datetime
    end: datetime
    series: list[ChartSeries] = field(default_factory=list)
    markers: list[ChartMarker] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)


@dataclass(frozen=True)
class Digest:
    facts: dict[str, Any]
    chart: ChartData


# ---- numbers (the seam) -----------------------------------------------------------------------


def environment_numbers(env: status.EnvironmentStatus) -> dict[str, Any]:
    """One environment's status as digest facts: the stable version's key numbers with ▲/▼ against
    its window before, availability, drift, data quality, label coverage, what fires, and
    "no data yet" / "no data since …" when the window is empty."""
    lines = [_metric_line(m) for name, m in sorted(env.metrics.items()) if not status.is_summary_metric(name)]
    lines.sort(key=lambda m: (m["mean"] is None, m["metric"]))  # metrics with data in this window first
    doc: dict[str, Any] = {
        "metrics": lines[:MAX_METRICS_PER_ENV], "more_metrics": max(0, len(lines) - MAX_METRICS_PER_ENV),
        "availability": _availability(env.availability), "drift": _drift(env.drift),
        "data_quality": _data_quality(env.data_quality),
        "label_coverage": None if env.coverage is None else env.coverage.share,
        "firing": [str(f.get("name") or f.get("rule") or "alert") for f in env.firing][:5],
        "no_data_since": None, "never": not env.metrics, "stable_no_data": None,
    }
    if env.stable_has_no_data:
        doc["stable_no_data"] = {"version": env.serving.stable, "since": iso(env.stable_since)}
    elif env.metrics and not any(m.window for m in env.metrics.values()):
        seen = [m.at for m in env.metrics.values() if m.at is not None]
        doc["no_data_since"] = iso(max(seen)) if seen else None
    return doc


def _metric_line(m: status.MetricStatus) -> dict[str, Any]:
    delta = m.change_vs_previous_window
    return {
        "metric": m.metric, "kind": metric_kind(m.metric), "version": m.version,
        "count": m.window.count if m.window else 0, "mean": m.window.mean if m.window else None,
        "last": m.value, "last_at": iso(m.at), "previous_mean": m.previous_window.mean if m.previous_window else None,
        "delta": delta, "verdict": None if delta is None else verdict(delta, m.direction),
        "previous_version": None if m.previous is None else m.previous.version,
        "previous_version_mean": None if m.previous is None else m.previous.stats.mean,
        "delta_vs_previous_version": m.change_vs_previous_version,
        "canary": None if m.canary is None or m.canary.window is None else {
            "version": m.canary.version, "mean": m.canary.window.mean},
    }


def _data_quality(summary: status.DataQualitySummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {"features_checked": summary.features_checked,
            "issues": [{"feature": i.feature, "kind": i.kind, "share": i.share} for i in summary.issues[:3]],
            "more_issues": max(0, len(summary.issues) - 3)}


def _availability(report: Any) -> dict[str, Any] | None:
    if report is None or report.uptime is None:
        return None
    return {"uptime": report.uptime, "incidents": len(report.incidents), "ongoing": report.ongoing,
            "mttr_seconds": None if report.mttr is None else report.mttr.total_seconds()}


def _drift(summary: status.DriftSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {"drift_share": summary.drift_share, "dataset_drift": summary.dataset_drift,
            "features_checked": len(summary.features), "drifting_count": len(summary.drifting),
            "drifting": [f.feature for f in summary.drifting[:5]]}


# ---- building ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedingSource:
    """A configured source and the models it measures (lower-case names)."""

    ref: status.SourceRef
    models: tuple[str, ...]


def build(
    registry: Registry, policy: Policy, subscription: SubscriptionView, period: Period,
    sources: Sequence[FeedingSource] = (),
) -> Digest:
    """Facts for the digest message and the series for its chart, read at send time (a snapshot).

    `sources` are the configured metric sources (the caller reads the config): those feeding the
    digest's models that failed or went quiet are listed with "no data since …".
    """
    samples = Samples(registry)
    directions: dict[str, Direction] = dict(policy.metric_directions)  # type: ignore[arg-type]
    model_names = list(samples.model_names()) if subscription.all_models else [subscription.model]
    shown = model_names[:MAX_MODELS]
    query = status.StatusQuery(now=period.end, window=period.end - period.start, directions=directions)
    models = []
    series: list[ChartSeries] = []
    markers: list[ChartMarker] = []
    thresholds: list[Threshold] = []
    rules = AlertRules(registry).list()
    for name in shown:
        try:
            envs, model_series, model_markers, model_thresholds = _model_facts(
                registry, samples, name, period, query, [r for r in rules if r.model == name])
        except NotFound:  # the model went away between listing and reading
            continue
        models.append({"model": name, "environments": envs})
        series.extend(model_series)
        markers.extend(model_markers)
        thresholds.extend(model_thresholds)
    feeding = [s for s in sources if subscription.all_models or subscription.model.lower() in s.models]
    zone = subscription.schedule.timezone
    facts: dict[str, Any] = {
        "subscription": {"id": subscription.id, "channel": subscription.channel, "model": subscription.model,
                         "frequency": subscription.schedule.frequency, "schedule": subscription.schedule.describe()},
        "timezone": zone,
        "period": {"key": period.key, "start": iso(period.start), "end": iso(period.end),
                   "previous_start": iso(period.previous_start)},
        "models": models,
        "more_models": len(model_names) - len(shown),
        "sources": source_problems(registry, [s.ref for s in feeding], period),
    }
    title = f"{subscription.model if not subscription.all_models else 'All models'} — " \
            f"{subscription.schedule.frequency} digest"
    chosen = _chart_series(series)
    metrics = {s.metric for s in chosen}
    chart = ChartData(title=title, timezone=zone, start=period.start, end=period.end, series=chosen,
                      markers=markers, thresholds=[t for t in thresholds if t.metric in metrics])
    facts["chart"] = not chart.empty
    return Digest(facts, chart)


def _model_facts(
    registry: Registry, samples: Samples, model: str, period: Period, query: status.StatusQuery,
    rules: Sequence[Any],
) -> tuple[list[dict[str, Any]], list[ChartSeries], list[ChartMarker], list[Threshold]]:
    envs: list[dict[str, Any]] = []
    series: list[ChartSeries] = []
    markers: list[ChartMarker] = []
    thresholds: list[Threshold] = []
    for env in status.model_status(registry, model, None, query).environments:
        state = env.serving
        if not env.metrics and state.stable is None and state.canary is None:
            continue  # nothing serves there and nothing was ever measured: not worth a line
        moves = [m for m in samples.moves(model, env.environment) if period.start <= m.at < period.end]
        changes = [move_fact(m) for m in moves]
        numbers = environment_numbers(env)
        envs.append({"environment": env.environment, "stable": state.stable, "canary": state.canary,
                     "canary_weight": state.canary_weight, "changes": changes, **numbers})
        label = f"{model} · {env.environment}"
        charted = set()
        for line in numbers["metrics"]:
            if line["mean"] is None:
                continue
            points = samples.window(model, env.environment, line["metric"], period.start, period.end)
            series.append(ChartSeries(line["metric"], label, _thin(points)))
            charted.add(line["metric"])
        markers.extend(merge_markers([(m.at, move_label(m)) for m in moves], label, period))
        thresholds.extend(
            Threshold(r.metric, label, float(r.threshold), f"{r.metric} {r.op} {r.threshold:g} (rule {r.id})")
            for r in rules
            if r.environment == env.environment and r.metric in charted and r.kind == "threshold"
            and r.baseline == "constant" and r.threshold is not None
        )
    return envs, series, markers, thresholds


def move_fact(move: Move) -> dict[str, Any]:
    """A pointer move as digest facts (the renderer words it)."""
    return {"at": iso(move.at), "action": move.action, "from_version": move.from_version,
            "version": move.to_version, "weight": move.weight}


def move_label(move: Move) -> str:
    """The short chart label of a move: "v3 → v4", "canary v5 25%", "canary v5 aborted"."""
    if move.action in ("canary_start", "canary_weight"):
        return f"canary v{move.to_version} {move.weight or 0}%"
    if move.action == "canary_abort":
        return f"canary v{move.from_version} aborted"
    before = f"v{move.from_version}" if move.from_version else "∅"
    return f"{before} → v{move.to_version}"


def merge_markers(moves: Sequence[tuple[datetime, str]], series: str, period: Period) -> list[ChartMarker]:
    """One labelled line per move, moves close together merged, at most MAX_MARKERS.

    Moves within MERGE_FRACTION of the period after a marker's first move share it (labels
    joined); while that leaves more than MAX_MARKERS, the span doubles, so a busy week still
    shows a handful of readable lines instead of a bar of overlapping labels.
    """
    gap = (period.end - period.start) * MERGE_FRACTION
    while True:
        groups: list[list[tuple[datetime, str]]] = []
        for at, text in sorted(moves):
            if groups and at - groups[-1][0][0] <= gap:  # measured from the group's first move: no chains
                groups[-1].append((at, text))
            else:
                groups.append([(at, text)])
        if len(groups) <= MAX_MARKERS:
            break
        gap *= 2
    return [ChartMarker(g[0][0], series, _joined([t for _, t in g])) for g in groups]


def _joined(texts: Sequence[str]) -> str:
    """"v3 → v4" and "v4 → v3" read as "v3 → v4 → v3"; more than three moves are counted."""
    if len(texts) > 3:
        return f"{texts[0]} … ({len(texts)} moves)"
    out = texts[0]
    for text in texts[1:]:
        head, sep, tail = text.partition(" → ")
        out = f"{out} → {tail}" if sep and out.endswith(head) else f"{out}; {text}"
    return out


def _thin(points: Sequence[Point]) -> list[tuple[datetime, float]]:
    """At most CHART_POINTS points per line: bucket means, so spikes still move the line."""
    if len(points) <= CHART_POINTS:
        return [(p.at, p.value) for p in points]
    size = -(-len(points) // CHART_POINTS)
    out = []
    for i in range(0, len(points), size):
        chunk = points[i:i + size]
        out.append((chunk[len(chunk) // 2].at, sum(p.value for p in chunk) / len(chunk)))
    return out


def _chart_series(series: list[ChartSeries]) -> list[ChartSeries]:
    """The metrics most series share (then by name), and a bounded number of lines per metric."""
    by_metric: dict[str, list[ChartSeries]] = {}
    for s in series:
        if s.points:
            by_metric.setdefault(s.metric, []).append(s)
    chosen = sorted(by_metric, key=lambda m: (-len(by_metric[m]), metric_kind(m) != "metric", m))[:CHART_METRICS]
    return [s for m in sorted(chosen) for s in by_metric[m][:CHART_SERIES]]


def source_problems(registry: Registry, refs: Sequence[status.SourceRef], period: Period) -> list[dict[str, Any]]:
    """Configured sources whose last pull failed or that delivered nothing this window."""
    problems = []
    for health in status.source_health(registry, refs):
        success = health.last_success_at
        if health.last_error or success is None or success < period.start:
            problems.append({"name": health.name, "type": health.type, "last_success_at": iso(success),
                             "last_attempt_at": iso(health.last_attempt_at), "last_error": health.last_error})
    return problems


# ---- sending exactly once -----------------------------------------------------------------------


def already_sent(registry: Registry, subscription_id: int, period: Period) -> bool:
    """A cheap pre-check so a duplicate run skips the work; `commit` decides under the lock."""
    with registry.reading() as session:
        row = q.subscription(session, subscription_id)
        return row is None or (row.last_sent_at is not None and as_utc(row.last_sent_at) >= period.end)


def commit(
    registry: Registry, subscription_id: int, period: Period, digest: Digest, chart_png: bytes | None,
    *, now: datetime,
) -> bool:
    """Enqueue the digest post (+ chart upload into its thread) and mark the period sent, atomically.

    Returns False, writing nothing, when the subscription is gone or this period (or a later
    one) was already sent. On PostgreSQL the subscription row is locked FOR UPDATE, so two
    concurrent runs serialise and the second sees the first's `last_sent_at`; on SQLite the
    write transaction is BEGIN IMMEDIATE, which already excludes other writers.
    """
    with registry.writing() as session:
        row = q.subscription_for_update(session, registry.db.lock_for_update, subscription_id)
        if row is None:
            return False
        if row.last_sent_at is not None and as_utc(row.last_sent_at) >= period.end:
            return False
        key = digest_key(subscription_id, period)
        outbox.enqueue(session, now=now, topic=topic(subscription_id), kind="post", template=TEMPLATE,
                       data=digest.facts, channel=row.channel, message_key=key)
        if chart_png:
            stamp = period.end.strftime("%Y%m%d-%H%M")
            outbox.enqueue(
                session, now=now, topic=topic(subscription_id), kind="upload", template=CHART_TEMPLATE,
                data={"png_b64": base64.b64encode(chart_png).decode("ascii"),
                      "filename": f"modelbot-digest-{subscription_id}-{stamp}.png",
                      "title": digest.chart.title, "alt_text": _alt_text(digest)},
                channel=row.channel, message_key=key,
            )
        row.last_sent_at = period.end
        session.add(row)
    return True


def _alt_text(digest: Digest) -> str:
    metrics = sorted({s.metric for s in digest.chart.series})
    return f"Line chart of {', '.join(metrics)} over the digest window, with version changes marked."[:1000]
