"""The digest renderer and chart: Slack's limits hold for any number of models, user-facing text is
escaped, and the chart is a real PNG of the agreed size with version changes marked."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.blocks.base import MAX_MESSAGE_BLOCKS
from bot.blocks.digest_chart import render_png
from bot.blocks.templates import render
from bot.domain.monitoring.digest import ChartData, ChartMarker, ChartSeries, Threshold

END = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def facts(models: list[dict[str, Any]], sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "subscription": {"id": 1, "channel": "C0GENERAL", "model": "*", "frequency": "daily",
                         "schedule": "daily at 09:00 Europe/Berlin"},
        "timezone": "Europe/Berlin",
        "period": {"key": "2026-03-29T07:00:00Z", "start": "2026-03-28T08:00:00Z", "end": "2026-03-29T07:00:00Z",
                   "previous_start": "2026-03-27T08:00:00Z"},
        "models": models, "more_models": 0, "sources": sources or [], "chart": False,
    }


def env(name: str = "production", **extra: Any) -> dict[str, Any]:
    metric = {"metric": "auc", "kind": "metric", "count": 3, "mean": 0.9, "last": 0.91, "last_at": "2026-03-29T06:00:00Z",
              "last_version": 2, "previous_mean": 0.88, "delta": 0.02, "verdict": "better"}
    return {"environment": name, "stable": 2, "canary": None, "canary_weight": 0, "changes": [],
            "metrics": [metric], "more_metrics": 0, "no_data_since": None, "never": False, **extra}


def test_many_models_stay_within_slacks_block_limit() -> None:
    message = render("digest", facts([{"model": f"model-{i}", "environments": [env()]} for i in range(80)]))
    assert len(message.blocks) <= MAX_MESSAGE_BLOCKS
    assert "more models" in str(message.blocks[-1])
    assert message.text.startswith("Daily digest: all models (28 Mar 09:00 – 29 Mar 09:00 Europe/Berlin): 80 models")


def test_arrows_and_escaping_of_source_errors() -> None:
    sources = [{"name": "prom<x>", "last_success_at": None, "last_attempt_at": "2026-03-29T06:00:00Z",
                "last_error": "<!channel> 500 from server"}]
    message = render("digest", facts([{"model": "churn", "environments": [env()]}], sources))
    body = str(message.blocks)
    assert "+0.02 ▲" in body
    assert "&lt;!channel&gt; 500 from server" in body and "<!channel>" not in body
    assert "*prom&lt;x&gt;* no data yet" in body


def test_chart_is_an_800px_png_with_version_markers() -> None:
    start = END - timedelta(hours=23)
    points = [(start + timedelta(hours=i), 0.8 + i / 100) for i in range(23)]
    chart = ChartData(
        title="churn — daily digest", timezone="Europe/Berlin", start=start, end=END,
        series=[ChartSeries("auc", "churn · production", points),
                ChartSeries("auc", "churn · staging", points[::2]),
                ChartSeries("latency_p95_ms", "churn · production", [(t, 100 + v) for t, v in points])],
        markers=[ChartMarker(start + timedelta(hours=7), "churn · production", "v2")],
    )
    png = render_png(chart)
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", io.BytesIO(png).getbuffer()[16:24])
    assert (width, height) == (800, 400)
    assert render_png(ChartData("empty", "UTC", start, END)) is None


def test_a_zero_change_has_no_arrow_and_negative_numbers_one_minus_sign() -> None:
    """Defect: `error_rate 0.0047 +0 ▼` and both − and - in one digest."""
    same = {"metric": "error_rate", "kind": "metric", "count": 3, "mean": 0.0047, "last": 0.0047,
            "last_at": "2026-03-29T06:00:00Z", "previous_mean": 0.0047, "delta": 0.0, "verdict": "same"}
    tiny = {**same, "metric": "latency_p95_ms", "mean": -1.5, "last": -1.5, "delta": -0.00004, "verdict": "better"}
    message = render("digest", facts([{"model": "churn", "environments": [env(metrics=[same, tiny])]}]))
    table = message.blocks[2]["text"]["text"].split("```")[1].splitlines()
    assert table[2] == "error_rate      0.0047  0.0047  0"
    assert table[3] == "latency_p95_ms  -1.5    -1.5    -0.00004 ▲"  # a tiny change shown, not a false zero
    assert "−" not in str(message.blocks)


def test_moves_are_worded_once_each() -> None:
    changes = [
        {"at": "2026-03-28T10:00:00Z", "action": "promote", "from_version": 1, "version": 2, "weight": None},
        {"at": "2026-03-28T12:00:00Z", "action": "canary_start", "from_version": 2, "version": 3, "weight": 5},
        {"at": "2026-03-28T13:00:00Z", "action": "canary_weight", "from_version": 2, "version": 3, "weight": 25},
        {"at": "2026-03-28T14:00:00Z", "action": "canary_abort", "from_version": 3, "version": 2, "weight": 0},
        {"at": "2026-03-28T15:00:00Z", "action": "rollback", "from_version": 2, "version": 1, "weight": None},
    ]
    body = str(render("digest", facts([{"model": "churn", "environments": [env(changes=changes)]}])).blocks)
    for line in ("↪ promoted v1 → v2 · 28 Mar 11:00", "↪ canary started: v3 at 5% beside v2 · 28 Mar 13:00",
                 "↪ canary step: v3 at 25% beside v2 · 28 Mar 14:00", "↪ canary v3 aborted, v2 serves · 28 Mar 15:00",
                 "↪ rolled back v2 → v1 · 28 Mar 16:00"):
        assert body.count(line) == 1, line


def test_chart_draws_thresholds_units_and_a_handful_of_markers() -> None:
    start = END - timedelta(hours=23)
    points = [(start + timedelta(hours=i), 0.8 + i / 100) for i in range(23)]
    chart = ChartData(
        title="churn — daily digest", timezone="Europe/Berlin", start=start, end=END,
        series=[ChartSeries("auc", "churn · production", points),
                ChartSeries("latency_p95_ms", "churn · production", [(t, 100 + v) for t, v in points])],
        markers=[ChartMarker(start + timedelta(hours=h), "churn · production", f"v{h} → v{h + 1}")
                 for h in (3, 9, 15, 20)],
        thresholds=[Threshold("auc", "churn · production", 0.85, "auc < 0.85 (rule 1)")],
    )
    png = render_png(chart)
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
