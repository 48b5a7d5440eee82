"""`/model digest`: the digest a subscription would post, built now, answered to the asker.

It calls the digest domain exactly as the scheduled job does (`bot.domain.monitoring.digest.build` with
the configured sources), for a one-off daily window ending now, and renders it with the
digest template, so an on-demand digest and a scheduled one never disagree. Nothing is
written: no subscription, no outbox row. The chart travels as a `File` on the answer; the
shell writes it to disk, a Slack command reply cannot carry it.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot.blocks import digest as blocks
from bot.blocks.base import File, Message
from bot.commands import digest as cmds
from bot.domain import names
from bot.domain.monitoring import digest
from bot.domain.schedule import Period, Schedule
from bot.domain.subscriptions import ALL_MODELS, SubscriptionView
from bot.handlers.base import Actor, HandlerTable

if TYPE_CHECKING:
    from bot.services import Services

table = HandlerTable()
WINDOW = timedelta(hours=24)
FREQUENCY = "on_demand"  # the digest template titles it "On-demand digest"


@table.handles(cmds.DigestNow)
def _digest(services: Services, actor: Actor, cmd: cmds.DigestNow) -> Message:
    registry = services.registry
    model = registry.get_model(cmd.model).name if cmd.model else ALL_MODELS
    environment = names.environment(cmd.environment, registry.environments) if cmd.environment else None
    now = services.clock()
    view = SubscriptionView(id=0, channel=actor.channel_id or "", model=model, model_id=None,
                            schedule=Schedule("daily"), created_by=actor.user_id, created_at=now, last_sent_at=None)
    period = Period(end=now, start=now - WINDOW, previous_start=now - 2 * WINDOW)
    built = digest.build(registry, services.policy, view, period, services.feeding_sources())
    name = "all models" if model == ALL_MODELS else model
    facts, chart = built.facts, replace(built.chart, title=f"{name} — digest on demand")
    if environment is not None:
        facts = _only(facts, environment)
        chart = replace(chart, series=[s for s in chart.series if s.label.endswith(f" · {environment}")],
                        markers=[m for m in chart.markers if m.series.endswith(f" · {environment}")])
    facts = {**facts, "subscription": {**facts["subscription"], "frequency": FREQUENCY}}
    message = blocks.digest(facts)
    png = _chart_png(chart)
    if png is None:
        return message
    stem = "all-models" if model == ALL_MODELS else model
    stamp = now.strftime("%Y%m%d-%H%M")
    filename = f"digest-{stem}{'-' + environment if environment else ''}-{stamp}.png"
    alt = f"Line chart of the digest's metrics over the last 24 hours for {name}, with version changes marked."
    return replace(message, files=(File(filename, png, chart.title, alt),))


def _only(facts: dict[str, Any], environment: str) -> dict[str, Any]:
    models = [{**m, "environments": [e for e in m["environments"] if e["environment"] == environment]}
              for m in facts["models"]]
    return {**facts, "models": models}


def _chart_png(chart: digest.ChartData) -> bytes | None:
    if chart.empty:
        return None
    from bot.blocks.digest_chart import render_png

    with warnings.catch_warnings():  # matplotlib's date locator complains about short spans
        warnings.simplefilter("ignore", UserWarning)
        return render_png(chart)
