"""Reads the alerting front end needs beside the rules: which metrics a model has, where a rule
came from, which card a click is about, and what fires for `/model status`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import select

from bot.domain.alerting.actions import AlertActions
from storage.models import AlertGroup, AlertRule, MetricRollup, MetricSample

if TYPE_CHECKING:
    from bot.domain.registry import Registry
    from bot.services import Services


def known_metrics(services: Services, model: str) -> tuple[str, frozenset[str]]:
    """(the model's name, the metrics any source ever reported for it, plus those a configured
    source declares): an alert on anything else could never fire."""
    registry = services.registry
    with registry.reading() as session:
        row = registry.model_row(session, model)
        names = set(session.execute(sa.select(MetricSample.metric).where(
            MetricSample.model_id == row.id).distinct()).scalars())
        names.update(session.execute(sa.select(MetricRollup.metric).where(
            MetricRollup.model_id == row.id).distinct()).scalars())
        name = row.name
    names.update(_declared_metrics(services, name))
    return name, frozenset(names)


def _declared_metrics(services: Services, model: str) -> set[str]:
    """Metric names that configured Prometheus/JSON sources produce for the model (data may not have arrived yet)."""
    try:
        from bot.config.sources import JsonSource, ProbeSource, PrometheusSource, sources_for_model
    except ImportError:  # a build without metric sources
        return set()
    out: set[str] = set()
    for source in sources_for_model(services.policy, model):
        if isinstance(source, PrometheusSource):
            out.update(q.metric for q in source.queries)
        elif isinstance(source, JsonSource):
            out.update(m.metric for m in source.metrics)
        elif isinstance(source, ProbeSource):
            out.add("up")
    return out


def rule_origin(registry: Registry, rule_id: int) -> str | None:
    """`config` for rules from modelbot.toml (removed by editing the file), `slack` …; None if unknown."""
    with registry.reading() as session:
        return session.execute(sa.select(AlertRule.origin).where(AlertRule.id == rule_id,
                                                                 AlertRule.enabled == True)).scalar()  # noqa: E712


def group_target(registry: Registry, group_id: int) -> tuple[int, str, str] | None:
    """(group id, model name, environment) of an alert card, or None when it no longer exists."""
    from storage.models import RegisteredModel

    with registry.reading() as session:
        row = session.execute(select(AlertGroup.id, RegisteredModel.name, AlertGroup.environment).join(
            RegisteredModel, RegisteredModel.id == AlertGroup.model_id).where(  # type: ignore[arg-type]
            AlertGroup.id == group_id)).first()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


def firing_provider(services: Services) -> Callable[[str, str], Sequence[Mapping[str, Any]]]:
    """For `/model status`: what fires for (model, environment), silenced ones marked."""
    actions = AlertActions(services.registry)
    cache: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def firing(model: str, environment: str) -> Sequence[Mapping[str, Any]]:
        key = model.lower()
        if key not in cache:
            cache[key] = actions.overview(services.clock(), model)
        now = cache[key]
        out = []
        for kind in ("firing", "silenced"):
            for entry in now[kind]:
                if entry["environment"] != environment:
                    continue
                value = "–" if entry["value"] is None else f"{entry['value']:.4g}"
                threshold = "–" if entry["threshold"] is None else f"{entry['threshold']:.4g}"
                since = (entry["since"] or "").replace("T", " ")[:16]
                summary = (f"{value} {entry['op']} {threshold} · {entry['severity']} · {entry['series']} · since "
                           f"{since} UTC" + (" · silenced" if kind == "silenced" else ""))
                out.append({"name": entry["metric"], "severity": entry["severity"], "since": entry["since"],
                            "rule_id": entry["rule_id"], "silenced": kind == "silenced", "summary": summary})
        return out

    return firing
