"""Plain-text tables and numbers for the terminal (CLI and shell)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def signed(value: float | None, digits: int = 4) -> str:
    """`+0.0123`, `-3.5`, `0`: one minus sign everywhere (the ASCII one `number` writes too). A change
    too small for `digits` decimals keeps two significant digits rather than reading as zero."""
    if value is None or math.isnan(value):
        return "–"
    text = number(abs(value), digits)
    if text == "0" and value != 0:
        text = number(abs(value), min(10, max(digits, -math.floor(math.log10(abs(value))) + 1)))
    if text == "0":
        return "0"
    return ("+" if value > 0 else "-") + text


ARROWS = {"better": "▲", "worse": "▼"}


def change(delta: float | None, verdict: str | None, digits: int = 4) -> str:
    """A change with its arrow: `+0.012 ▲`, `-3.5 ▼`; a change of zero is `0`, with no arrow."""
    if delta is None:
        return "–"
    text = signed(delta, digits)
    arrow = ARROWS.get(verdict or "", "") if text != "0" else ""
    return f"{text} {arrow}".rstrip()


def percent(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value * 100:+.{digits}f}%"


def duration(value: timedelta) -> str:
    """24h, 7d, 90m, 2m 30s: the shortest exact reading."""
    seconds = round(value.total_seconds())
    if seconds <= 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and (unit != "d" or seconds >= 2 * 86400):
            return f"{seconds // size}{unit}"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    hours, rest = divmod(seconds, 3600)
    if hours < 48:
        return f"{hours}h {rest // 60}m"
    return f"{hours // 24}d {hours % 24}h"


def serving(stable: int | None, previous: int | None, canary: int | None, weight: int,
            since: datetime | None = None) -> str:
    """`v4 since 10 Nov 10:42 (previous v2) · canary v5 at 25%` (times as given: status shows UTC)."""
    if not stable:
        return "nothing serves"
    text = f"v{stable}" + (f" since {since:%d %b %H:%M}" if since else "")
    if previous:
        text += f" (previous v{previous})"
    if canary:
        text += f" · canary v{canary} at {weight}%"
    return text
