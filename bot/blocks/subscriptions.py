"""Replies to `subscribe`, `unsubscribe` and `subscriptions`: what was set up and when it runs next.

Next-run times are shown in the subscription's own zone, because that is the clock its
readers set it by.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import Block

from bot.blocks.base import MAX_MESSAGE_BLOCKS, Message, context, escape, header, section
from bot.domain.channels import is_user
from bot.domain.subscriptions import SubscriptionView

PER_PAGE = MAX_MESSAGE_BLOCKS - 4


def where(target: str) -> str:
    """A channel as a link; a person's user id as their DM."""
    return f"the DM of <@{target}>" if is_user(target) else f"<#{target}>"


def _subject(view: SubscriptionView) -> str:
    return "every model" if view.all_models else f"*{escape(view.model)}*"


def next_run_text(view: SubscriptionView, now: datetime) -> str:
    nxt = view.next_run(now)
    if nxt is None:
        return "not scheduled"
    local = nxt.astimezone(zoneinfo.ZoneInfo(view.schedule.timezone))
    return local.strftime("%a %d %b %H:%M %Z")


def _line(view: SubscriptionView, now: datetime, *, with_channel: bool) -> str:
    place = f" in {where(view.channel)}" if with_channel else ""
    return (f"• {view.schedule.frequency.capitalize()} digest of {_subject(view)}{place}: "
            f"{escape(view.schedule.describe())}; next {next_run_text(view, now)}")


def subscribed(view: SubscriptionView, created: bool, now: datetime) -> Message:
    verb = "Subscribed" if created else "Changed the digest in"
    text = (f"{verb} {where(view.channel)}: {view.schedule.frequency} digest of {_subject(view)}, "
            f"{escape(view.schedule.describe())}. Next: {next_run_text(view, now)}.")
    return Message.build(text, [section(text), context(
        "Each digest shows the key numbers per environment with ▲/▼ against the previous period, drift, "
        "availability and a chart in its thread. `/model unsubscribe` stops it.")])


def unsubscribed(views: Sequence[SubscriptionView]) -> Message:
    lines = [f"• {v.schedule.frequency} digest of {_subject(v)} in {where(v.channel)}" for v in views]
    text = f"Stopped {len(views)} digest{'s' if len(views) != 1 else ''}:\n" + "\n".join(lines)
    return Message.build(text, [section(text)])


def subscription_list(views: Sequence[SubscriptionView], now: datetime, *, channel: str | None) -> Message:
    title = ("Digests in your DM" if is_user(channel) else "Digests in this channel") if channel else "All digests"
    if not views:
        place = where(channel) if channel else "any channel"
        text = f"There are no digests in {place} yet: for example `/model subscribe churn daily 09:00 Europe/Berlin`."
        return Message.build(text, [section(text)])
    blocks: list[Block] = [header(title)]
    lines = [_line(v, now, with_channel=channel is None) for v in views[:200]]
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > 2800:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
        if len(blocks) >= PER_PAGE:
            break
    if chunk and len(blocks) < PER_PAGE:
        blocks.append(section("\n".join(chunk)))
    if len(views) > 200:
        blocks.append(context(f"… and {len(views) - 200} more."))
    return Message.build(f"{title}: {len(views)}", blocks)
