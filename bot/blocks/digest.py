"""The digest message: per model and environment the window's key numbers with ▲/▼ against the
window before, availability and drift, version changes, and "no data since …" where a series or
a source went quiet. Rendered at delivery from the facts `bot.domain.monitoring.digest.build` stored in
the outbox row (the numbers are a snapshot of send time; only the layout is decided here).

Times are shown in the subscriber's zone, because "09:00" means their morning.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block

from bot.blocks import textfmt
from bot.blocks.base import MAX_MESSAGE_BLOCKS, Message, code_block, context, escape, header, section
from bot.blocks.templates import template

ARROWS = {"better": "▲", "worse": "▼", "same": "", None: ""}
_FREQUENCY_TITLE = {"hourly": "Hourly", "daily": "Daily", "weekly": "Weekly", "on_demand": "On-demand"}


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _time(raw: str | None, zone: zoneinfo.ZoneInfo) -> str:
    if not raw:
        return "–"
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(zone).strftime("%d %b %H:%M")


def _value(metric: Mapping[str, Any], key: str = "mean") -> str:
    value = metric.get(key)
    if value is None:
        return "–"
    if metric["kind"] == "availability" and 0 <= value <= 1:
        return f"{value * 100:.2f}%"
    return textfmt.number(value)


def _change(metric: Mapping[str, Any], key: str = "delta") -> str:
    if metric.get(key) is None:
        return "new" if key == "delta" else "–"
    verdict = metric.get("verdict") if key == "delta" else None
    return textfmt.change(metric[key], verdict)


def move_text(change: Mapping[str, Any], zone: zoneinfo.ZoneInfo) -> str:
    """One pointer move: `↪ promote v3 → v4`, `↪ canary v5 at 25%`, `↪ canary v5 aborted (v4 serves)`."""
    action, version, before = change["action"], change.get("version"), change.get("from_version")
    when = _time(change["at"], zone)
    if action in ("canary_start", "canary_weight"):
        verb = "canary started:" if action == "canary_start" else "canary step:"
        return f"↪ {verb} v{version} at {change.get('weight') or 0}% beside v{before} · {when}"
    if action == "canary_abort":
        return f"↪ canary v{before} aborted, v{version} serves · {when}"
    words = {"promote": "promoted", "rollback": "rolled back", "canary_promote": "canary promoted"}
    start = f"v{before}" if before else "nothing"
    return f"↪ {words.get(action, escape(action))} {start} → v{version} · {when}"


def _environment_text(env: Mapping[str, Any], zone: zoneinfo.ZoneInfo) -> str:
    serving = f"v{env['stable']}" if env.get("stable") else "nothing serving"
    if env.get("canary"):
        serving += f", canary v{env['canary']} at {env.get('canary_weight', 0)}%"
    lines = [f"*{escape(env['environment'])}* · {serving}"]
    lines += [move_text(change, zone) for change in env.get("changes", [])]
    metrics = env.get("metrics", [])
    if env.get("stable_no_data"):
        quiet = env["stable_no_data"]
        since = f" (serving since {_time(quiet['since'], zone)})" if quiet.get("since") else ""
        before = [f"{escape(m['metric'])} {textfmt.number(m['previous_version_mean'])}" for m in metrics
                  if m.get("previous_version_mean") is not None][:3]
        lines.append(f"v{quiet['version']}: no data yet{since}"
                     + (f" · v{metrics[0]['previous_version']} before: " + ", ".join(before) if before else ""))
    if env.get("availability"):
        lines.append(_availability_text(env["availability"]))
    if env.get("drift"):
        lines.append(_drift_text(env["drift"]))
    if env.get("data_quality") and env["data_quality"].get("issues"):
        lines.append(_quality_text(env["data_quality"]))
    if env.get("label_coverage") is not None:
        lines.append(f"labels for {env['label_coverage'] * 100:.0f}% of the window's predictions")
    headline = [m for m in metrics if m["kind"] in ("availability", "drift")]
    if headline:
        lines.append(" · ".join(f"{escape(m['metric'])} {_value(m)} {ARROWS[m.get('verdict')]}".strip()
                                for m in headline))
    if env.get("firing"):
        lines.append("🔔 firing: " + ", ".join(escape(name) for name in env["firing"]))
    table = [m for m in metrics if m["kind"] == "metric" and m.get("mean") is not None]
    if table:
        against = next((m["previous_version"] for m in table if m.get("delta_vs_previous_version") is not None), None)
        headers = ["metric", "avg", "last", "vs prev"] + ([f"vs v{against}"] if against else [])
        rows = [[m["metric"], _value(m), _value(m, "last"), _change(m)]
                + ([_change(m, "delta_vs_previous_version")] if against else []) for m in table]
        lines.append(code_block(textfmt.table(headers, rows).splitlines(), 1200))
    if env.get("more_metrics"):
        lines.append(f"_… and {env['more_metrics']} more metrics_")
    if env.get("no_data_since"):
        lines.append(f"⚠️ no data since {_time(env['no_data_since'], zone)}")
    elif env.get("never"):
        lines.append("⚠️ no data yet: no source has reported metrics for this environment")
    return "\n".join(lines)


def _quality_text(q: Mapping[str, Any]) -> str:
    words = {"missing": "missing", "out_of_range": "out of range", "new_category": "new categories",
             "wrong_type": "wrong type"}
    issues = [f"{escape(i['feature'])} {words.get(i['kind'], escape(i['kind']))} {i['share'] * 100:.1f}%"
              for i in q["issues"]]
    more = f" (+{q['more_issues']} more)" if q.get("more_issues") else ""
    return "data quality: " + ", ".join(issues) + more


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _availability_text(a: Mapping[str, Any]) -> str:
    parts = [f"uptime {a['uptime'] * 100:.2f}%"]
    if a.get("incidents"):
        parts.append(f"{a['incidents']} incident{'s' if a['incidents'] != 1 else ''}"
                     + (" (one ongoing)" if a.get("ongoing") else ""))
    if a.get("mttr_seconds") is not None:
        parts.append(f"MTTR {_duration(a['mttr_seconds'])}")
    return " · ".join(parts)


def _drift_text(d: Mapping[str, Any]) -> str:
    parts = []
    if d.get("features_checked"):
        drifting = d.get("drifting_count", 0)
        names = ", ".join(escape(f) for f in d.get("drifting", []))
        parts.append(f"drift: {drifting} of {d['features_checked']} features" + (f" ({names})" if names else ""))
    if d.get("drift_share") is not None:
        parts.append(f"drift share {textfmt.number(d['drift_share'], 2)}")
    if d.get("dataset_drift"):
        parts.append("⚠️ dataset drift")
    return " · ".join(parts) or "drift: no verdict"


def _sources_text(sources: list[Mapping[str, Any]], zone: zoneinfo.ZoneInfo) -> str:
    lines = ["*Sources*"]
    for source in sources:
        since = f"no data since {_time(source['last_success_at'], zone)}" if source.get("last_success_at") \
            else "no data yet"
        error = f": {escape(_clip(source['last_error'], 200))}" if source.get("last_error") else ""
        lines.append(f"⚠️ *{escape(source['name'])}* {since}{error}")
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@template("digest")
def digest(data: Mapping[str, Any]) -> Message:
    sub = data["subscription"]
    zone = _zone(data.get("timezone") or "UTC")
    period = data["period"]
    subject = "all models" if sub["model"] == "*" else sub["model"]
    title = f"{_FREQUENCY_TITLE.get(sub['frequency'], 'Scheduled')} digest: {subject}"
    span = f"{_time(period['start'], zone)} – {_time(period['end'], zone)} {zone.key}"
    blocks: list[Block] = [
        header(title),
        context(f"{span} · averages over the window; ▲ better, ▼ worse than the window before"),
    ]
    models = data.get("models", [])
    budget = MAX_MESSAGE_BLOCKS - len(blocks) - 2  # room for sources and the "more" note
    quiet = 0
    for model in models[:budget]:
        envs = model.get("environments", [])
        if not envs:
            body = "_no environments with deployments or metrics yet_"
        else:
            body = "\n\n".join(_environment_text(env, zone) for env in envs)
        blocks.append(section(f"*{escape(model['model'])}*\n{body}"))
        quiet += sum(1 for env in envs if env.get("no_data_since") or env.get("never"))
    if not models:
        blocks.append(section("_No models are registered yet._"))
    more = int(data.get("more_models") or 0) + max(0, len(models) - budget)
    sources = data.get("sources") or []
    if sources:
        blocks.append(section(_sources_text(sources, zone)))
    if more:
        blocks.append(context(f"… and {more} more models: subscribe to them one by one for their numbers."))
    summary = [f"{len(models)} model{'s' if len(models) != 1 else ''}"]
    if quiet:
        summary.append(f"{quiet} environment{'s' if quiet != 1 else ''} without data")
    if sources:
        summary.append(f"{len(sources)} source{'s' if len(sources) != 1 else ''} with no data since "
                       + ", ".join(_time(s.get("last_success_at"), zone) for s in sources[:3]))
    return Message.build(escape(f"{title} ({span}): " + "; ".join(summary)), blocks)
