"""Approval, rollout and canary renderers: Slack's limits, escaping, and buttons only while pending.

Pure functions over the outbox's JSON facts, so no database and no Slack are needed. The
messages are also checked with the strict fake's own Block Kit validator, which is stricter
than slack_sdk's (it also checks block and action id uniqueness and confirm dialogs).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.blocks import approvals as blocks
from bot.blocks.base import MAX_MESSAGE_BLOCKS, Message
from bot.blocks.templates import render
from tests.slack_fake import MAX_MESSAGE_BLOCKS as SLACK_MAX_BLOCKS
from tests.slack_fake import _check_blocks, _check_view

HOSTILE = "<!channel> & <@U123> <https://evil.example|click>"


def request(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 12, "model": "churn", "version": 7, "environment": "production", "kind": "promote",
        "requester": "U0DEPLOY", "reason": "better recall", "status": "pending", "approvals_needed": 2,
        "approvals": [{"by": "U0APPR1", "at": "2026-11-01T09:05:00Z"}], "rejections": [],
        "created_at": "2026-11-01T09:00:00Z", "expires_at": "2026-11-02T09:00:00Z", "decided_at": None,
        "decided_by": None, "decision_reason": None, "override_by": None, "override_reason": None,
        "superseded_by": None, "from_version": 6,
        "gates": [{"gate": "auc >= current.auc - 0.005", "passed": True, "left": 0.912, "right": 0.905, "note": ""},
                  {"gate": "latency_p95_ms <= 250", "passed": True, "left": 120.0, "right": 250.0, "note": ""}],
    }
    base.update(overrides)
    return base


def versions(**candidate_metrics: float) -> dict[str, Any]:
    return {
        "6": {"version": 6, "metrics": {"auc": 0.91, "latency_p95_ms": 130.0}, "params": {"lr": "0.1", "depth": "6"},
              "tags": {}, "artifact_uri": "s3://m/churn/6"},
        "7": {"version": 7, "metrics": {"auc": 0.912, "latency_p95_ms": 120.0, **candidate_metrics},
              "params": {"lr": "0.05", "depth": "6"}, "tags": {}, "artifact_uri": "s3://m/churn/7"},
    }


def card(**overrides: Any) -> Message:
    return render("approval_card", {"request": request(**overrides), "versions": versions()})


def texts(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def button_ids(message: Message) -> list[str]:
    return [el["action_id"] for b in message.blocks if b["type"] == "actions" for el in b["elements"]]


def valid_for_slack(message: Message) -> None:
    _check_blocks(message.blocks, "/blocks", max_blocks=SLACK_MAX_BLOCKS)
    assert message.text and len(message.blocks) <= MAX_MESSAGE_BLOCKS


def test_pending_card_shows_comparison_gates_votes_expiry_and_two_buttons() -> None:
    message = card()
    valid_for_slack(message)
    body = texts(message)
    assert message.blocks[0]["text"]["text"] == "Promotion request #12: churn v7 → production"
    assert "auc" in body and "+0.002 ▲" in body and "-10 ▲" in body  # latency: lower is better
    assert "`lr`" not in body and "*lr*: `0.1` → `0.05`" in body  # changed params only
    assert "depth" not in body.split("Params that changed")[1]
    assert ":white_check_mark: `auc &gt;= current.auc - 0.005` — 0.912 vs 0.905" in body
    assert "*Approvals* 1 of 2: <@U0APPR1> (2026-11-01 09:05 UTC)" in body
    assert "expires 2026-11-02 09:00 UTC" in body
    assert button_ids(message) == [blocks.APPROVE_ACTION, blocks.REJECT_ACTION]
    approve, reject = (el for b in message.blocks if b["type"] == "actions" for el in b["elements"])
    assert approve["style"] == "primary" and approve["confirm"]["confirm"]["text"] == "Approve"
    assert reject["style"] == "danger" and json.loads(reject["value"]) == {"r": 12}


def test_deltas_point_the_right_way_for_lower_is_better_metrics() -> None:
    message = render("approval_card", {"request": request(), "versions": versions(latency_p95_ms=200.0)})
    table = next(b["text"]["text"] for b in message.blocks if "Compared with" in b.get("text", {}).get("text", ""))
    latency = next(line for line in table.splitlines() if line.startswith("latency"))
    auc = next(line for line in table.splitlines() if line.startswith("auc"))
    assert latency.rstrip("` ").endswith("+70 ▼") and auc.rstrip("` ").endswith("+0.002 ▲")


def test_failing_gate_shows_numbers_and_offers_the_admin_override() -> None:
    gates = [{"gate": "latency_p95_ms <= 250", "passed": False, "left": 300.0, "right": 250.0, "note": ""}]
    message = card(gates=gates)
    valid_for_slack(message)
    assert ":x: `latency_p95_ms &lt;= 250` — 300 vs 250 *fails*" in texts(message)
    assert button_ids(message) == [blocks.APPROVE_ACTION, blocks.REJECT_ACTION, blocks.OVERRIDE_ACTION]


@pytest.mark.parametrize(
    ("status", "extra", "banner"),
    [
        ("approved", {"decided_by": "U0APPR2", "override_by": "U0ADMIN", "override_reason": "hardware"},
         "*Approved* 2026-11-01 10:00 UTC"),
        ("rejected", {"decided_by": "U0APPR2", "decision_reason": "drift on tenure"},
         "*Rejected* by <@U0APPR2> 2026-11-01 10:00 UTC: drift on tenure"),
        ("expired", {}, "*Expired* 2026-11-01 10:00 UTC"),
        ("superseded", {"superseded_by": 13}, "*Superseded* by request #13"),
        ("cancelled", {"decided_by": "U0DEPLOY"}, "*Cancelled* by <@U0DEPLOY>"),
    ],
)
def test_decided_cards_have_a_banner_and_no_buttons(status: str, extra: dict[str, Any], banner: str) -> None:
    message = card(status=status, decided_at="2026-11-01T10:00:00Z", **extra)
    valid_for_slack(message)
    assert banner in texts(message)
    assert button_ids(message) == []
    if status == "approved":
        assert "Gate overridden by <@U0ADMIN>: hardware" in texts(message)


def test_user_text_is_escaped_everywhere() -> None:
    hostile_request = request(reason=HOSTILE, requester="ci <!here>", status="rejected", decided_by="U0APPR2",
                              decision_reason=HOSTILE, decided_at="2026-11-01T10:00:00Z",
                              approvals=[{"by": "<!channel>", "at": "2026-11-01T09:05:00Z"}])
    data_versions = versions()
    data_versions["7"]["params"]["<!here>"] = "<@U999>"
    rendered = [
        render("approval_card", {"request": hostile_request, "versions": data_versions}),
        render("request_outcome", {"request": hostile_request}),
        render("approval_link", {"request": hostile_request, "permalink": "https://x.slack.com/a?b=1&c=<2>"}),
        render("deployment_announcement", {
            "state": {"model": "churn", "environment": "production", "stable": 6, "previous": 7, "revision": 4,
                      "stable_artifact_uri": "s3://<!channel>"},
            "audit": {"actor": "U0DEPLOY", "action": "rollback", "from_version": 7, "to_version": 6,
                      "reason": HOSTILE, "at": "2026-11-01T10:00:00Z"}}),
    ]
    for message in rendered:
        valid_for_slack(message)
        raw = texts(message)
        for dangerous in ("<!channel>", "<!here>", "<@U123>", "<@U999>", "<https://evil"):
            assert dangerous not in raw, (dangerous, raw)
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in texts(rendered[0])
    for message in rendered:  # every mrkdwn object is verbatim: no auto-linking of @here inside user text
        for block in message.blocks:
            for obj in [block.get("text"), *(block.get("fields") or []), *(block.get("elements") or [])]:
                if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                    assert obj.get("verbatim") is True


def test_huge_inputs_stay_within_slack_limits() -> None:
    many_metrics = {f"metric_{i:03d}": float(i) for i in range(400)}
    many_params = {f"param_{i:03d}": "x" * 300 for i in range(200)}
    data_versions = versions()
    data_versions["7"]["metrics"].update(many_metrics)
    data_versions["7"]["params"].update(many_params)
    gates = [{"gate": f"metric_{i:03d} >= {i}" + " " * 100, "passed": i % 2 == 0, "left": 1.0, "right": 2.0,
              "note": ""} for i in range(200)]
    voters = [{"by": f"U{i:08d}", "at": "2026-11-01T09:05:00Z"} for i in range(300)]
    message = render("approval_card", {"request": request(model="m" * 64, reason="r" * 4000, gates=gates,
                                                          approvals=voters), "versions": data_versions})
    valid_for_slack(message)
    for block in message.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000


def test_request_outcome_thread_replies() -> None:
    approved = blocks.request_outcome({"request": request(status="approved", decided_by="U0APPR2", approvals=[
        {"by": "U0APPR1", "at": "2026-11-01T09:05:00Z"}, {"by": "U0APPR2", "at": "2026-11-01T09:06:00Z"}])})
    assert "churn v7 now serves production (was v6). Approved by <@U0APPR1>, <@U0APPR2>." in texts(approved)
    rejected = blocks.request_outcome({"request": request(status="rejected", decided_by="U0APPR2",
                                                          decision_reason="drift")})
    assert "<@U0APPR2> rejected churn v7 for production: drift" in texts(rejected)
    rollback = blocks.request_outcome({"request": request(status="approved", kind="rollback", version=5)})
    assert "churn production rolled back to v5 (was v6)" in texts(rollback)


def test_announcement_names_who_what_and_why() -> None:
    message = blocks.deployment_announcement({
        "state": {"model": "churn", "environment": "production", "stable": 6, "previous": 7, "revision": 9},
        "audit": {"actor": "U0CAROL", "action": "rollback", "from_version": 7, "to_version": 6,
                  "reason": "latency spike", "at": "2026-11-01T10:00:00Z"}})
    valid_for_slack(message)
    assert ":rewind: <@U0CAROL> rolled back churn production v7 → v6: latency spike" in texts(message)
    # the notification text is mrkdwn too: the actor is a mention (shown as the name), the rest escaped
    assert message.text == "<@U0CAROL> rolled back churn production v7 → v6: latency spike"


def canary_data(weight: int | None, steps: tuple[int, ...] = (5, 25, 50, 100)) -> dict[str, Any]:
    return {
        "state": {"model": "churn", "environment": "production", "stable": 6, "previous": 5,
                  "canary": 7 if weight else None, "canary_weight": weight or 0, "revision": 3,
                  "stable_artifact_uri": "s3://m/6", "canary_artifact_uri": "s3://m/7" if weight else None},
        "audit": {"actor": "U0DEPLOY", "action": "canary_weight", "reason": None, "at": "2026-11-01T10:00:00Z"},
        "steps": list(steps), "previous_weight": 5, "aborted_version": None if weight else 7,
    }


def test_canary_card_offers_the_next_ladder_step_promote_and_abort() -> None:
    message = blocks.canary_card(canary_data(5))
    valid_for_slack(message)
    elements = [el for b in message.blocks if b["type"] == "actions" for el in b["elements"]]
    assert [el["text"]["text"] for el in elements] == ["Go to 25 %", "Promote v7 (100 %)", "Abort"]
    assert json.loads(elements[0]["value"]) == {"m": "churn", "e": "production", "v": 7, "w": 25}
    assert elements[2]["style"] == "danger" and elements[2]["confirm"]["style"] == "danger"
    assert "v6 — 95 %" in texts(message) and "v7 — 5 %" in texts(message)
    # at 50 the next rung is 100 %, which is the Promote button itself
    at_50 = blocks.canary_card(canary_data(50))
    assert [el["action_id"] for b in at_50.blocks if b["type"] == "actions" for el in b["elements"]] == [
        blocks.CANARY_PROMOTE_ACTION, blocks.CANARY_ABORT_ACTION]


def test_aborted_canary_card_has_no_buttons_and_a_thread_note() -> None:
    message = blocks.canary_card(canary_data(None))
    valid_for_slack(message)
    assert button_ids(message) == [] and "Canary v7 aborted" in texts(message)
    assert "aborted canary v7" in texts(blocks.canary_step(canary_data(None)))
    assert "from 5 % to 25 %" in texts(blocks.canary_step(canary_data(25)))


def test_reason_modal_is_a_valid_view_with_the_request_id_in_metadata() -> None:
    from datetime import UTC, datetime

    from bot.domain.deployments import RequestView

    r = request(gates=[{"gate": "auc >= 0.9", "passed": False, "left": 0.8, "right": 0.9, "note": ""}])
    view = RequestView(
        id=r["id"], model="<!channel>", version=7, environment="production", kind="promote", requester="U0DEPLOY",
        reason=None, status="pending", approvals_needed=2, approvals=(), rejections=(),
        created_at=datetime(2026, 11, 1, tzinfo=UTC), expires_at=datetime(2026, 11, 2, tzinfo=UTC), decided_at=None,
        decided_by=None, decision_reason=None, override_by=None, override_reason=None, superseded_by=None,
        from_version=6, gates=tuple(r["gates"]))
    for callback in (blocks.REJECT_VIEW, blocks.OVERRIDE_VIEW):
        modal = blocks.reason_modal(callback, view)
        _check_view(modal, allowed_types=("modal",))
        assert modal["callback_id"] == callback and json.loads(modal["private_metadata"]) == {"r": 12}
        assert "<!channel>" not in json.dumps(modal)
        assert any(b["type"] == "input" and b["block_id"] == blocks.REASON_BLOCK for b in modal["blocks"])


def test_rollback_confirmation_button_is_danger_with_a_confirm_dialog() -> None:
    from datetime import UTC, datetime

    from bot.domain.entities import EnvironmentState

    state = EnvironmentState(model="churn", environment="production", stable=7, previous=6, canary=None,
                             canary_weight=0, revision=3, updated_at=datetime(2026, 11, 1, tzinfo=UTC))
    message = blocks.rollback_confirm(state, 6, "latency <!here>", {"m": "churn", "e": "production", "t": 6, "f": 7,
                                                                    "r": "latency <!here>"})
    valid_for_slack(message)
    (roll,) = (el for b in message.blocks if b["type"] == "actions" for el in b["elements"])
    assert roll["action_id"] == blocks.ROLLBACK_ACTION and roll["style"] == "danger"
    assert roll["confirm"]["style"] == "danger"
    assert "Roll back *churn* in *production*: v7 → *v6*?" in texts(message)
    assert "<!here>" not in json.dumps(message.blocks[0])


def test_moot_cards_say_why_and_keep_no_buttons() -> None:
    message = card(status="moot", decided_at="2026-11-01T10:00:00Z", decided_by="U0DEPLOY",
                   decision_reason="v7 already serves production <!channel>")
    valid_for_slack(message)
    assert button_ids(message) == []
    assert ":heavy_minus_sign: *Moot* 2026-11-01 10:00 UTC: v7 already serves production &lt;!channel&gt;" in texts(
        message)


def test_a_canary_start_request_names_its_weight_and_its_outcome() -> None:
    message = card(kind="canary_start", weight=5)
    valid_for_slack(message)
    assert message.blocks[0]["text"]["text"] == "Canary start request #12: churn v7 → production at 5 %"
    approved = render("request_outcome", {"request": request(kind="canary_start", weight=5, status="approved")})
    assert "A canary of churn v7 takes 5 % of production beside v6." in texts(approved)


def test_an_override_given_early_shows_on_the_pending_card_and_its_button_goes() -> None:
    failing = [{"gate": "auc >= current.auc - 0.005", "passed": False, "left": 0.8, "right": 0.9, "note": ""}]
    message = card(gates=failing, override_by="U0ADMIN", override_reason=HOSTILE, override_at="2026-11-01T09:30:00Z")
    valid_for_slack(message)
    assert button_ids(message) == [blocks.APPROVE_ACTION, blocks.REJECT_ACTION]
    assert "Gate overridden by <@U0ADMIN>: &lt;!channel&gt;" in texts(message) and "(2026-11-01 09:30 UTC)" in texts(
        message)
    assert blocks.OVERRIDE_ACTION in button_ids(card(gates=failing))


@pytest.mark.parametrize("value", [{"m": "churn", "v": "7", "e": "production", "c": 6, "r": HOSTILE}, None])
def test_the_canary_refusal_offers_to_abort_it_first(value: dict[str, Any] | None) -> None:
    message = blocks.canary_running(f"A canary of v6 runs at 25 % in production: {HOSTILE}", value)
    valid_for_slack(message)
    assert "<!channel>" not in json.dumps(message.blocks[0]) and "<!channel>" not in message.text
    if value is None:
        assert button_ids(message) == []
        return
    (abort,) = (el for b in message.blocks if b["type"] == "actions" for el in b["elements"])
    assert abort["action_id"] == blocks.PROMOTE_ABORTING_CANARY_ACTION and abort["confirm"]["style"] == "danger"
    assert json.loads(abort["value"]) == value
