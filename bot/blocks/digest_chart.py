"""The digest's PNG chart: metric trends over the window, one small panel per metric, with
pointer moves marked (one labelled line each; the domain already merged moves that were
close, so there are at most a handful), alert thresholds drawn as lines, and each metric's
unit on its axis.

Rendered with matplotlib's object API on the Agg canvas, never `pyplot`: pyplot keeps global
figure state that is not thread-safe, and jobs run in a thread pool in a headless server.
Small multiples rather than one normalised plot, because metrics have different units
(AUC near 0.9, latency in hundreds of ms) and a shared axis would flatten all but one.
"""

from __future__ import annotations

import io
import zoneinfo
from datetime import datetime

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from bot.domain.monitoring.digest import ChartData, ChartSeries
from bot.domain.monitoring.metric_names import unit as metric_unit

WIDTH_IN = 8.0
ROW_HEIGHT_IN = 2.4
DPI = 100
MAX_ROWS = 3
_PALETTE = ("#1d3557", "#e63946", "#2a9d8f", "#f4a261", "#6d597a", "#457b9d", "#8d99ae", "#b5838d")


def render_png(chart: ChartData) -> bytes | None:
    """PNG bytes (800 px wide, 400–720 px high), or None when there is nothing to draw."""
    if chart.empty:
        return None
    metrics = sorted({s.metric for s in chart.series})
    columns = 1 if len(metrics) == 1 else 2
    rows = min(MAX_ROWS, -(-len(metrics) // columns))
    height = max(4.0, ROW_HEIGHT_IN * rows + 0.8)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    zone = zoneinfo.ZoneInfo(chart.timezone)
    labels = sorted({s.label for s in chart.series})
    colours = {label: _PALETTE[i % len(_PALETTE)] for i, label in enumerate(labels)}
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True)
    for index, ax in enumerate(axes.flat):
        if index >= len(metrics):
            ax.set_visible(False)
            continue
        metric = metrics[index]
        _panel(ax, metric, [s for s in chart.series if s.metric == metric], colours, chart, zone)
    fig.suptitle(f"{chart.title} · {_span(chart.start, chart.end, zone)}", fontsize=10)
    if len(labels) > 1:
        handles = [ax.get_legend_handles_labels() for ax in axes.flat if ax.get_visible()]
        seen: dict[str, object] = {}
        for hs, ls in handles:
            for h, label in zip(hs, ls, strict=True):
                seen.setdefault(label, h)
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=min(4, len(seen)),
                   fontsize=7, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _panel(ax: Axes, metric: str, series: list[ChartSeries], colours: dict[str, str], chart: ChartData,
           zone: zoneinfo.ZoneInfo) -> None:
    for s in series:
        if not s.points:
            continue
        xs = [at.astimezone(zone) for at, _ in s.points]
        ys = [value for _, value in s.points]
        ax.plot(xs, ys, color=colours[s.label], linewidth=1.4, label=s.label,
                marker="o" if len(xs) < 3 else None, markersize=3)
    shown = {s.label for s in series}
    markers = sorted((m for m in chart.markers if m.series in shown), key=lambda m: m.at)
    for i, marker in enumerate(markers):
        at = marker.at.astimezone(zone)
        colour = colours.get(marker.series, "#555555")
        ax.axvline(at, color=colour, linestyle="--", linewidth=1)
        # labels alternate between two heights so neighbouring markers never print over each other
        ax.annotate(marker.text, xy=(at, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10 - 9 * (i % 2)),
                    textcoords="offset points", fontsize=7, color=colour)
    for threshold in chart.thresholds:
        if threshold.metric != metric or threshold.series not in shown:
            continue
        ax.axhline(threshold.value, color="#b00020", linestyle=":", linewidth=1)
        ax.annotate(threshold.text, xy=(0.0, threshold.value), xycoords=("axes fraction", "data"),
                    xytext=(2, 2), textcoords="offset points", fontsize=6, color="#b00020")
    unit = metric_unit(metric)
    if unit:
        ax.set_ylabel(unit, fontsize=7)
    ax.set_title(metric, fontsize=9, loc="left")
    ax.set_xlim(chart.start.astimezone(zone), chart.end.astimezone(zone))
    locator = AutoDateLocator(tz=zone, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone))
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)


def _span(start: datetime, end: datetime, zone: zoneinfo.ZoneInfo) -> str:
    a, b = start.astimezone(zone), end.astimezone(zone)
    return f"{a:%d %b %H:%M} – {b:%d %b %H:%M} ({zone.key})"
