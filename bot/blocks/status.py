"""Renderers for `/model status`: one model in detail, or every model on a line with badges.

Pure functions from `bot.domain.monitoring.status` results to a `Message`. Per-feature drift
numbers (`psi:age` …) and the raw `up` series are summarised in their own lines rather
than listed as metrics, so the table stays readable on a phone. Limits: at most
`MAX_METRIC_ROWS` metrics per environment and 50 blocks per message.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import Block

from bot.blocks import textfmt
from bot.blocks.base import MAX_MESSAGE_BLOCKS, Message, code_block, context, divider, escape, header, section
from bot.blocks.textfmt import duration
from bot.domain.compare import verdict
from bot.domain.monitoring.status import (
    EnvironmentLine,
    EnvironmentStatus,
    MetricStatus,
    ModelStatus,
    Overview,
    is_summary_metric,
)

MAX_METRIC_ROWS = 15
UPTIME_WARN = 0.99
UPTIME_BAD = 0.95


def model_status(status: ModelStatus) -> Message:
    window = duration(status.window)
    blocks: list[Block] = [header(f"{status.model}: status, last {window}")]
    blocks.append(context(f"Numbers of the stable version unless labelled. ▲ better, ▼ worse, by each metric's "
                          f"direction. Δ{window}: this {window} against the {window} before; Δprev: against the "
                          f"previous version's own numbers before this one took over. Times in UTC."))
    summary = []
    for i, env in enumerate(status.environments):
        if i:
            blocks.append(divider())
        blocks += _environment(env, window)
        summary.append(_fallback(env))
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        blocks = [*blocks[:MAX_MESSAGE_BLOCKS - 1], context("… more in `modelbot status --json`.")]
    return Message.build(escape(f"{status.model}: " + " | ".join(summary)), blocks)


def _environment(env: EnvironmentStatus, window: str) -> list[Block]:
    blocks: list[Block] = [section(f"*{escape(env.environment)}*  {serving_line(env)}  {_badges(env)}")]
    if env.stable_has_no_data:
        blocks.append(context(escape(_no_data_yet(env))))
    rows = [m for name, m in sorted(env.metrics.items()) if _is_plain_metric(name)]
    if rows:
        headers, cells = _table(env, rows[:MAX_METRIC_ROWS], window)
        lines = textfmt.table(headers, cells).splitlines()
        if len(rows) > MAX_METRIC_ROWS:
            lines.append(f"… {len(rows) - MAX_METRIC_ROWS} more metrics")
        blocks.append(section(code_block(lines)))
    facts = [line for line in (_availability(env), _drift(env), _data_quality(env), _coverage(env, window)) if line]
    if facts:
        blocks.append(section("\n".join(facts)))
    if env.firing:
        lines = [f":rotating_light: *{escape(f.get('name', 'alert'))}* {escape(f.get('summary', ''))}".rstrip()
                 for f in env.firing[:5]]
        if len(env.firing) > 5:
            lines.append(f"… and {len(env.firing) - 5} more")
        blocks.append(section("\n".join(lines)))
    notes = [n for n in env.notes if not (env.stable_has_no_data and n.startswith(f"v{env.serving.stable}: no data"))]
    if notes:
        blocks.append(context(*(escape(n) for n in notes[:5])))
    return blocks


def serving_line(env: EnvironmentStatus) -> str:
    s = env.serving
    return textfmt.serving(s.stable, s.previous, s.canary, s.canary_weight, env.stable_since)


def _no_data_yet(env: EnvironmentStatus) -> str:
    """`v4: no data yet (serving since 10 Nov 10:42) · v2 before: accuracy 0.889, latency_p95_ms 48.2`."""
    s = env.serving
    text = f"v{s.stable}: no data yet" + (f" (serving since {_when(env.stable_since)})" if env.stable_since else "")
    before = [f"{m.metric} {textfmt.number(m.previous.stats.mean)}" for name, m in sorted(env.metrics.items())
              if m.previous is not None and _is_plain_metric(name)][:3]
    if before:
        text += f" · v{s.previous} before: " + ", ".join(before)
    return text


def _table(env: EnvironmentStatus, rows: list[MetricStatus], window: str) -> tuple[list[str], list[list[str]]]:
    s = env.serving
    subject = f"v{s.stable} latest" if s.stable else "latest"
    headers = ["metric", subject, f"Δ{window}"]
    previous = s.previous is not None and any(m.previous for m in rows)
    canary = s.canary is not None and any(m.canary and m.canary.window for m in rows)
    if previous:
        headers += [f"v{s.previous} before", "Δprev"]
    if canary:
        headers += [f"canary v{s.canary}", "Δcanary"]
    cells = []
    for m in rows:
        row = [escape(m.metric), "no data yet" if m.value is None else textfmt.number(m.value),
               _delta(m.change_vs_previous_window, m)]
        if previous:
            row += [textfmt.number(m.previous.stats.mean) if m.previous else "–",
                    _delta(m.change_vs_previous_version, m)]
        if canary:
            row += [textfmt.number(m.canary.window.mean) if m.canary and m.canary.window else "–",
                    _delta(m.canary_vs_stable, m)]
        cells.append(row)
    return headers, cells


def _is_plain_metric(name: str) -> bool:
    return not is_summary_metric(name)


def _delta(delta: float | None, m: MetricStatus) -> str:
    return textfmt.change(delta, None if delta is None else verdict(delta, m.direction))


def _when(at: datetime | None) -> str:
    return "–" if at is None else f"{at:%d %b %H:%M}"


def _availability(env: EnvironmentStatus) -> str | None:
    a = env.availability
    if a is None or a.uptime is None:
        return None
    parts = [f"*Availability* {a.uptime * 100:.2f}%"]
    if a.incidents:
        parts.append(f"{len(a.incidents)} incident{'s' if len(a.incidents) != 1 else ''}")
        if a.ongoing:
            parts.append(":x: down now")
        if a.mttr is not None:
            parts.append(f"MTTR {duration(a.mttr)}")
        if a.mtbf is not None:
            parts.append(f"MTBF {duration(a.mtbf)}")
    return " · ".join(parts)


def _drift(env: EnvironmentStatus) -> str | None:
    d = env.drift
    if d is None:
        return None
    parts = ["*Drift*"]
    if d.drift_share is not None:
        parts.append(f"{d.drift_share * 100:.0f}% of features")
    if d.dataset_drift is not None:
        parts.append(":warning: dataset drift" if d.dataset_drift else "no dataset drift")
    top = d.drifting[:3]
    if top:
        parts.append(", ".join(f"{escape(f.feature)} {f.method} {textfmt.number(f.value, 3)}" for f in top))
    return " · ".join(parts)


QUALITY_WORDS = {"missing": "missing", "out_of_range": "out of range", "new_category": "new categories",
                 "wrong_type": "wrong type"}


def _data_quality(env: EnvironmentStatus) -> str | None:
    q = env.data_quality
    if q is None:
        return None
    if not q.issues:
        return f"*Data quality* {q.features_checked} features clean"
    issues = [f"{escape(i.feature)} {QUALITY_WORDS[i.kind]} {i.share * 100:.1f}%" for i in q.issues[:3]]
    more = f" (+{len(q.issues) - 3} more)" if len(q.issues) > 3 else ""
    return "*Data quality* " + ", ".join(issues) + more


def _coverage(env: EnvironmentStatus, window: str) -> str | None:
    c = env.coverage
    if c is None or c.share is None:
        return None
    return f"*Labels* for {c.share * 100:.0f}% of the last {window}'s predictions"


def _badges(env: EnvironmentStatus) -> str:
    badges = []
    a = env.availability
    if a is not None and a.uptime is not None:
        badges.append(_uptime_badge(a.uptime, a.ongoing))
    if env.drift is not None and env.drift.dataset_drift:
        badges.append(":warning: drift")
    if env.firing:
        badges.append(f":rotating_light: {len(env.firing)} firing")
    if any(not s.healthy for s in env.sources):
        badges.append(":hourglass: source quiet")
    if not env.has_data:
        badges.append("_no data yet_" if env.stable_has_no_data else "_no data_")
    return "  ".join(badges) or ":white_check_mark:"


def _uptime_badge(uptime: float, down_now: bool) -> str:
    if down_now or uptime < UPTIME_BAD:
        return f":x: up {uptime * 100:.1f}%"
    if uptime < UPTIME_WARN:
        return f":warning: up {uptime * 100:.1f}%"
    return f":white_check_mark: up {uptime * 100:.2f}%"


def _fallback(env: EnvironmentStatus) -> str:
    if env.stable_has_no_data:
        return f"{env.environment} {_no_data_yet(env)}"
    key = [f"{m.metric} {textfmt.number(m.value)}" for name, m in sorted(env.metrics.items())
           if _is_plain_metric(name) and m.value is not None][:4]
    return f"{env.environment} " + (", ".join(key) or "no data")


# ---- every model ------------------------------------------------------------------------------------


def overview(o: Overview) -> Message:
    if not o.models:
        return Message.build("No models registered yet.", [section("No models registered yet.")])
    blocks: list[Block] = [header(f"Model status, last {duration(o.window)}")]
    texts = []
    for line in o.models[: MAX_MESSAGE_BLOCKS - 3]:
        envs = [_env_line(e) for e in line.environments] or ["_nothing deployed, no data_"]
        blocks.append(section(f"*{escape(line.model)}*\n" + "\n".join(envs)))
        texts.append(line.model)
    if o.total > len(o.models):
        blocks.append(context(f"Showing {len(o.models)} of {o.total} models; `/model status MODEL` for one."))
    else:
        blocks.append(context("`/model status MODEL` for the details of one model."))
    return Message.build(escape("Model status: " + ", ".join(texts)), blocks)


def _env_line(e: EnvironmentLine) -> str:
    parts = [f"{escape(e.environment)} " + (f"v{e.stable}" if e.stable else "–")]
    badges = []
    if e.quality:
        parts.append(f"{escape(e.quality[0])} {textfmt.number(e.quality[1], 3)}")
    if e.latency:
        parts.append(f"p95 {textfmt.number(e.latency[1], 1)} ms")
    if e.drift_share is not None:
        parts.append(f"drift {e.drift_share * 100:.0f}%")
    if e.label_coverage is not None:
        parts.append(f"labels {e.label_coverage * 100:.0f}%")
    if e.uptime is not None:
        badges.append(_uptime_badge(e.uptime, False))
    if e.dataset_drift:
        badges.append(":warning: drift")
    if e.firing:
        badges.append(f":rotating_light: {e.firing}")
    if e.stale:
        badges.append(":hourglass: stale")
    if e.newest is None:
        badges.append("_no data yet_" if e.stable else "_no data_")
    return " · ".join(parts) + "  " + ("  ".join(badges) or ":white_check_mark:")
