"""Block Kit building blocks shared by every renderer.

Blocks are built with `slack_sdk.models.blocks`, whose `to_dict()` checks most field limits;
`Message` adds what slack_sdk does not check (50 blocks per message, 100 per view) and always
carries a plain-text fallback. `escape()` is the one function every piece of user text goes
through before it enters mrkdwn.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FALLBACK_TEXT = 3000
_EMOJI = re.compile(r":[a-z0-9_+\-]+: ?")
# what may stand inside `<url|label>`: an http(s) URL with nothing that ends or splits the link
_LINKABLE = re.compile(r"https?://[^\s<>|]+")


def escape(text: object) -> str:
    """Escape exactly what Slack's mrkdwn needs: `&`, `<`, `>` (stops `<!channel>` and `<@U…>`).

    The top-level `text` of a message (what notifications show) is parsed like mrkdwn too: a
    renderer builds it from escaped pieces, or from its escaped section text with
    `fallback_text`, never from raw user text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: object, label: str, *, otherwise: str | None = None) -> str:
    """`<url|label>` when `url` is an http(s) URL Slack can link, else the escaped `otherwise`
    (or label). No URL is trusted to be free of markup, not even one Slack handed back: a `|`
    or `>` in it would end the link and let the rest through unescaped."""
    if url is not None and _LINKABLE.fullmatch(str(url)):
        return f"<{escape(url)}|{escape(label)}>"
    return escape(otherwise if otherwise is not None else label)


def fallback_text(mrkdwn_text: str) -> str:
    """A message's notification text from its (already escaped) mrkdwn: without emoji codes and
    bold markers, which notifications show literally."""
    return _EMOJI.sub("", mrkdwn_text).replace("*", "")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, never cutting an escaped entity (`&amp;`) or a mention/link
    (`<@U123>`) in two: a cut one would show as raw markup."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    for opener, closer in (("&", ";"), ("<", ">")):
        at = cut.rfind(opener)
        if at != -1 and closer not in cut[at:]:
            cut = cut[:at]
    return cut + "…"


def mrkdwn(text: str) -> MarkdownTextObject:
    # verbatim: no automatic linking of @here, #channel or URLs typed inside user text
    return MarkdownTextObject(text=clip(text, MAX_SECTION_TEXT), verbatim=True)


def plain(text: str, limit: int = 150) -> PlainTextObject:
    return PlainTextObject(text=clip(text, limit), emoji=True)


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=plain(text, 150))


def section(text: str, *, fields: Sequence[str] = (), block_id: str | None = None) -> SectionBlock:
    return SectionBlock(
        text=mrkdwn(text) if text else None,
        fields=[mrkdwn(clip(f, 2000)) for f in fields[:10]] or None,
        block_id=block_id,
    )


def context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[mrkdwn(clip(t, 2000)) for t in texts[:10]])


def divider() -> DividerBlock:
    return DividerBlock()


def button(
    text: str,
    action_id: str,
    value: str | dict[str, Any] = "",
    *,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    raw = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if len(raw) > 2000:
        raise ValueError(f"button value for {action_id} is {len(raw)} characters; Slack allows 2000")
    return ButtonElement(text=plain(text, 75), action_id=action_id, value=raw or None, style=style, confirm=confirm)


def actions(*elements: ButtonElement, block_id: str | None = None) -> ActionsBlock:
    return ActionsBlock(elements=list(elements[:25]), block_id=block_id)


def confirm(title: str, text: str, yes: str, no: str = "Cancel", *, danger: bool = False) -> ConfirmObject:
    return ConfirmObject(
        title=plain(title, 100), text=mrkdwn(clip(text, 300)), confirm=plain(yes, 30), deny=plain(no, 30),
        style="danger" if danger else "primary",
    )


def code_block(lines: Sequence[str], limit: int = MAX_SECTION_TEXT) -> str:
    """A monospace block; lines that do not fit are dropped with a note, never cut mid-line."""
    budget = limit - 8 - 40
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            kept.append(f"… {len(lines) - len(kept)} more lines")
            break
        kept.append(line)
        used += len(line) + 1
    return "```" + "\n".join(kept) + "```"


@dataclass(frozen=True)
class File:
    """A file that belongs to an answer (a chart). Each front end delivers it as it can: the
    shell writes it to disk; a slash-command reply in Slack cannot carry one, so Slack omits it."""

    filename: str
    content: bytes
    title: str
    alt_text: str = ""


@dataclass(frozen=True)
class Message:
    """A rendered answer: Block Kit blocks plus the plain-text fallback Slack shows in notifications."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    in_channel: bool = False
    files: tuple[File, ...] = ()

    @classmethod
    def build(cls, text: str, blocks: Sequence[Block], *, in_channel: bool = False,
              files: Sequence[File] = ()) -> Message:
        if len(blocks) > MAX_MESSAGE_BLOCKS:
            raise ValueError(f"message has {len(blocks)} blocks; Slack allows {MAX_MESSAGE_BLOCKS}")
        rendered = [b.to_dict() for b in blocks]  # raises SlackObjectFormationError past a limit
        return cls(text=clip(text, MAX_FALLBACK_TEXT), blocks=rendered, in_channel=in_channel, files=tuple(files))

    def shared(self, share: bool) -> Message:
        return dataclasses.replace(self, in_channel=share)

    def payload(self) -> dict[str, Any]:
        """Keyword arguments for `respond()` / `chat.postMessage`."""
        return {
            "text": self.text,
            "blocks": self.blocks,
            "response_type": "in_channel" if self.in_channel else "ephemeral",
        }
