"""Renderers for `/model status`: one model in detail, or every model on a line with badges.

Pure functions from `bot.domain.status` results to a `Message`. Per-feature drift
numbers (`psi:age` …) and the raw `up` series are summarised in their own lines rather
than listed as metrics, so the table stays readable on a phone. Limits: at most
`MAX_METRIC_ROWS` metrics per environment and 50 blocks per message.
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks import textfmt
from bot.blocks.base import MAX_MESSAGE_BLOCKS, Message, code_block, context, divider, escape, header, section
from bot.blocks.textfmt import duration
from bot.domain.compare import verdict
from bot.domain.status import (
    EnvironmentLine,
    EnvironmentStatus,
    MetricStatus,
    ModelStatus,
    Overview,
    is_summary_metric,
)

MAX_METRIC_ROWS = 15
ARROWS = {"better": "▲", "worse": "▼", "same": "="}
UPTIME_WARN = 0.99
UPTIME_BAD = 0.95


def model_status(status: ModelStatus) -> Message:
    window = duration(status.window)
    blocks: list[Block] = [header(f"{status.model}: status, last {window}")]
    blocks.append(context(f"▲ better, ▼ worse, by each metric's direction. Δ{window}: this {window} against the "
                          f"{window} before; Δprev: against the previous version."))
    summary = []
    for i, env in enumerate(status.environments):
        if i:
            blocks.append(divider())
        blocks += _environment(env, window)
        summary.append(_fallback(env))
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        blocks = [*blocks[:MAX_MESSAGE_BLOCKS - 1], context("… more in `modelbot status --json`.")]
    return Message.build(f"{status.model}: " + " | ".join(summary), blocks)


def _environment(env: EnvironmentStatus, window: str) -> list[Block]:
    s = env.serving
    serving = f"v{s.stable}" if s.stable else "nothing serves"
    if s.previous:
        serving += f" (previous v{s.previous})"
    if s.canary:
        serving += f" · canary v{s.canary} at {s.canary_weight}%"
    blocks: list[Block] = [section(f"*{escape(env.environment)}*  {serving}  {_badges(env)}")]
    rows = [m for name, m in sorted(env.metrics.items()) if _is_plain_metric(name)]
    if rows:
        lines = textfmt.table(["metric", "latest", f"Δ{window}", "Δprev"],
                              [_metric_row(m) for m in rows[:MAX_METRIC_ROWS]]).splitlines()
        if len(rows) > MAX_METRIC_ROWS:
            lines.append(f"… {len(rows) - MAX_METRIC_ROWS} more metrics")
        blocks.append(section(code_block(lines)))
    facts = [line for line in (_availability(env), _drift(env)) if line]
    if facts:
        blocks.append(section("\n".join(facts)))
    if env.firing:
        lines = [f":rotating_light: *{escape(f.get('name', 'alert'))}* {escape(f.get('summary', ''))}".rstrip()
                 for f in env.firing[:5]]
        if len(env.firing) > 5:
            lines.append(f"… and {len(env.firing) - 5} more")
        blocks.append(section("\n".join(lines)))
    if env.notes:
        blocks.append(context(*(escape(n) for n in env.notes[:5])))
    return blocks


def _is_plain_metric(name: str) -> bool:
    return not is_summary_metric(name)


def _metric_row(m: MetricStatus) -> list[str]:
    return [escape(m.metric), textfmt.number(m.value), _delta(m.change_vs_previous_window, m),
            _delta(m.change_vs_previous_version, m)]


def _delta(delta: float | None, m: MetricStatus) -> str:
    if delta is None:
        return "–"
    return f"{textfmt.signed(delta)} {ARROWS[verdict(delta, m.direction)]}"


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
        badges.append("_no data_")
    return "  ".join(badges) or ":white_check_mark:"


def _uptime_badge(uptime: float, down_now: bool) -> str:
    if down_now or uptime < UPTIME_BAD:
        return f":x: up {uptime * 100:.1f}%"
    if uptime < UPTIME_WARN:
        return f":warning: up {uptime * 100:.1f}%"
    return f":white_check_mark: up {uptime * 100:.2f}%"


def _fallback(env: EnvironmentStatus) -> str:
    key = [f"{m.metric} {textfmt.number(m.value)}" for name, m in sorted(env.metrics.items())
           if _is_plain_metric(name)][:4]
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
    return Message.build("Model status: " + ", ".join(texts), blocks)


def _env_line(e: EnvironmentLine) -> str:
    parts = [f"{escape(e.environment)} " + (f"v{e.stable}" if e.stable else "–")]
    badges = []
    if e.quality:
        parts.append(f"{escape(e.quality[0])} {textfmt.number(e.quality[1], 3)}")
    if e.latency:
        parts.append(f"p95 {textfmt.number(e.latency[1], 1)} ms")
    if e.uptime is not None:
        badges.append(_uptime_badge(e.uptime, False))
    if e.dataset_drift:
        badges.append(":warning: drift")
    if e.firing:
        badges.append(f":rotating_light: {e.firing}")
    if e.stale:
        badges.append(":hourglass: stale")
    if e.newest is None:
        badges.append("_no data_")
    return " · ".join(parts) + "  " + ("  ".join(badges) or ":white_check_mark:")
