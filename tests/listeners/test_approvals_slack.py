"""Promotions with approval buttons, rollback in two taps, canaries: end to end (issue 4, acceptance 1, 3, 5, 6).

Everything is real except Slack: signed form posts travel over HTTP into the web app (uvicorn
→ Bolt → listeners → domain → SQLite/PostgreSQL); the outbox delivery worker sends what the
domain wrote to the strict fake Slack over HTTP (cards, in-place updates, thread replies,
ephemerals) and to a local webhook receiver, whose signatures we verify.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.blocks import approvals as cards
from bot.delivery.webhooks import verify_webhook
from bot.delivery.worker import DeliveryWorker
from bot.domain.registry import NewVersion
from bot.listeners.app import build_app
from bot.services import open_services
from bot.slack.client import make_web_client
from bot.web.app import create_web_app
from bot.web.server import ServerThread
from storage.models import ChangeRequest, OutboxMessage, RequestVote
from storage.queries import registry as queries
from tests.slack_fake import Message as SlackMessage
from tests.slack_fake import ResponsePost, SlackFake
from tests.slack_support import (  # noqa: F401  (fixtures)
    CompletionTracker,
    RunningBot,
    bot_settings,
    buttons,
    section_texts,
    slack_fixture,
)

APPROVALS = "C0APPROVALS"
GENERAL = "C0GENERAL"
WEBHOOK_SECRET = "whsec-test-0123456789"
# U0ALICE and U0BOB are the fake workspace's @ml-leads: approvers through the user group.
POLICY = """
[roles]
admins = ["U0ADMIN"]
deployers = ["U0ALICE", "U0CAROL"]

[environments.staging]
approvals = 0

[environments.production]
approvals = 2
approvers = ["U0APPR1", "@ml-leads"]
allow_self_approval = false
approval_channel = "C0APPROVALS"
expires_after = "24h"
requires = "staging"
gates = ["auc >= current.auc - 0.005"]

[[webhooks]]
url = "{hook_url}"
secret_env = "MODELBOT_WEBHOOK_SECRET"
events = ["deployment.changed"]
"""


class Clock:
    """The bot's clock: real time at the start, moved forward by tests (expiry) without sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class HookReceiver:
    """A local HTTP endpoint standing in for a deploy system: records each webhook as received."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.received]


class Approvals:
    """The running bot plus the delivery worker, with helpers that act like people in Slack."""

    def __init__(self, bot: RunningBot, worker: DeliveryWorker, clock: Clock, hooks: HookReceiver) -> None:
        self.bot, self.worker, self.clock, self.hooks = bot, worker, clock, hooks
        self.slack = bot.slack

    def command(self, text: str, user: str) -> ResponsePost:
        return self.bot.command(text, user_id=user)

    def click(self, action_id: str, value: str, user: str, *, channel: str = APPROVALS, message_ts: str = "1.000100",
              ephemeral: bool = False) -> ResponsePost:
        """Press a button as `user`; returns the reply posted to the click's response_url."""
        name = self.bot.unique("click")
        body = self.slack.block_actions_body(action_id, value, response_name=name, user_id=user, channel_id=channel,
                                             message_ts=message_ts, is_ephemeral=ephemeral)
        response = self.bot.signed_post(body)
        assert response.status_code == 200, (response.status_code, response.text)
        return self.slack.wait_for_responses(name, 1, 10)[0]

    def click_for_modal(self, action_id: str, value: str, user: str, message_ts: str) -> dict[str, Any]:
        """Press a button that opens a modal; returns the view Slack was asked to open."""
        opened = len(self.slack.calls_to("views.open"))
        body = self.slack.block_actions_body(action_id, value, response_name=self.bot.unique("modal"), user_id=user,
                                             channel_id=APPROVALS, message_ts=message_ts)
        assert self.bot.signed_post(body).status_code == 200
        call = self.slack.wait_for_calls("views.open", opened + 1, 10)[-1]
        assert call.ok, call.response
        return call.args["view"]

    def submit(self, view: dict[str, Any], reason: str, user: str) -> dict[str, Any]:
        """Submit a modal with `reason` typed in; returns our HTTP answer (empty = modal closed)."""
        body = self.slack.view_submission_body(
            view["callback_id"], {cards.REASON_BLOCK: {cards.REASON_INPUT: reason}}, user_id=user,
            private_metadata=view.get("private_metadata") or "", blocks=view["blocks"])
        response = self.bot.signed_post(body)
        assert response.status_code == 200, response.text
        return response.json() if response.content else {}

    def deliver(self) -> None:
        """Run the outbox worker until nothing is due (each round sends one row per model)."""
        for _ in range(100):
            if self.worker.run_once() == 0:
                break
        with self.bot.registry.reading() as session:
            stuck = session.execute(sa.select(OutboxMessage.id, OutboxMessage.template, OutboxMessage.status,
                                              OutboxMessage.last_error)
                                    .where(OutboxMessage.status != "delivered")).all()
        assert not stuck, stuck

    def card(self) -> SlackMessage:
        (card,) = self.slack.messages(APPROVALS)[-1:]
        return card

    def counts(self) -> dict[str, int]:
        with self.bot.registry.reading() as session:
            rows = queries.row_counts(session)
            for model in (ChangeRequest, RequestVote, OutboxMessage):
                rows[model.__tablename__] = session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
            return rows

    def audit(self, action: str) -> list[tuple[str, str | None]]:
        return [(e.actor, e.reason) for e in self.bot.registry.history("churn", "production", limit=500)
                if e.action == action]


@pytest.fixture
def hooks() -> Iterator[HookReceiver]:
    receiver = HookReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def approvals(database_url: str, slack: SlackFake, hooks: HookReceiver, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Approvals]:
    """The HTTP-mode bot under the policy above, with a controllable clock and a delivery worker."""
    for user in ("U0APPR1", "U0ADMIN"):
        slack.add_user(user, name=user.lower())
    slack.add_channel(APPROVALS, name="model-approvals")
    policy = tmp_path / "modelbot.toml"
    policy.write_text(POLICY.format(hook_url=hooks.url))
    monkeypatch.setenv("MODELBOT_WEBHOOK_SECRET", WEBHOOK_SECRET)
    clock = Clock()
    services = open_services(bot_settings(database_url, slack, MODELBOT_CONFIG=str(policy)), clock=clock)
    app = build_app(services, "http")
    tracker = CompletionTracker(app.listener_runner.listener_completion_handler)
    app.listener_runner.listener_completion_handler = tracker
    server = ServerThread(create_web_app(services, app)).start()
    bot = RunningBot(url=server.url, slack=slack, services=services, app=app, listeners=tracker)
    worker = DeliveryWorker(services.db, make_web_client(slack.bot_token, slack.api_url, retries=0), clock=clock,
                            post_interval_s=0.0, concurrency=2)
    seed(bot)
    try:
        yield Approvals(bot, worker, clock, hooks)
    finally:
        worker.close()
        bot.http.close()
        server.stop()
        app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
        services.close()


def seed(bot: RunningBot) -> None:
    """churn v1 serves production; v2 (better) and v3 (auc too low for the gate) served staging."""
    registry = bot.registry
    for auc in (0.90, 0.92, 0.80):
        registry.register(NewVersion(model="churn", artifact_uri=f"s3://models/churn/{auc}", actor="ci",
                                     metrics={"auc": auc, "latency_ms": 40.0}, params={"lr": str(auc / 10)}))
    for version in ("1", "2", "3"):
        registry.promote("churn", version, "staging", actor="ci")
    registry.promote("churn", "1", "production", actor="bootstrap")


def request_id(reply: ResponsePost) -> int:
    text = section_texts(reply.blocks)[0]
    assert "Request *#" in text, text
    return int(text.split("Request *#")[1].split("*")[0])


def value_of(message: SlackMessage | ResponsePost, action_id: str) -> str:
    return next(b["value"] for b in buttons(message.blocks) if b["action_id"] == action_id)


def warning(reply: ResponsePost) -> str:
    text = "\n".join(section_texts(reply.blocks))
    assert reply.response_type == "ephemeral" and text.startswith(":warning:"), text
    return text


def production(a: Approvals) -> int | None:
    return a.bot.registry.environment_state("churn", "production").stable


# ---- acceptance 1 -----------------------------------------------------------------------------------


def test_four_eyes_promotion_from_command_to_card_to_webhook(approvals: Approvals) -> None:
    a = approvals
    reply = a.command("promote churn 2 to production better auc", user="U0ALICE")
    assert reply.response_type == "ephemeral"
    assert f"The card goes to <#{APPROVALS}>" in section_texts(reply.blocks)[0]
    number = request_id(reply)
    a.deliver()

    card = a.card()
    text = "\n".join(section_texts(card.blocks))
    assert card.blocks[0]["text"]["text"] == f"Promotion request #{number}: churn v2 → production"
    assert "better auc" in text and "<@U0ALICE>" in text and "*Approvals* 0 of 2" in text
    assert "+0.02 ▲" in text and ":white_check_mark: `auc &gt;= current.auc - 0.005`" in text
    assert [b["text"]["text"] for b in buttons(card.blocks)] == ["Approve", "Reject"]
    (link,) = a.slack.ephemerals(GENERAL, "U0ALICE")  # the requester's private link to the card
    assert f"/archives/{APPROVALS}/p{card.ts.replace('.', '')}" in json.dumps(link.blocks)
    approve = value_of(card, cards.APPROVE_ACTION)

    # a non-approver is refused privately, and the attempt is audited
    assert "not an approver for production" in warning(a.click(cards.APPROVE_ACTION, approve, "U0CAROL",
                                                                  message_ts=card.ts))
    # the requester cannot approve their own request (four eyes), even as a member of @ml-leads
    assert "cannot approve it yourself" in warning(a.click(cards.APPROVE_ACTION, approve, "U0ALICE",
                                                              message_ts=card.ts))
    assert [actor for actor, _ in a.audit("approve_refused")] == ["U0CAROL", "U0ALICE"]
    assert production(a) == 1

    first = a.click(cards.APPROVE_ACTION, approve, "U0BOB", message_ts=card.ts)  # via @ml-leads
    assert "Approval recorded: 1 of 2" in section_texts(first.blocks)[0] and not first.replace_original
    twice = a.click(cards.APPROVE_ACTION, approve, "U0BOB", message_ts=card.ts)
    assert "You already approved" in section_texts(twice.blocks)[0]
    a.deliver()
    assert "*Approvals* 1 of 2: <@U0BOB>" in "\n".join(section_texts(a.slack.message(APPROVALS, card.ts).blocks))

    last = a.click(cards.APPROVE_ACTION, approve, "U0APPR1", message_ts=card.ts)
    assert "now serves production (was v1)" in section_texts(last.blocks)[0]
    assert production(a) == 2
    a.deliver()

    final = a.slack.message(APPROVALS, card.ts)
    final_text = "\n".join(section_texts(final.blocks))
    assert ":white_check_mark: *Approved*" in final_text and "<@U0BOB>" in final_text and "<@U0APPR1>" in final_text
    assert buttons(final.blocks) == []
    assert len(a.slack.messages(APPROVALS)) == 1  # updated in place, never re-posted
    updates = a.slack.calls_to("chat.update")
    assert updates and all(c.ok and c.args["ts"] == card.ts and c.args["channel"] == APPROVALS for c in updates)
    (outcome,) = a.slack.thread(APPROVALS, card.ts)
    assert "churn v2 now serves production (was v1). Approved by <@U0BOB>, <@U0APPR1>." in outcome.text + json.dumps(
        outcome.blocks)

    (headers, raw), = a.hooks.received
    assert verify_webhook(WEBHOOK_SECRET, headers, raw)
    assert not verify_webhook("another-secret", headers, raw)
    body = json.loads(raw)
    assert (body["event"], body["model"], body["environment"], body["from_version"], body["to_version"]) == (
        "deployment.changed", "churn", "production", 1, 2)
    assert body["actor"] == "U0APPR1" and body["request_id"] == str(number)
    assert body["stable_artifact_uri"] == "s3://models/churn/0.92"


def test_reject_opens_a_modal_and_the_reason_reaches_card_and_thread(approvals: Approvals) -> None:
    a = approvals
    number = request_id(a.command("promote churn 2 production", user="U0ALICE"))
    a.deliver()
    card = a.card()
    view = a.click_for_modal(cards.REJECT_ACTION, value_of(card, cards.REJECT_ACTION), "U0BOB", card.ts)
    assert view["callback_id"] == cards.REJECT_VIEW and json.loads(view["private_metadata"]) == {"r": number}
    # a non-approver's submission is refused inside the modal, and audited
    refused = a.submit(view, "I do not like it", "U0CAROL")
    assert refused["response_action"] == "errors" and "not an approver" in refused["errors"][cards.REASON_BLOCK]
    assert [actor for actor, _ in a.audit("reject_refused")] == ["U0CAROL"]
    assert a.submit(view, "drift on tenure <!channel>", "U0BOB") == {}  # the modal closes
    a.deliver()
    text = "\n".join(section_texts(a.slack.message(APPROVALS, card.ts).blocks))
    assert "*Rejected* by <@U0BOB>" in text and "drift on tenure &lt;!channel&gt;" in text
    assert buttons(a.slack.message(APPROVALS, card.ts).blocks) == []
    (reply,) = a.slack.thread(APPROVALS, card.ts)
    assert "<@U0BOB> rejected churn v2 for production: drift on tenure &lt;!channel&gt;" in json.dumps(reply.blocks)
    assert production(a) == 1 and a.hooks.received == []
    # a second submission of the same modal (double click on Submit) changes nothing
    again = a.submit(view, "drift on tenure", "U0BOB")
    assert again["response_action"] == "update" and "already rejected" in json.dumps(again["view"])


# ---- acceptance 3 -----------------------------------------------------------------------------------


def test_failing_gate_blocks_approval_and_an_admin_override_needs_a_reason(approvals: Approvals) -> None:
    """Issue 10, defects 3 and 4 in Slack: a plain approval is refused while a gate fails, and an
    admin's override given before the last approval stays with the request (no deadlock)."""
    a = approvals
    reply = a.command("promote churn 3 production", user="U0ALICE")
    assert "A gate fails" in section_texts(reply.blocks)[0]
    number = request_id(reply)
    a.deliver()
    card = a.card()
    text = "\n".join(section_texts(card.blocks))
    assert ":x: `auc &gt;= current.auc - 0.005` — 0.8 vs 0.895 *fails*" in text
    assert [b["text"]["text"] for b in buttons(card.blocks)] == ["Approve", "Reject", "Override gate (admin)"]
    approve, override = value_of(card, cards.APPROVE_ACTION), value_of(card, cards.OVERRIDE_ACTION)

    blocked = a.click(cards.APPROVE_ACTION, approve, "U0BOB", message_ts=card.ts)
    assert "A gate fails, so this cannot be approved: auc >= current.auc - 0.005 (0.8 vs 0.895)" in warning(
        blocked).replace("&gt;", ">")
    assert "Only an admin" in warning(a.click(cards.OVERRIDE_ACTION, override, "U0APPR1", message_ts=card.ts))
    assert [actor for actor, _ in a.audit("approve_refused")] == ["U0BOB"]
    assert [actor for actor, _ in a.audit("override_refused")] == ["U0APPR1"]
    assert a.bot.services.deployments.get_request(number).approvals == ()

    view = a.click_for_modal(cards.OVERRIDE_ACTION, override, "U0ADMIN", card.ts)
    assert view["callback_id"] == cards.OVERRIDE_VIEW and "0.8 vs 0.895" in json.dumps(view["blocks"])
    empty = a.submit(view, "   ", "U0ADMIN")
    assert empty["response_action"] == "errors" and "Write why" in empty["errors"][cards.REASON_BLOCK]
    assert a.submit(view, "auc measured on the old label set; verified by hand", "U0ADMIN") == {}
    assert production(a) == 1  # the override is the admin's approval: 1 of 2
    request = a.bot.services.deployments.get_request(number)
    assert request.override_by == "U0ADMIN" and "old label set" in (request.override_reason or "")
    assert [v for v, _ in request.approvals] == ["U0ADMIN"]
    a.deliver()
    pending = a.slack.message(APPROVALS, card.ts)
    assert "Gate overridden by <@U0ADMIN>: auc measured on the old label set" in "\n".join(section_texts(pending.blocks))
    assert [b["text"]["text"] for b in buttons(pending.blocks)] == ["Approve", "Reject"]  # overridden once

    done = a.click(cards.APPROVE_ACTION, approve, "U0BOB", message_ts=card.ts)
    assert "now serves production" in section_texts(done.blocks)[0]
    assert production(a) == 3
    (promote,) = [r for actor, r in a.audit("promote") if actor == "U0BOB"]
    assert "gate override: auc measured on the old label set" in (promote or "")
    a.deliver()
    final = "\n".join(section_texts(a.slack.message(APPROVALS, card.ts).blocks))
    assert "Gate overridden by <@U0ADMIN>: auc measured on the old label set" in final


# ---- acceptance 5 -----------------------------------------------------------------------------------


def test_rollback_from_a_phone_in_two_taps(approvals: Approvals) -> None:
    a = approvals
    a.bot.registry.promote("churn", "2", "production", actor="bootstrap")
    before = a.counts()
    confirm = a.command("rollback churn production latency spike after deploy", user="U0CAROL")
    assert confirm.response_type == "ephemeral"
    assert "Roll back *churn* in *production*: v2 → *v1*?" in section_texts(confirm.blocks)[0]
    (roll,) = buttons(confirm.blocks)
    assert roll["style"] == "danger" and roll["confirm"]["confirm"]["text"] == "Roll back"
    assert a.counts() == before and production(a) == 2  # nothing happens before the tap

    done = a.click(cards.ROLLBACK_ACTION, roll["value"], "U0CAROL", channel=GENERAL, ephemeral=True)
    assert done.replace_original and buttons(done.blocks) == []  # the button is gone: no double tap
    assert "Rolled back churn production: v2 → v1." in section_texts(done.blocks)[0]
    assert production(a) == 1
    assert a.audit("rollback") == [("U0CAROL", "latency spike after deploy")]
    a.deliver()
    (announcement,) = a.slack.messages(APPROVALS)
    assert ":rewind: <@U0CAROL> rolled back churn production v2 → v1: latency spike after deploy" in \
        section_texts(announcement.blocks)[0]
    assert [json.loads(b)["action"] for _, b in a.hooks.received] == ["rollback"]

    # the same button pressed again (an old screen) does not roll back twice
    stale = a.click(cards.ROLLBACK_ACTION, roll["value"], "U0CAROL", channel=GENERAL, ephemeral=True)
    assert "changed since you asked" in warning(stale) and production(a) == 1


def test_bare_rollback_defaults_to_production_and_only_deployers_may(approvals: Approvals) -> None:
    a = approvals
    a.bot.registry.promote("churn", "2", "production", actor="bootstrap")
    confirm = a.command("rollback churn", user="U0ALICE")
    (roll,) = buttons(confirm.blocks)
    assert json.loads(roll["value"]) == {"m": "churn", "e": "production", "t": 1, "f": 2, "r": None}
    refused = a.click(cards.ROLLBACK_ACTION, roll["value"], "U0BOB", channel=GENERAL, ephemeral=True)
    assert "only deployers" in warning(refused) and production(a) == 2
    a.click(cards.ROLLBACK_ACTION, roll["value"], "U0ALICE", channel=GENERAL, ephemeral=True)
    assert production(a) == 1


# ---- canary -----------------------------------------------------------------------------------------


def test_canary_card_steps_up_and_aborts_and_an_old_card_cannot_act(approvals: Approvals) -> None:
    a = approvals
    reply = a.command("canary churn 2 production 5", user="U0CAROL")
    assert "canary v2 takes 5 %" in section_texts(reply.blocks)[0] and "Next step: 25 %" in section_texts(reply.blocks)[0]
    a.deliver()
    card = a.card()
    assert [b["text"]["text"] for b in buttons(card.blocks)] == ["Go to 25 %", "Promote v2 (100 %)", "Abort"]
    step = a.click(cards.CANARY_STEP_ACTION, value_of(card, cards.CANARY_STEP_ACTION), "U0CAROL", message_ts=card.ts)
    assert "takes 25 %" in section_texts(step.blocks)[0]
    a.deliver()
    updated = a.slack.message(APPROVALS, card.ts)
    assert [b["text"]["text"] for b in buttons(updated.blocks)] == ["Go to 50 %", "Promote v2 (100 %)", "Abort"]
    (thread,) = a.slack.thread(APPROVALS, card.ts)
    assert "from 5 % to 25 %" in json.dumps(thread.blocks)

    abort = a.click(cards.CANARY_ABORT_ACTION, value_of(updated, cards.CANARY_ABORT_ACTION), "U0CAROL",
                    message_ts=card.ts)
    assert "aborted" in section_texts(abort.blocks)[0]
    state = a.bot.registry.environment_state("churn", "production")
    assert (state.stable, state.canary, state.canary_weight) == (1, None, 0)
    a.deliver()
    assert buttons(a.slack.message(APPROVALS, card.ts).blocks) == []
    before = a.counts()
    old = a.click(cards.CANARY_STEP_ACTION, value_of(updated, cards.CANARY_STEP_ACTION), "U0CAROL", message_ts=card.ts)
    assert "This card is out of date" in warning(old)
    assert a.counts() == {**before, "audit_events": before["audit_events"] + 1}  # the refused click, recorded


def test_canary_promote_goes_through_the_approval_policy(approvals: Approvals) -> None:
    a = approvals
    a.command("canary churn 2 production 50", user="U0CAROL")
    a.deliver()
    canary_card = a.card()
    promote = a.click(cards.CANARY_PROMOTE_ACTION, value_of(canary_card, cards.CANARY_PROMOTE_ACTION), "U0CAROL",
                      message_ts=canary_card.ts)
    number = request_id(promote)
    a.deliver()
    card = a.card()
    assert card.blocks[0]["text"]["text"] == f"Canary promotion request #{number}: churn v2 → production"
    for approver in ("U0BOB", "U0APPR1"):
        a.click(cards.APPROVE_ACTION, value_of(card, cards.APPROVE_ACTION), approver, message_ts=card.ts)
    state = a.bot.registry.environment_state("churn", "production")
    assert (state.stable, state.previous, state.canary, state.canary_weight) == (2, 1, None, 0)


# ---- acceptance 6 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("promote churn 2 prod", "There is no environment 'prod': use one of staging, production"),
        ("rollback churn prod", "There is no environment 'prod'"),
        ("canary churn 2 qa 5", "There is no environment 'qa'"),
        ("canary churn 2 production 0", "A canary at 0 % takes no traffic"),
        ("canary churn 2 production 100", "A canary at 100 % is a promotion"),
        ("canary churn 2 production 150", "between 1 and 99 % of traffic, not 150"),
        ("canary churn 2 production abc", "'abc' is not a percentage"),
        ("approve 999", "There is no request 999"),
        ("reject 999 because", "There is no request 999"),
        ("approve abc", "'abc' is not a request id"),
    ],
)
def test_bad_input_gets_a_clear_message_and_changes_nothing(approvals: Approvals, text: str, message: str) -> None:
    a = approvals
    before = a.counts()
    reply = warning(a.command(text, user="U0CAROL"))
    assert message in reply.replace("&gt;", ">").replace("&lt;", "<"), reply
    assert a.counts() == before


@pytest.mark.parametrize(
    ("text", "user", "message", "action"),
    [
        ("rollback churn production to 3", "U0CAROL",
         "churn v3 never served production, so it is not a rollback target", "rollback_refused"),
        ("rollback churn", "U0CAROL", "churn has no previous version in production", "rollback_refused"),
        ("canary churn production abort", "U0CAROL", "No canary is running for churn in production",
         "canary_abort_refused"),
        ("promote churn 2 production", "U0BOB", "only deployers", "promote_refused"),  # an approver, no deployer
    ],
)
def test_refusals_say_why_change_nothing_else_and_are_recorded(approvals: Approvals, text: str, user: str,
                                                               message: str, action: str) -> None:
    """Issue 10, defect 8: every refusal, not only a vote's, is one audit row."""
    a = approvals
    before = a.counts()
    reply = warning(a.command(text, user=user))
    assert message in reply.replace("&gt;", ">").replace("&lt;", "<"), reply
    assert a.counts() == {**before, "audit_events": before["audit_events"] + 1}
    assert [(actor, message in (why or "")) for actor, why in a.audit(action)] == [(user, True)]


def test_a_stale_card_and_a_card_clicked_after_expiry_change_nothing(approvals: Approvals) -> None:
    a = approvals
    older = request_id(a.command("promote churn 2 production", user="U0ALICE"))
    a.deliver()
    old_card = a.card()
    newer = request_id(a.command("promote churn 2 production second try", user="U0ALICE"))
    a.deliver()
    assert newer != older
    superseded = "\n".join(section_texts(a.slack.message(APPROVALS, old_card.ts).blocks))
    assert f"*Superseded* by request #{newer}" in superseded and buttons(a.slack.message(APPROVALS, old_card.ts).blocks) == []
    before = a.counts()
    stale = a.click(cards.APPROVE_ACTION, value_of(old_card, cards.APPROVE_ACTION), "U0BOB", message_ts=old_card.ts)
    assert f"Request {older} is already superseded" in section_texts(stale.blocks)[0]
    assert a.counts() == before

    card = a.card()
    a.clock.now += timedelta(hours=25)
    late = a.click(cards.APPROVE_ACTION, value_of(card, cards.APPROVE_ACTION), "U0BOB", message_ts=card.ts)
    assert f"Request {newer} expired at" in section_texts(late.blocks)[0] and "nothing changed" in section_texts(
        late.blocks)[0]
    after = a.counts()
    assert production(a) == 1 and after["request_votes"] == before["request_votes"]
    assert after["deployments"] == before["deployments"]
    assert after["audit_events"] == before["audit_events"] + 1 and a.audit("expire") == [
        ("modelbot", "no decision before the deadline")]
    a.deliver()
    expired = a.slack.message(APPROVALS, card.ts)
    assert "*Expired*" in "\n".join(section_texts(expired.blocks)) and buttons(expired.blocks) == []
    reject = a.click(cards.REJECT_ACTION, value_of(card, cards.REJECT_ACTION), "U0BOB", message_ts=card.ts)
    assert f"Request #{newer} is already expired" in section_texts(reject.blocks)[0]


def test_requests_lists_pending_ones_and_approve_by_command(approvals: Approvals) -> None:
    a = approvals
    number = request_id(a.command("promote churn 2 production", user="U0ALICE"))
    listing = "\n".join(section_texts(a.command("requests", user="U0BOB").blocks))
    assert f"*#{number}* churn v2 → production" in listing and "0 of 2 approvals" in listing
    assert "Approval recorded: 1 of 2" in section_texts(a.command(f"approve {number}", user="U0BOB").blocks)[0]
    assert "not an approver" in warning(a.command(f"approve {number}", user="U0CAROL"))
    assert "now serves production" in section_texts(a.command(f"approve #{number}", user="U0APPR1").blocks)[0]
    assert "No pending requests" in section_texts(a.command("requests churn", user="U0BOB").blocks)[0]


# ---- user groups ---------------------------------------------------------------------------------------


def test_user_groups_resolve_through_slack_with_a_short_cache(slack: SlackFake) -> None:
    from bot.slack.usergroups import SlackGroupResolver

    now = [0.0]
    resolve = SlackGroupResolver(make_web_client(slack.bot_token, slack.api_url, retries=0), ttl=300,
                                 clock=lambda: now[0])
    assert resolve("@ml-leads") == {"U0ALICE", "U0BOB"}
    assert resolve("ml-leads") == {"U0ALICE", "U0BOB"}  # cached: no more Slack calls
    assert len(slack.calls_to("usergroups.list")) == 1 and len(slack.calls_to("usergroups.users.list")) == 1
    slack.add_usergroup("S0LEADS", handle="ml-leads", users=["U0BOB"])
    now[0] = 301.0
    assert resolve("ml-leads") == {"U0BOB"}  # membership changes show within the TTL
    now[0] = 700.0
    slack.fail_next("usergroups.list", status=500, count=10)
    assert resolve("ml-leads") == {"U0BOB"}  # Slack down: the last known members
    assert resolve("nobody-knows") == frozenset()  # never known: empty, so nobody gains a right


# ---- issue 10: the rule book through Slack ----------------------------------------------------------


def test_a_promotion_during_a_canary_is_refused_with_a_button_that_aborts_it_first(approvals: Approvals) -> None:
    """Issue 10, defect 6: the canary is never dropped silently."""
    a = approvals
    a.command("canary churn 2 production 25", user="U0CAROL")
    a.deliver()
    canary_card = a.card()
    reply = a.command("promote churn 2 production ship it", user="U0ALICE")
    assert "A canary of v2 runs at 25 % in production: promote or abort it first." in warning(reply)
    (abort,) = buttons(reply.blocks)
    assert abort["action_id"] == cards.PROMOTE_ABORTING_CANARY_ACTION and abort["confirm"]["confirm"]["text"] == \
        "Abort and promote"
    state = a.bot.registry.environment_state("churn", "production")
    assert (state.canary, state.canary_weight) == (2, 25)
    assert [actor for actor, _ in a.audit("promote_refused")] == ["U0ALICE"]

    done = a.click(cards.PROMOTE_ABORTING_CANARY_ACTION, abort["value"], "U0ALICE", channel=GENERAL, ephemeral=True)
    assert done.replace_original and "Request *#" in section_texts(done.blocks)[0]
    state = a.bot.registry.environment_state("churn", "production")
    assert (state.stable, state.canary, state.canary_weight) == (1, None, 0)
    assert a.audit("canary_abort") == [("U0ALICE", "aborted to promote v2")]
    request = a.bot.services.deployments.list_requests()[0]
    assert (request.version, request.reason, request.requester) == (2, "ship it", "U0ALICE")
    a.deliver()
    assert ":x: *Canary v2 aborted* by <@U0ALICE>" in section_texts(a.slack.message(APPROVALS, canary_card.ts).blocks)[1]
    # the same button again: the canary it was about is gone, so it does nothing (and says why)
    before = a.counts()
    stale = a.click(cards.PROMOTE_ABORTING_CANARY_ACTION, abort["value"], "U0ALICE", channel=GENERAL, ephemeral=True)
    assert "This card is out of date: churn in production runs no canary now." in warning(stale)
    assert a.counts() == {**before, "audit_events": before["audit_events"] + 1}


def test_abort_canary_word_on_promote(approvals: Approvals) -> None:
    a = approvals
    a.command("canary churn 2 production 25", user="U0CAROL")
    reply = a.command("promote churn 2 production abort-canary latency fixed", user="U0ALICE")
    number = request_id(reply)
    assert a.bot.services.deployments.get_request(number).reason == "latency fixed"
    assert a.bot.registry.environment_state("churn", "production").canary is None
    assert a.audit("canary_abort") == [("U0ALICE", "aborted to promote v2")]


def test_a_moot_request_closes_and_its_card_says_so(approvals: Approvals) -> None:
    """Issue 10, defect 7: the request asked for what already serves; it closes, visibly."""
    a = approvals
    a.bot.registry.promote("churn", "2", "production", actor="bootstrap")
    number = request_id(a.command("promote churn 1 production back to v1", user="U0ALICE"))
    a.deliver()
    card = a.card()
    confirm = a.command("rollback churn production", user="U0CAROL")
    assert a.bot.services.deployments.get_request(number).status == "pending"  # step one changes nothing
    a.click(cards.ROLLBACK_ACTION, value_of(confirm, cards.ROLLBACK_ACTION), "U0CAROL", channel=GENERAL,
            ephemeral=True)
    view = a.bot.services.deployments.get_request(number)
    assert (view.status, view.decision_reason) == ("moot", "v1 already serves production")
    assert a.audit("moot") == [("U0CAROL", "v1 already serves production")]
    a.deliver()
    moot = a.slack.message(APPROVALS, card.ts)
    assert ":heavy_minus_sign: *Moot*" in "\n".join(section_texts(moot.blocks)) and buttons(moot.blocks) == []
    late = a.click(cards.APPROVE_ACTION, value_of(card, cards.APPROVE_ACTION), "U0BOB", message_ts=card.ts)
    assert f"Request {number} is already moot" in section_texts(late.blocks)[0]


def test_history_in_slack_shows_every_decision_and_canary_weights(approvals: Approvals) -> None:
    """Issue 10, defect 8: cancelled, superseded, expired and moot requests, refusals, and canary weights."""
    a = approvals
    first = request_id(a.command("promote churn 2 production", user="U0ALICE"))
    second = request_id(a.command("promote churn 2 production again", user="U0ALICE"))
    a.command(f"cancel {second} wrong day", user="U0ALICE")
    a.command("canary churn 2 production 5", user="U0CAROL")
    a.command("canary churn production 25", user="U0CAROL")
    text = "\n".join(section_texts(a.command("history churn production", user="U0BOB").blocks))
    assert f"superseded by request #{second}" in text and "*cancel*" in text and "_wrong day_" in text
    assert "*canary_start* production v1 → v2 at 5 %" in text and "*canary_weight* production v1 → v2 at 25 %" in text
    assert first < second


def test_a_slow_slack_never_holds_the_database(approvals: Approvals, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11, defect 4: resolving @ml-leads asks Slack. With Slack answering usergroups in 4 s,
    an unrelated `modelbot register` (1 s lock timeout) goes through while the vote waits."""
    from bot.cli.main import main
    from bot.slack.usergroups import attach_group_resolver

    a = approvals
    number = request_id(a.command("promote churn 2 production", user="U0ALICE"))
    # a fresh cache, so the vote must ask Slack (the app's own client carries no token: requests get theirs)
    attach_group_resolver(a.bot.services, make_web_client(a.slack.bot_token, a.slack.api_url))
    a.slack.hang("usergroups.list", seconds=4)
    name = a.bot.unique("click")
    body = a.slack.block_actions_body(cards.APPROVE_ACTION, json.dumps({"r": number}), response_name=name,
                                      user_id="U0BOB", channel_id=APPROVALS)
    assert a.bot.signed_post(body).status_code == 200
    a.slack.wait_for_hanging(1)

    monkeypatch.setenv("MODELBOT_DATABASE_URL", a.bot.services.settings.database_url)
    monkeypatch.setenv("MODELBOT_CONFIG", str(a.bot.services.settings.config_path))
    monkeypatch.setenv("MODELBOT_DB_LOCK_TIMEOUT", "1")
    capsys.readouterr()
    assert main(["register", "fraud", "--artifact", "s3://models/fraud/1"]) == 0, capsys.readouterr().err
    assert a.slack.hanging == 1  # registered while Slack had not answered yet

    (reply,) = a.slack.wait_for_responses(name, 1, 15)
    assert "Approval recorded: 1 of 2" in section_texts(reply.blocks)[0]
    assert a.bot.registry.get_model("fraud").latest_version == 1
