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
from bot.domain.digest import ChartData, ChartMarker, ChartSeries

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
