"""Slack messages of the MLflow sync: the new-version card, the external-move notice, and the
sync state line under `/model show MODEL @ENV`.

Every string that came from MLflow (names, descriptions, sources, metric keys, users) goes
through `escape`; numbers are labelled with the version they belong to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from slack_sdk.models.blocks import Block

from bot.blocks import textfmt
from bot.blocks.base import (
    MAX_FALLBACK_TEXT,
    Message,
    actions,
    button,
    clip,
    code_block,
    context,
    escape,
    header,
    section,
)
from bot.blocks.compare import ARROWS
from bot.blocks.registry import first_line
from bot.blocks.templates import template
from bot.domain.compare import metric_direction, verdict

COMPARE_ACTION = "modelbot_mlflow_compare"
PROMOTE_ACTION = "modelbot_mlflow_promote"
REQUEST_ACTION = "modelbot_mlflow_request"
MAX_METRICS = 20


@template("mlflow_new_version")
def new_version_card(data: Mapping[str, Any]) -> Message:
    model, number = str(data["model"]), int(data["version"])
    environments: list[str] = list(data.get("environments") or [])
    baseline = data.get("baseline") or {}
    base_version = baseline.get("version")
    base_env = str(baseline.get("environment") or (environments[-1] if environments else "production"))
    blocks: list[Block] = [header(f"New version in MLflow: {model} v{number}")]
    facts = [f"*By*\n{escape(data.get('created_by') or 'not recorded in MLflow')}",
             f"*Run*\n`{escape(data.get('run_id') or '–')}`",
             f"*Source*\n`{escape(data.get('source') or data.get('artifact_uri') or '–')}`"]
    if base_version is not None:
        facts.append(f"*{escape(base_env)} serves*\nv{base_version}")
    blocks.append(section(escape(first_line(data["description"], 300)) if data.get("description") else "",
                          fields=facts))
    blocks.append(_metrics(data, number, base_version, base_env))
    params = data.get("params") or {}
    if params:
        shown = ", ".join(f"{escape(k)}={escape(v)}" for k, v in sorted(params.items())[:15])
        more = f" … and {len(params) - 15} more" if len(params) > 15 else ""
        blocks.append(context(f"Params of v{number}: {shown}{more}"))
    buttons = []
    value = {"m": model, "v": number}
    if base_version is not None and base_version != number:
        buttons.append(button(f"Compare with v{base_version}", COMPARE_ACTION, {**value, "b": base_version}))
    if len(environments) > 1:
        buttons.append(button(f"Promote to {environments[0]}", PROMOTE_ACTION, {**value, "e": environments[0]}))
    if environments:
        buttons.append(button(f"Request {environments[-1]}", REQUEST_ACTION, {**value, "e": environments[-1]},
                              style="primary"))
    if buttons:
        blocks.append(actions(*buttons))
    blocks.append(context(f"Registered in MLflow at {escape(data.get('tracking_uri') or 'MLflow')}; "
                          "the buttons follow the same rules as `/model promote`."))
    text = f"New version in MLflow: {model} v{number}" + (f" ({base_env} serves v{base_version})"
                                                           if base_version is not None else "")
    return Message.build(escape(text), blocks, in_channel=True)


def _metrics(data: Mapping[str, Any], number: int, base_version: Any, base_env: str) -> Block:
    metrics: Mapping[str, float] = data.get("metrics") or {}
    if not metrics:
        return section(f"_v{number} has no metrics in its MLflow run._")
    base: Mapping[str, float] = (data.get("baseline") or {}).get("metrics") or {}
    directions: Mapping[str, Any] = data.get("directions") or {}
    if base_version is None:
        rows = [[escape(k), textfmt.number(v)] for k, v in sorted(metrics.items())[:MAX_METRICS]]
        return section(f"*Metrics of v{number}* (nothing serves {escape(base_env)} yet)\n"
                       + code_block(textfmt.table(["metric", f"v{number}"], rows).splitlines()))
    rows = []
    for key, value in sorted(metrics.items())[:MAX_METRICS]:
        old = base.get(key)
        if old is None:
            rows.append([escape(key), "–", textfmt.number(value), ""])
            continue
        delta = float(value) - float(old)
        mark = ARROWS[verdict(delta, metric_direction(key, directions))]
        rows.append([escape(key), textfmt.number(old), textfmt.number(value), f"{textfmt.signed(delta)} {mark}"])
    table = textfmt.table(["metric", f"v{base_version} ({escape(base_env)})", f"v{number}", "Δ"], rows)
    more = f"\n… {len(metrics) - MAX_METRICS} more metrics" if len(metrics) > MAX_METRICS else ""
    return section(f"*Against what {escape(base_env)} serves* ▲ better ▼ worse\n"
                   + code_block(table.splitlines(), limit=2800) + more)


@template("mlflow_external_move")
def external_move_notice(data: Mapping[str, Any]) -> Message:
    model, env, alias = str(data["model"]), str(data["environment"]), str(data["alias"])
    now = data.get("mlflow_version")
    moved = f"moved to *v{now}*" if now is not None else "was *deleted*"
    what = f"{escape(env)} canary" if data.get("canary") else escape(env)
    serving = data.get("modelbot_version")
    served = f"v{serving}" if serving is not None else "nothing"
    mode = str(data.get("mode") or "report")
    lead = {"report": ":warning:", "accept": ":arrows_counterclockwise:", "revert": ":leftwards_arrow_with_hook:"}
    text = (f"{lead.get(mode, ':warning:')} MLflow alias `{escape(alias)}` of *{escape(model)}* {moved} outside "
            f"modelbot; modelbot's {what} serves {served}. {escape(data.get('result') or '')}.")
    blocks: list[Block] = [section(text), context(
        f"external_moves = {escape(mode)} in [mlflow] · {escape(data.get('tracking_uri') or 'MLflow')} · "
        f"`/model history {escape(model)} {escape(env)}` shows the audit row")]
    fallback = (f"MLflow alias {alias} of {model} {'moved to v' + str(now) if now is not None else 'was deleted'} "
                f"outside modelbot; {env} serves {served}. {data.get('result') or ''}")
    return Message.build(escape(fallback), blocks, in_channel=True)


def with_alias_states(message: Message, states: Iterable[Any]) -> Message:
    """`/model show MODEL @ENV` plus one context line per mapped alias (AliasState.describe)."""
    lines = [escape(s.describe()) for s in states]
    if not lines:
        return message
    extra = context(*lines).to_dict()
    return Message(text=clip(message.text + "\n" + "\n".join(lines), MAX_FALLBACK_TEXT), blocks=[*message.blocks, extra],
                   in_channel=message.in_channel)
