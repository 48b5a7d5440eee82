"""Block Kit → terminal text, so the shell shows exactly what Slack would show.

The shell renders the same `Message.blocks` (and App Home and modal views) that Slack
receives instead of having its own renderers: that keeps one renderer per message kind, and
anything wrong in a renderer shows up in the terminal too. Slack-only markup is translated as
Slack's client would show it: mrkdwn emphasis and code become ANSI styles (or disappear when
the output is not a terminal), emoji shortcodes become the emoji (from the `emoji` package's
table, which knows Slack's names), entities like `&lt;` are unescaped (so a description
`<!channel>` reads literally), `<@U123>` reads `@alice` and `<#C123>` reads `#approvals`
when the names are known (`Names`), and buttons become numbered `[1] Next page` entries the
shell can click. Modal inputs become `Input`s the shell asks for one by one.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import emoji as emoji_table

__all__ = [
    "ANSI",
    "NO_NAMES",
    "PLAIN",
    "Button",
    "Confirm",
    "Input",
    "Names",
    "Rendered",
    "Style",
    "emojize",
    "modal_inputs",
    "mrkdwn_to_text",
    "plain_text",
    "render",
]

DIVIDER_WIDTH = 48
CODE_INDENT = "  "


@dataclass(frozen=True)
class Style:
    """How emphasis looks: ANSI escapes on a terminal, nothing when piped (scripts want plain text)."""

    bold: Callable[[str], str]
    italic: Callable[[str], str]
    dim: Callable[[str], str]
    strike: Callable[[str], str]
    code: Callable[[str], str]


def _same(text: str) -> str:
    return text


def _backticks(text: str) -> str:
    return f"`{text}`"


def _sgr(code: str) -> Callable[[str], str]:
    return lambda text: f"\x1b[{code}m{text}\x1b[0m" if text else text


PLAIN = Style(bold=_same, italic=_same, dim=_same, strike=_same, code=_backticks)
ANSI = Style(bold=_sgr("1"), italic=_sgr("3"), dim=_sgr("2"), strike=_sgr("9"), code=_sgr("36"))


@dataclass(frozen=True)
class Names:
    """Display names for Slack ids, as the Slack client shows mentions: `<@U0BOB>` → @bob."""

    users: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)

    def user(self, user_id: str) -> str:
        return "@" + self.users.get(user_id, user_id)

    def channel(self, channel_id: str) -> str:
        return "#" + self.channels.get(channel_id, channel_id)


NO_NAMES = Names()


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


@dataclass(frozen=True)
class Input:
    """A modal's text input, asked for as a prompt: `block_id`/`action_id` say where the answer goes."""

    block_id: str
    action_id: str
    label: str
    optional: bool = False
    multiline: bool = False
    initial: str = ""

_CODE_FENCE = re.compile(r"```(.*?)```", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_ENTITY = re.compile(r"<([^<>\n]+)>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+'-]+):")


def render(
    blocks: Sequence[Mapping[str, Any]],
    *,
    fallback: str = "",
    style: Style = PLAIN,
    first_button: int = 1,
    names: Names = NO_NAMES,
) -> Rendered:
    """Render a message's (or a view's) blocks; the fallback text is used only when no block says anything."""
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
            title = plain_text(block.get("text"), names)
            if lines:
                lines.append("")
            lines += [style.bold(title), "─" * min(_width(title), DIVIDER_WIDTH * 2)]
        elif kind == "section":
            if block.get("text"):
                lines.append(_text_object(block["text"], style, names))
            for item in block.get("fields") or ():
                lines.append(_field(item, style, names))
            accessory = block.get("accessory")
            if accessory:
                lines.append(add_buttons([accessory]))
        elif kind == "context":
            parts = [_context_element(e, names) for e in block.get("elements") or ()]
            lines.append(style.dim("  ".join(p for p in parts if p)))
        elif kind == "divider":
            lines.append(style.dim("─" * DIVIDER_WIDTH))
        elif kind == "actions":
            lines.append(add_buttons(block.get("elements") or ()))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "input":
            lines.append(f"{plain_text(block.get('label'), names)}: …")
        # other block kinds (rich text) have no terminal form; the fallback covers them
    body = "\n".join(lines).strip("\n")
    if not body.strip():
        body = mrkdwn_to_text(fallback, style, names)
    return Rendered(body, tuple(buttons))


def modal_inputs(view: Mapping[str, Any]) -> list[Input]:
    """The text inputs of a modal view, in order (the shell asks for each)."""
    inputs = []
    for block in view.get("blocks") or ():
        element = block.get("element") or {}
        if block.get("type") == "input" and element.get("type") == "plain_text_input":
            inputs.append(Input(str(block.get("block_id", "")), str(element.get("action_id", "")),
                                plain_text(block.get("label")), bool(block.get("optional")),
                                bool(element.get("multiline")), str(element.get("initial_value") or "")))
    return inputs


def emojize(text: str) -> str:
    """`:rotating_light:` → 🚨 as Slack shows it; an unknown `:word:` stays as typed. Slack's own
    names for a few emoji (`large_green_circle`) add a `large_` the Unicode names lack."""

    return _EMOJI.sub(lambda m: _emoji(m.group(1)), text)


@functools.lru_cache(maxsize=512)
def _emoji(name: str) -> str:
    for candidate in (f":{name}:", f":{name.removeprefix('large_')}:"):
        for language in ("alias", "en"):
            found = emoji_table.emojize(candidate, language=language)
            if found != candidate:
                return found
    return f":{name}:"


def mrkdwn_to_text(text: str, style: Style = PLAIN, names: Names = NO_NAMES) -> str:
    """Slack mrkdwn → terminal text. Code keeps its content verbatim (only entities unescaped)."""
    out: list[str] = []
    position = 0
    for fence in _CODE_FENCE.finditer(text):
        out.append(_inline(text[position : fence.start()], style, names))
        code = html.unescape(fence.group(1)).strip("\n")
        indented = "\n".join(CODE_INDENT + line for line in code.splitlines())
        before = "" if not out[-1] or out[-1].endswith("\n") else "\n"
        out.append(f"{before}{indented}\n")
        position = fence.end()
    out.append(_inline(text[position:], style, names))
    return "".join(out).rstrip("\n")


def _inline(text: str, style: Style, names: Names) -> str:
    """Text outside code fences: inline code styled as code, the rest formatted."""
    out: list[str] = []
    position = 0
    for code in _INLINE_CODE.finditer(text):
        out.append(_formatted(text[position : code.start()], style, names))
        out.append(style.code(_unescape(code.group(1))))
        position = code.end()
    out.append(_formatted(text[position:], style, names))
    return "".join(out)


def _formatted(text: str, style: Style, names: Names) -> str:
    # order matters: entities and emphasis are read on the escaped text, and only then are
    # `&lt;` etc. unescaped, so user text like `<!channel>` can never turn into markup
    text = _ENTITY.sub(lambda m: _entity(m, names), text)
    text = _BOLD.sub(lambda m: style.bold(m.group(1)), text)
    text = _ITALIC.sub(lambda m: style.italic(m.group(1)), text)
    text = _STRIKE.sub(lambda m: style.strike(m.group(1)), text)
    return _unescape(emojize(text))


def _entity(match: re.Match[str], names: Names) -> str:
    """`<@U1>` → @alice, `<#C1|general>` → #general, `<!here>` → @here, `<url|label>` → label (url)."""
    target, _, label = match.group(1).partition("|")
    if target.startswith("@"):
        return "@" + label.lstrip("@") if label else names.user(target[1:])
    if target.startswith("#"):
        return "#" + label if label else names.channel(target[1:])
    if target.startswith("!"):
        if label:
            return label
        return "@" + target[1:].split("^")[0]
    if label and label != target:
        return f"{label} ({target})"
    return target


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain_text(obj: Mapping[str, Any] | None, names: Names = NO_NAMES) -> str:
    """A plain_text object (a modal's title, a button's label): shown as written (Slack does not
    parse it), emoji shortcodes resolved."""
    if not obj:
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_text(text, PLAIN, names)
    return emojize(text) if obj.get("emoji", True) else text


def _text_object(obj: Mapping[str, Any], style: Style, names: Names) -> str:
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_text(str(obj.get("text", "")), style, names)
    return plain_text(obj, names)


def _field(obj: Mapping[str, Any], style: Style, names: Names) -> str:
    """Slack lays fields out in two columns as label over value; a terminal reads `Label: value`."""
    text = _text_object(obj, style, names)
    label, newline, value = text.partition("\n")
    return f"{label}: {value.replace(chr(10), ' ')}" if newline else text


def _context_element(element: Mapping[str, Any], names: Names) -> str:
    # emphasis inside a dim line would end the dimming early, so context is rendered plain
    if element.get("type") == "image":
        return f"[{element.get('alt_text', 'image')}]"
    return _text_object(element, PLAIN, names)


def _button(element: Mapping[str, Any], number: int) -> Button:
    confirm = element.get("confirm")
    return Button(
        number=number,
        label=plain_text(element.get("text")),
        action_id=str(element.get("action_id", "")),
        value=str(element.get("value") or ""),
        style=element.get("style"),
        confirm=Confirm(
            title=plain_text(confirm.get("title")) or "Are you sure?",
            text=plain_text(confirm.get("text")),
            yes=plain_text(confirm.get("confirm")) or "Yes",
            no=plain_text(confirm.get("deny")) or "Cancel",
        ) if confirm else None,
    )


def _width(text: str) -> int:
    """Columns a string takes in a terminal (wide East Asian characters count twice)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
