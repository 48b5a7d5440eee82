"""Plain-text tables and numbers for the terminal (CLI and shell)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta


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
    if value is None or math.isnan(value):
        return "–"
    text = number(abs(value), digits)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


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
