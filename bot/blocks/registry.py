"""Renderers for registry answers: model list, version list, one version, history."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from bot.blocks import textfmt
from bot.blocks.base import Message, actions, button, context, divider, escape, header, section
from bot.domain.entities import AuditEntry, ModelSummary, Page, Version

PAGE_ACTION = "modelbot_page"
MODELS_PER_PAGE = 20
VERSIONS_PER_PAGE = 15
HISTORY_PER_PAGE = 25


def _ts(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


def pager(command_text: str, page: Page[object]) -> list[Block]:
    """A 'Next page' button that re-runs the same command from the next offset."""
    if page.next_offset is None:
        return []
    shown_to = page.offset + len(page.items)
    return [
        context(f"Showing {page.offset + 1}–{shown_to} of {page.total}."),
        actions(button("Next page", PAGE_ACTION, {"c": command_text, "o": page.next_offset})),
    ]


def model_list(page: Page[ModelSummary], environments: Sequence[str]) -> Message:
    if not page.items:
        return Message.build(
            "No models registered yet.",
            [section("No models registered yet. CI registers versions with `modelbot register MODEL --artifact URI`.")],
        )
    blocks: list[Block] = [header(f"Models ({page.total})")]
    for model in page.items:
        serving = " · ".join(
            f"{env} *v{model.serving[env]}*" if env in model.serving else f"{env} –" for env in environments
        )
        line = f"*{escape(model.name)}*  latest v{model.latest_version}  ·  {serving}"
        if model.description:
            line += f"\n{escape(first_line(model.description, 200))}"
        blocks.append(section(line))
    blocks += pager("list", page)
    return Message.build(escape("Models: " + ", ".join(m.name for m in page.items)), blocks)


def first_line(text: str, limit: int) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def version_list(model: str, page: Page[Version]) -> Message:
    blocks: list[Block] = [header(f"{model}: versions ({page.total})")]
    for v in page.items:
        serving = f"  ·  serving *{', '.join(v.serving)}*" if v.serving else ""
        status = "" if v.status == "ready" else f"  ·  _{v.status}_"
        metrics = "  ".join(f"{escape(k)} {textfmt.number(val)}" for k, val in sorted(v.metrics.items())[:6])
        blocks.append(
            section(f"*v{v.version}*{serving}{status}\n{metrics or '_no metrics_'}")
        )
        blocks.append(context(f"{_ts(v.created_at)} by {escape(v.created_by)}"))
    blocks += pager(f"list {model}", page)
    return Message.build(f"{escape(model)}: {page.total} versions", blocks)


def version_detail(v: Version) -> Message:
    title = f"{v.model} v{v.version}"
    blocks: list[Block] = [header(title)]
    facts = [
        f"*Status*\n{v.status}",
        f"*Serving*\n{', '.join(v.serving) or '–'}",
        f"*Created*\n{_ts(v.created_at)}",
        f"*By*\n{escape(v.created_by)}",
    ]
    if v.run_id:
        facts.append(f"*Run*\n`{escape(v.run_id)}`")
    if v.source:
        facts.append(f"*Source*\n`{escape(v.source)}`")
    if v.dataset_fingerprint:
        facts.append(f"*Dataset*\n`{escape(v.dataset_fingerprint)}`")
    blocks.append(section(f"*Artifact* `{escape(v.artifact_uri)}`", fields=facts))
    if v.description:
        blocks.append(section(escape(v.description)))
    for title_text, mapping, fmt in (
        ("Metrics", v.metrics, textfmt.number),
        ("Params", v.params, str),
        ("Tags", v.tags, str),
    ):
        if mapping:
            lines = [f"{escape(k)} = {escape(fmt(val))}" for k, val in sorted(mapping.items())]
            blocks.append(section(f"*{title_text}*\n" + "\n".join(lines)))
    text = f"{v.model} v{v.version} ({v.status}); " + ", ".join(
        f"{k} {textfmt.number(val)}" for k, val in sorted(v.metrics.items())[:5]
    )
    return Message.build(escape(text), blocks)


def history(model: str, environment: str | None, entries: Sequence[AuditEntry]) -> Message:
    scope = f"{model} in {environment}" if environment else model
    if not entries:
        return Message.build(f"No history for {escape(scope)} yet.",
                             [section(f"No promotions or rollbacks for *{escape(scope)}* yet.")])
    blocks: list[Block] = [header(f"History: {scope}")]
    lines = []
    for e in entries:
        if e.to_version is None:
            move = ""
        elif e.from_version:
            move = f"v{e.from_version} → v{e.to_version}"
        else:
            move = f"→ v{e.to_version}"
        if e.weight is not None:
            move += f" at {e.weight} %"
        line = f"`{e.at:%Y-%m-%d %H:%M}` *{e.action}* {e.environment} {move} by {escape(e.actor)}"
        if e.reason:
            line += f" — _{escape(first_line(e.reason, 300))}_"
        lines.append(line)
    # group lines into sections that stay under Slack's 3000 characters each
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > 2900:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    blocks.append(divider())
    blocks.append(context("Times in UTC; oldest first."))
    return Message.build(f"History of {escape(scope)}: {len(entries)} events", blocks)
