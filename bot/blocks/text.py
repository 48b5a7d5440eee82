"""Block Kit → terminal text, so the shell shows exactly what Slack would show.

The shell renders the same `Message.blocks` that Slack receives instead of having its own
renderers: that keeps one renderer per message kind, and anything wrong in a renderer shows
up in the terminal too. Slack-only markup is translated: mrkdwn emphasis becomes ANSI (or
disappears when the output is not a terminal), entities like `&lt;` are unescaped (so a
description `<!channel>` reads literally), `<@U123>` mentions become `@U123`, and buttons
become numbered `[1] Next page` entries the shell can click.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ANSI", "PLAIN", "Button", "Confirm", "Rendered", "Style", "mrkdwn_to_text", "render"]

DIVIDER_WIDTH = 48
CODE_INDENT = "  "


@dataclass(frozen=True)
class Style:
    """How emphasis looks: ANSI escapes on a terminal, nothing when piped (scripts want plain text)."""

    bold: Callable[[str], str]
    italic: Callable[[str], str]
    dim: Callable[[str], str]
    strike: Callable[[str], str]


def _same(text: str) -> str:
    return text


def _sgr(code: str) -> Callable[[str], str]:
    return lambda text: f"\x1b[{code}m{text}\x1b[0m" if text else text


PLAIN = Style(bold=_same, italic=_same, dim=_same, strike=_same)
ANSI = Style(bold=_sgr("1"), italic=_sgr("3"), dim=_sgr("2"), strike=_sgr("9"))


@dataclass(frozen=True)
class Confirm:
    """A button's `confirm` dialog: the shell asks before clicking, as Slack would."""

    title: str
    text: str
    yes: str
    no: str


@dataclass(frozen=True)
class Button:
    """A clickable button, numbered as shown on screen."""

    number: int
    label: str
    action_id: str
    value: str
    style: str | None = None
    confirm: Confirm | None = None


@dataclass(frozen=True)
class Rendered:
    text: str
    buttons: tuple[Button, ...] = ()


# Shortcodes our renderers use, so warnings do not read as ":warning:" in a terminal.
EMOJI: Mapping[str, str] = {
    "warning": "⚠", "x": "✖", "white_check_mark": "✔", "heavy_check_mark": "✔", "rotating_light": "🚨",
    "hourglass": "⌛", "hourglass_flowing_sand": "⏳", "rocket": "🚀", "lock": "🔒", "no_entry": "⛔",
    "information_source": "ℹ", "bell": "🔔", "arrow_right": "→", "tada": "🎉",
}

_CODE_FENCE = re.compile(r"```(.*?)```", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_ENTITY = re.compile(r"<([^<>\n]+)>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")


def render(
    blocks: Sequence[Mapping[str, Any]],
    *,
    fallback: str = "",
    style: Style = PLAIN,
    first_button: int = 1,
) -> Rendered:
    """Render a message's blocks; the fallback text is used only when no block says anything."""
    lines: list[str] = []
    buttons: list[Button] = []

    def add_buttons(elements: Iterable[Mapping[str, Any]]) -> str:
        shown = []
        for element in elements:
            if element.get("type") == "button":
                button = _button(element, first_button + len(buttons))
                buttons.append(button)
                shown.append(f"[{button.number}] {button.label}")
            else:
                shown.append(f"({element.get('type', 'control')}: only in Slack)")
        return "   ".join(shown)

    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _plain(block.get("text"))
            if lines:
                lines.append("")
            lines += [style.bold(title), "─" * min(_width(title), DIVIDER_WIDTH * 2)]
        elif kind == "section":
            if block.get("text"):
                lines.append(_text_object(block["text"], style))
            for field in block.get("fields") or ():
                lines.append(_field(field, style))
            accessory = block.get("accessory")
            if accessory:
                lines.append(add_buttons([accessory]))
        elif kind == "context":
            # emphasis inside a dim line would end the dimming early, so it is dropped here
            parts = [_context_element(e, PLAIN) for e in block.get("elements") or ()]
            lines.append(style.dim("  ".join(p for p in parts if p)))
        elif kind == "divider":
            lines.append(style.dim("─" * DIVIDER_WIDTH))
        elif kind == "actions":
            lines.append(add_buttons(block.get("elements") or ()))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        # other block kinds (inputs, rich text) have no terminal form; the fallback covers them
    body = "\n".join(lines).strip("\n")
    if not body.strip():
        body = mrkdwn_to_text(fallback, style)
    return Rendered(body, tuple(buttons))


def mrkdwn_to_text(text: str, style: Style = PLAIN) -> str:
    """Slack mrkdwn → terminal text. Code keeps its content verbatim (only entities unescaped)."""
    out: list[str] = []
    position = 0
    for fence in _CODE_FENCE.finditer(text):
        out.append(_inline(text[position : fence.start()], style))
        code = html.unescape(fence.group(1)).strip("\n")
        indented = "\n".join(CODE_INDENT + line for line in code.splitlines())
        before = "" if not out[-1] or out[-1].endswith("\n") else "\n"
        out.append(f"{before}{indented}\n")
        position = fence.end()
    out.append(_inline(text[position:], style))
    return "".join(out).rstrip("\n")


def _inline(text: str, style: Style) -> str:
    """Text outside code fences: inline code kept as `code`, the rest formatted."""
    out: list[str] = []
    position = 0
    for code in _INLINE_CODE.finditer(text):
        out.append(_formatted(text[position : code.start()], style))
        out.append(f"`{_unescape(code.group(1))}`")
        position = code.end()
    out.append(_formatted(text[position:], style))
    return "".join(out)


def _formatted(text: str, style: Style) -> str:
    # order matters: entities and emphasis are read on the escaped text, and only then are
    # `&lt;` etc. unescaped, so user text like `<!channel>` can never turn into markup
    text = _ENTITY.sub(_entity, text)
    text = _BOLD.sub(lambda m: style.bold(m.group(1)), text)
    text = _ITALIC.sub(lambda m: style.italic(m.group(1)), text)
    text = _STRIKE.sub(lambda m: style.strike(m.group(1)), text)
    text = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    return _unescape(text)


def _entity(match: re.Match[str]) -> str:
    """`<@U1>` → @U1, `<#C1|general>` → #general, `<!here>` → @here, `<url|label>` → label (url)."""
    target, _, label = match.group(1).partition("|")
    if target.startswith("@"):
        return "@" + (label.lstrip("@") or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        if label:
            return label
        return "@" + target[1:].split("^")[0]
    if label and label != target:
        return f"{label} ({target})"
    return target


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _plain(obj: Mapping[str, Any] | None) -> str:
    """A plain_text object: shown as written (Slack does not parse it), emoji shortcodes resolved."""
    if not obj:
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_text(text)
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def _text_object(obj: Mapping[str, Any], style: Style) -> str:
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_text(str(obj.get("text", "")), style)
    return _plain(obj)


def _field(obj: Mapping[str, Any], style: Style) -> str:
    """Slack lays fields out in two columns as label over value; a terminal reads `Label: value`."""
    text = _text_object(obj, style)
    label, newline, value = text.partition("\n")
    return f"{label}: {value.replace(chr(10), ' ')}" if newline else text


def _context_element(element: Mapping[str, Any], style: Style) -> str:
    if element.get("type") == "image":
        return f"[{element.get('alt_text', 'image')}]"
    return _text_object(element, style)


def _button(element: Mapping[str, Any], number: int) -> Button:
    confirm = element.get("confirm")
    return Button(
        number=number,
        label=_plain(element.get("text")),
        action_id=str(element.get("action_id", "")),
        value=str(element.get("value") or ""),
        style=element.get("style"),
        confirm=Confirm(
            title=_plain(confirm.get("title")) or "Are you sure?",
            text=_plain(confirm.get("text")),
            yes=_plain(confirm.get("confirm")) or "Yes",
            no=_plain(confirm.get("deny")) or "Cancel",
        ) if confirm else None,
    )


def _width(text: str) -> int:
    """Columns a string takes in a terminal (wide East Asian characters count twice)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
