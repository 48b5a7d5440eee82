"""Help and error replies, generated from the grammar so they cannot drift."""

from __future__ import annotations

from bot import commands
from bot.blocks.base import Message, context, escape, section


def help_all() -> Message:
    lines = [f"`{usage}` — {summary}" for usage, summary in commands.help_lines()]
    blocks = [
        section("*modelbot* — model registry, approvals, rollouts and monitoring.\n" + "\n".join(lines)),
        context("Versions: `7`, `v7`, `latest`, `@production`. Add `share` at the end to post the answer "
                "in the channel. `/model help COMMAND` for details."),
    ]
    return Message.build("modelbot commands: " + ", ".join(commands.SPECS), blocks)


def help_one(name: str) -> Message:
    spec = commands.spec_for(name)
    text = f"`/model {spec.usage}`\n{spec.summary}."
    if spec.details:
        text += f"\n{spec.details}"
    if spec.aliases:
        text += f"\nAlso: {', '.join(spec.aliases)}."
    return Message.build(f"/model {spec.usage}: {spec.summary}", [section(text)])


def error(message: str, usage: str | None = None) -> Message:
    text = f":warning: {escape(message)}"
    if usage:
        text += f"\nUsage: `{escape(usage)}`"
    # The fallback `text` is mrkdwn too (notifications, screen readers): error messages quote what the
    # user typed, so it is escaped like the blocks, or `<!channel>` typed as a command would ping.
    fallback = escape(message) + (f" Usage: {escape(usage)}" if usage else "")
    return Message.build(fallback, [section(text)])


def unexpected(reference: str) -> Message:
    return Message.build(
        f"Something went wrong on our side (reference {reference}).",
        [section(f":x: Something went wrong on our side. Tell your modelbot admin the reference `{reference}`.")],
    )
