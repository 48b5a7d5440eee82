"""Alert renderers: Slack's limits hold for big incidents, user text is escaped, durations read well."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.blocks import alerts as cards
from bot.blocks.templates import render
from bot.domain.alerting.actions import SilenceView

ALERT = {"rule_id": 1, "metric": "error_rate", "op": "<", "kind": "threshold", "baseline": "constant",
         "severity": "warning", "series": "stable", "state": "firing", "value": 0.09, "threshold": 0.05,
         "since": "2026-11-02T12:01:00Z", "version": 2, "no_data": True, "silenced_until": "2026-11-02T13:01:00Z",
         "inhibited": False}
CARD = {"group_id": 7, "model": "churn", "environment": "production", "status": "open",
        "opened_at": "2026-11-02T12:01:00Z", "resolved_at": None, "duration_seconds": 2520,
        "acknowledged_by": "<!channel>", "acknowledged_at": "2026-11-02T12:05:00Z", "stable": 2, "previous": 1,
        "canary": 3, "canary_weight": 10, "alerts": [ALERT]}


def texts(blocks: list[dict[str, Any]]) -> str:
    out = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            out.append(block["text"]["text"])
        out.extend(e["text"] for e in block.get("elements") or [] if isinstance(e.get("text"), str))
    return "\n".join(out)


@pytest.mark.parametrize("template", ["alert_card", "alert_changed", "alert_repeat", "alert_resolved"])
def test_eighty_alerts_with_long_names_fit_one_message(template: str) -> None:
    alerts = [{**ALERT, "metric": f"m{i}_" + "x" * 120} for i in range(80)]
    message = render(template, {**CARD, "alerts": alerts})
    assert all(len(b["text"]["text"]) <= 3000 for b in message.blocks if b.get("type") == "section")
    assert len(message.text) <= 3000
    if template != "alert_resolved":
        assert "… and " in texts(message.blocks) and "more: `/model alerts churn`" in texts(message.blocks)


def test_card_escapes_and_marks() -> None:
    message = render("alert_card", CARD)
    text = texts(message.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text  # a CLI actor name is shown, never pings
    assert "0.09 &lt; 0.05" in text and "&lt;" in message.text and "<" not in message.text
    assert ":mute: silenced until 2026-11-02 13:01 UTC" in text and "no data" in text
    assert "stable v2, canary v3 at 10 %, v1 kept warm for rollback" in text
    assert cards.ACK_ACTION not in {e["action_id"] for b in message.blocks if b["type"] == "actions"
                                    for e in b["elements"]}  # acknowledged already


def test_resolved_card_has_no_buttons_and_says_how_long() -> None:
    message = render("alert_card", {**CARD, "status": "resolved", "resolved_at": "2026-11-02T12:43:00Z",
                                    "alerts": [{**ALERT, "state": "inactive"}]})
    assert not [b for b in message.blocks if b["type"] == "actions"]
    assert "resolved after 42 min" in texts(message.blocks)


@pytest.mark.parametrize(("seconds", "text"), [(30, "30 s"), (2520, "42 min"), (3600, "1 h"), (11520, "3 h 12 min"),
                                               (187200, "2 d 4 h"), (86400, "1 d")])
def test_human_durations(seconds: int, text: str) -> None:
    assert cards.human_duration(seconds) == text


def test_silence_list_escapes_reasons() -> None:
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    view = SilenceView(id=3, model="churn", environment=None, rule_id=None, starts_at=at, ends_at=at,
                       created_by="U0ALICE", reason="<@U0BOSS> said so & more")
    text = texts(cards.silence_list([view], None).blocks)
    assert "&lt;@U0BOSS&gt; said so &amp; more" in text and "every environment, all rules" in text
