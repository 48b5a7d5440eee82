"""Paused deliveries in Slack: the announcement a circuit breaker posts once (and edits when the
destination resumes), and the section admins see on their App Home."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.blocks.approvals import when
from bot.blocks.base import Message, clip, context, escape, fallback_text, section
from bot.blocks.templates import template
from bot.domain.deliveries import PausedDestination

MAX_SHOWN = 5


@template("delivery_paused")
def delivery_paused(data: dict[str, Any]) -> Message:
    """`data` as `bot.delivery.circuits` writes it: circuit, state (paused|resumed), opened_at,
    failures, last_error, paused_until, waiting (paused) or resumed_at (resumed)."""
    where = f"`{escape(clip(str(data.get('circuit') or '?'), 300))}`"
    if data.get("state") == "resumed":
        text = (f":white_check_mark: Deliveries to {where} resumed at {when(data.get('resumed_at'))}, after a pause "
                f"that began {when(data.get('opened_at'))}; what waited is being sent in order.")
        return Message.build(fallback_text(text), [section(text)])
    error = escape(clip(str(data.get("last_error") or "no answer"), 300))
    text = (f":warning: Deliveries to {where} are paused after {int(data.get('failures') or 0)} failures in a row "
            f"({error}). {int(data.get('waiting') or 0)} waiting; nothing else is held up. modelbot tries again "
            f"on its own from {when(data.get('paused_until'))}, backing off while it keeps failing, and edits "
            "this message when deliveries resume.")
    return Message.build(fallback_text(text), [section(text), context("`modelbot outbox` lists paused destinations.")])


def paused_blocks(paused: Sequence[PausedDestination]) -> list[dict[str, Any]]:
    """For an admin's App Home: at most `MAX_SHOWN` paused destinations, then a count."""
    if not paused:
        return []
    lines = [f"• `{escape(clip(p.key, 200))}` since {when(p.since)}: {p.failures} failures, {p.waiting} waiting; "
             f"next try {when(p.next_try)}" for p in paused[:MAX_SHOWN]]
    if len(paused) > MAX_SHOWN:
        lines.append(f"… and {len(paused) - MAX_SHOWN} more: `modelbot outbox`")
    return [section(f":warning: *Deliveries paused* ({len(paused)})\n" + "\n".join(lines)).to_dict()]
