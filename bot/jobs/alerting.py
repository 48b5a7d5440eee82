"""Alerting wired to the running services: the evaluation cycle, its charts, and the reads the
front end needs beside the domain (known metrics, a rule's origin, what fires for `status`).

The cycle (`run_cycle`, run by the scheduler job `evaluate-alerts`):

1. sync the rules of modelbot.toml into `alert_rules` (idempotent; see `bot.config.alerts`);
2. evaluate every rule (`AlertEngine.evaluate`: one transaction for states, groups and the
   outbox rows they cause); a critical canary rule past its failure limit aborts the canary
   through `Deployments.abort_canary` as actor `modelbot`, audited and announced like any abort.

Charts (`chart_pending`, run by the job `alert-charts`): for every alert card first posted in
the last hour that has no chart yet, render a PNG of its metrics around the breach and enqueue
it as an `upload` row into the card's thread (same topic, so the worker sends it after the
card). Why a job of its own and not a step of the cycle or of the domain: the domain stays free
of matplotlib, and rendering costs 0.2–5 s per chart (depending on load), which must never delay
evaluation; a chart is decoration, not a state change. Whether a card has its chart is read
from the outbox itself (an `alert_chart` row under the card's key), so a crash between the
card and its chart only delays the chart to the next run, and a chart is never enqueued twice.
"""

from __future__ import annotations

import base64
import logging
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col

from bot.config.alerts import AlertConfig, alert_config, sync_rules
from bot.domain.alerting.engine import AlertEngine, CycleReport
from bot.domain.alerting.notify import card_key, topic
from bot.domain.entities import as_utc
from bot.domain.notices import SYSTEM_ACTOR
from storage.models import AlertGroup, OutboxMessage
from storage.queries import outbox

if TYPE_CHECKING:
    from bot.domain.registry import Registry
    from bot.services import Services

log = logging.getLogger("modelbot.alerts")
CHART_BEFORE = timedelta(hours=3)
CHART_MIN_SPAN = timedelta(hours=1)
CHART_MAX_SPAN = timedelta(hours=24)
MAX_CHART_METRICS = 4
MAX_CHARTS_PER_RUN = 10
CHART_RECENT = timedelta(hours=1)
CHART_TEMPLATE = "alert_chart"
# cards whose chart could not be drawn, so each is tried once per process, not every minute
# (keyed by database too: card keys repeat across databases, e.g. in tests)
_FAILED: set[tuple[int, str]] = set()


# ---- the cycle ------------------------------------------------------------------------------------


def build_engine(services: Services, config: AlertConfig, clock: Callable[[], datetime] | None = None) -> AlertEngine:
    """The engine on the services, aborting failing canaries through the deployments domain."""

    def abort_canary(model: str, environment: str, why: str) -> None:
        services.deployments.abort_canary(model, environment, actor=SYSTEM_ACTOR, reason=f"automatic canary "
                                          f"analysis: {why}")
        log.warning("aborted the canary of %s in %s: %s", model, environment, why)

    return AlertEngine(services.registry, config.settings, abort_canary=abort_canary, clock=clock or services.clock)


def run_cycle(services: Services, *, config: AlertConfig | None = None) -> CycleReport:
    """One evaluation: sync the file's rules into the table, then evaluate every rule."""
    config = config or alert_config(services.policy)
    now = services.clock()
    sync_rules(services.registry, config, now)
    report = build_engine(services, config, clock=lambda: now).evaluate()
    if report.transitions or report.notifications or report.canary_aborts:
        log.info("alert cycle: %d rules, %d series, transitions %s, %d notifications%s", report.rules, report.series,
                 report.transitions or "none", report.notifications,
                 f", canaries aborted: {', '.join(report.canary_aborts)}" if report.canary_aborts else "")
    return report


# ---- charts ---------------------------------------------------------------------------------------


def chart_pending(services: Services, *, limit: int = MAX_CHARTS_PER_RUN) -> int:
    """Enqueue a chart for up to `limit` recently posted alert cards that have none; returns how many."""
    from bot.blocks.digest_chart import render_png

    registry, now = services.registry, services.clock()
    todo = _cards_without_chart(registry, now)
    done = 0
    for row_topic, channel, key, data in todo:
        failed = (id(registry.db), key)
        if done >= limit:
            log.info("alert charts: %d more cards wait for the next run", len(todo) - done)
            break
        if failed in _FAILED:
            continue
        try:
            chart = chart_data(registry, data, now)
            if chart is None:
                _FAILED.add(failed)  # nothing to draw (no samples): do not look again
                continue
            with warnings.catch_warnings():  # matplotlib's date locator complains about short spans
                warnings.simplefilter("ignore", UserWarning)
                png = render_png(chart)
        except Exception:  # a missing picture must not stop the others
            log.exception("chart of alert card %s failed; it goes without one", key)
            _FAILED.add(failed)
            continue
        if not png:
            _FAILED.add(failed)
            continue
        metrics = sorted({a["metric"] for a in _charted(data)})
        with registry.writing() as session:
            outbox.enqueue(session, now=now, topic=row_topic, kind="upload", template=CHART_TEMPLATE, data={
                "png_b64": base64.b64encode(png).decode("ascii"),
                "filename": f"modelbot-alert-{data['group_id']}.png",
                "title": f"{data['model']} · {data['environment']}: {', '.join(metrics)}",
                "alt_text": (f"Line chart of {', '.join(metrics)} for {data['model']} in {data['environment']} "
                             "over the hours before the alert, with the threshold and the moment it fired.")[:1000],
            }, channel=channel, message_key=key)
        done += 1
    return done


def _cards_without_chart(registry: Registry, now: datetime) -> list[tuple[str, str | None, str, dict[str, Any]]]:
    """(topic, channel, card key, card data of the first post) of cards first posted within
    CHART_RECENT that have no chart row yet. Reads go through the small alert_groups table and
    the outbox's (topic, id) index, never a scan of the whole outbox."""
    with registry.reading() as session:
        groups = session.execute(sa.select(AlertGroup.id, AlertGroup.model_id, AlertGroup.environment).where(
            col(AlertGroup.first_notified_at) >= now - CHART_RECENT, col(AlertGroup.first_notified_at) <= now)).all()
        if not groups:
            return []
        topics = {card_key(g): topic(m, e) for g, m, e in groups}
        charted = set(session.execute(sa.select(OutboxMessage.message_key).where(
            col(OutboxMessage.topic).in_(set(topics.values())), OutboxMessage.template == CHART_TEMPLATE)).scalars())
        wanted = [k for k in topics if k not in charted]
        if not wanted:
            return []
        posts = session.execute(
            sa.select(OutboxMessage.topic, OutboxMessage.channel, OutboxMessage.message_key, OutboxMessage.data)
            .where(col(OutboxMessage.topic).in_({topics[k] for k in wanted}), col(OutboxMessage.message_key).in_(wanted),
                   OutboxMessage.template == "alert_card", OutboxMessage.kind == "post")
            .order_by(col(OutboxMessage.id))
        ).all()
    return [(t, c, k, d) for t, c, k, d in posts]


def _charted(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    firing = [a for a in data.get("alerts") or () if a.get("state") == "firing"]
    seen: dict[str, Mapping[str, Any]] = {}
    for alert in firing:
        seen.setdefault(alert["metric"], alert)
    return list(seen.values())[:MAX_CHART_METRICS]


def chart_data(registry: Registry, data: Mapping[str, Any], now: datetime) -> Any:
    """The digest chart's data shape (`bot.domain.monitoring.digest.ChartData`) for one card: stable and canary
    lines per metric, the threshold as a flat line, and the firing moment marked."""
    from bot.domain.monitoring.digest import ChartData, ChartMarker, ChartSeries
    from bot.domain.monitoring.samples import Samples

    alerts = _charted(data)
    if not alerts:
        return None
    since = [as_utc(datetime.fromisoformat(a["since"].replace("Z", "+00:00"))) for a in alerts if a.get("since")]
    start = min(since, default=now) - CHART_BEFORE
    start = max(start, now - CHART_MAX_SPAN)
    start = min(start, now - CHART_MIN_SPAN)
    end = now + timedelta(seconds=1)
    samples = Samples(registry)
    model, env = data["model"], data["environment"]
    stable, canary = data.get("stable"), data.get("canary")
    series: list[Any] = []
    markers: list[Any] = []
    for alert in alerts:
        metric = alert["metric"]
        points = samples.window(model, env, metric, start, end)
        lines: dict[str, list[tuple[datetime, float]]] = {}
        for p in points:
            if canary is not None and p.version == canary:
                label = f"canary v{canary}"
            elif p.version is None or p.version == stable:
                label = f"stable v{stable}" if stable is not None else "serving"
            else:
                label = f"v{p.version}"
            lines.setdefault(label, []).append((p.at, p.value))
        for label, pts in lines.items():
            series.append(ChartSeries(metric=metric, label=label, points=pts))
        if alert.get("threshold") is not None:
            series.append(ChartSeries(metric=metric, label="threshold",
                                      points=[(start, float(alert["threshold"])), (now, float(alert["threshold"]))]))
        if alert.get("since"):
            label = f"canary v{canary}" if alert.get("series") == "canary" and canary is not None else (
                f"stable v{stable}" if stable is not None else "serving")
            markers.append(ChartMarker(at=as_utc(datetime.fromisoformat(alert["since"].replace("Z", "+00:00"))),
                                       series=label, text="fired"))
    chart = ChartData(title=f"{model} · {env}", timezone="UTC", start=start, end=now, series=series,
                      markers=markers)
    return None if chart.empty else chart
