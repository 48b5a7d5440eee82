"""Renderer for a comparison: a monospace table that reads on a phone, plus what differs."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.blocks import textfmt
from bot.blocks.base import Message, code_block, context, escape, header, section
from bot.domain.compare import Comparison

ARROWS = {"better": "▲", "worse": "▼", "same": "=", None: " "}


def comparison(c: Comparison) -> Message:
    labels = c.labels
    blocks: list[Block] = [header(f"{c.model}: {' vs '.join(labels)}")]
    blocks.append(context(f"Baseline *{labels[0]}*. ▲ better, ▼ worse, by each metric's direction."))
    if c.metrics:
        rows = []
        for m in c.metrics:
            cells = [escape(m.metric)] + [textfmt.number(m.values[label]) for label in labels]
            for label in labels[1:]:
                delta = m.deltas[label]
                cells.append(f"{textfmt.signed(delta.absolute)} {ARROWS[delta.verdict]}")
            rows.append(cells)
        headers = ["metric", *labels] + [f"Δ{label}" for label in labels[1:]]
        blocks.append(section(code_block(textfmt.table(headers, rows).splitlines())))
    else:
        blocks.append(section("_None of these versions has metrics._"))
    for title, diffs in (("Params that differ", c.params), ("Tags that differ", c.tags)):
        if diffs:
            lines = [
                f"• *{escape(d.key)}*: "
                + "  ".join(f"{label} `{escape(d.values[label]) if d.values[label] is not None else '–'}`"
                            for label in labels)
                for d in diffs
            ]
            blocks.append(section(f"*{title}*\n" + "\n".join(lines)))
    summary = []
    for m in c.metrics:
        for label in labels[1:]:
            verdict = m.deltas[label].verdict
            if verdict in ("better", "worse"):
                summary.append(f"{m.metric} {verdict} in {label}")
    text = f"{c.model} {' vs '.join(labels)}: " + ("; ".join(summary[:8]) or "no metric changes")
    return Message.build(escape(text), blocks)
