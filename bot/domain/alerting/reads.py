"""Reads the alerting front end needs beside the rules: which metrics a model has (so a rule on
anything else is refused), and what fires for `/model status`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.domain.alerting.actions import AlertActions
from bot.domain.registry import Registry
from storage.queries import alerting as queries


def known_metrics(registry: Registry, model: str, declared: Callable[[str], Iterable[str]] = lambda _: ()
                  ) -> tuple[str, frozenset[str]]:
    """(the model's name, the metrics any source ever reported for it, plus those `declared` for
    it — what configured sources produce, whose data may not have arrived yet)."""
    with registry.reading() as session:
        row = registry.model_row(session, model)
        assert row.id is not None
        found = queries.metric_names(session, row.id)
        name = row.name
    return name, frozenset(found | set(declared(name)))


def firing_provider(registry: Registry, clock: Callable[[], datetime]
                    ) -> Callable[[str, str], Sequence[Mapping[str, Any]]]:
    """For `/model status`: what fires for (model, environment), silenced ones marked."""
    actions = AlertActions(registry)
    cache: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def firing(model: str, environment: str) -> Sequence[Mapping[str, Any]]:
        key = model.lower()
        if key not in cache:
            cache[key] = actions.overview(clock(), model)
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
