"""App Home end to end (issue 7, acceptance 4): pending approvals with the card's buttons, watched
models with health, paging within Slack's limits, refreshes through the outbox.

Everything is real except Slack: signed events and clicks travel over HTTP into the web app
(uvicorn → Bolt → listeners → domain → SQLite/PostgreSQL); the outbox delivery worker, built
with the App Home renderer as `modelbot serve` builds it, sends cards, card updates and Home
refreshes to the strict fake Slack, which refuses a view over 100 blocks or 250 KB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.blocks import approvals as cards
from bot.blocks import home as home_blocks
from bot.delivery.worker import DeliveryWorker
from bot.domain.home import HomeEnvironment, HomeModel, HomeModels
from bot.domain.monitoring import status
from bot.domain.registry import NewVersion
from bot.handlers.home import HomeRefresher
from bot.listeners.app import build_app
from bot.services import open_services
from bot.slack.client import make_web_client
from bot.web.app import create_web_app
from bot.web.server import ServerThread
from storage.models import OutboxMessage, RequestVote
from tests.slack_fake import SlackFake, event_body
from tests.slack_support import (  # noqa: F401  (fixtures)
    CompletionTracker,
    RunningBot,
    bot_settings,
    buttons,
    section_texts,
    slack_fixture,
)

APPROVALS = "C0APPROVALS"
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
"""
HOSTILE = "<!channel> & <@U0EVIL> *bold* `tick` <https://evil.example|click>"
SLACK_VIEW_BYTES = 250_000


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class HomeTab:
    """The running bot, the delivery worker, and helpers that act like people in Slack."""

    def __init__(self, bot: RunningBot, worker: DeliveryWorker) -> None:
        self.bot, self.worker, self.slack = bot, worker, bot.slack

    def command(self, text: str, user: str) -> str:
        return "\n".join(section_texts(self.bot.command(text, user_id=user).blocks))

    def open(self, user: str) -> dict[str, Any]:
        """The user opens the App Home tab: returns the view Slack was asked to publish."""
        published = len(self.slack.calls_to("views.publish"))
        body = event_body({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"})
        response = self.bot.signed_post(body, content_type="application/json")
        assert response.status_code == 200, response.text
        return self._published(user, published)

    def click(self, user: str, view: dict[str, Any], action_id: str, value: str) -> dict[str, Any]:
        """Press a button on the published Home `view`: returns the Home published in answer."""
        published = len(self.slack.calls_to("views.publish"))
        body = self.slack.block_actions_body(action_id, value, user_id=user, view=view, block_id="home")
        response = self.bot.signed_post(body)
        assert response.status_code == 200, response.text
        return self._published(user, published)

    def _published(self, user: str, before: int) -> dict[str, Any]:
        call = self.slack.wait_for_calls("views.publish", before + 1, 10)[before]
        assert call.ok, call.response
        assert call.args["user_id"] == user
        view = self.slack.home_view(user)
        assert view is not None
        check_limits(view)
        return view

    def card_click(self, user: str, card: Any, action_id: str) -> str:
        name = self.bot.unique("click")
        body = self.slack.block_actions_body(action_id, value_of(card.blocks, action_id), response_name=name,
                                             user_id=user, channel_id=APPROVALS, message_ts=card.ts)
        assert self.bot.signed_post(body).status_code == 200
        reply = self.slack.wait_for_responses(name, 1, 10)[0]
        assert reply.response_type == "ephemeral" and not reply.replace_original
        return "\n".join(section_texts(reply.blocks))

    def deliver(self) -> None:
        for _ in range(200):
            if self.worker.run_once() == 0:
                break
        with self.bot.registry.reading() as session:
            stuck = session.execute(sa.select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.last_error)
                                    .where(OutboxMessage.status != "delivered")).all()
        assert not stuck, stuck

    def card(self, model: str) -> Any:
        (card,) = [m for m in self.slack.messages(APPROVALS) if f": {model} v" in m.blocks[0]["text"]["text"]]
        return card


@pytest.fixture
def tab(database_url: str, slack: SlackFake, tmp_path: Path) -> Iterator[HomeTab]:
    for user in ("U0APPR1", "U0ADMIN"):
        slack.add_user(user, name=user.lower())
    slack.add_channel(APPROVALS, name="model-approvals")
    policy = tmp_path / "modelbot.toml"
    policy.write_text(POLICY)
    clock = Clock()
    services = open_services(bot_settings(database_url, slack, MODELBOT_CONFIG=str(policy)), clock=clock)
    app = build_app(services, "http")
    tracker = CompletionTracker(app.listener_runner.listener_completion_handler)
    app.listener_runner.listener_completion_handler = tracker
    server = ServerThread(create_web_app(services, app)).start()
    bot = RunningBot(url=server.url, slack=slack, services=services, app=app, listeners=tracker)
    worker = DeliveryWorker(services.db, make_web_client(slack.bot_token, slack.api_url, retries=0), clock=clock,
                            post_interval_s=0.0, concurrency=2, home=HomeRefresher(services))
    try:
        yield HomeTab(bot, worker)
    finally:
        worker.close()
        bot.http.close()
        server.stop()
        app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
        services.close()


def seed_model(tab: HomeTab, model: str, *, description: str | None = None, actor: str = "ci") -> None:
    """v1 serves production; v2 (better) and v3 (auc too low for the gate) served staging."""
    registry = tab.bot.registry
    for auc in (0.90, 0.92, 0.80):
        registry.register(NewVersion(model=model, artifact_uri=f"s3://models/{model}/{auc}", actor=actor,
                                     metrics={"auc": auc}, description=description))
    for version in ("1", "2", "3"):
        registry.promote(model, version, "staging", actor="ci")
    registry.promote(model, "1", "production", actor="ci")


# ---- helpers over views ------------------------------------------------------------------------------


def check_limits(view: dict[str, Any]) -> None:
    """What Slack checks, checked here too so a failure names the view rather than an error code."""
    assert len(view["blocks"]) <= 100
    assert len(json.dumps(view, separators=(",", ":")).encode()) < SLACK_VIEW_BYTES


def value_of(blocks: list[dict[str, Any]], action_id: str, request: int | None = None) -> str:
    values = [b["value"] for b in buttons(blocks) if b["action_id"] == action_id]
    if request is not None:
        values = [v for v in values if json.loads(v) == {"r": request}]
    assert values, (action_id, request)
    return values[0]


def text_of(view: dict[str, Any]) -> str:
    return "\n".join(section_texts(view["blocks"]))


def pending_ids(view: dict[str, Any]) -> list[int]:
    return [int(n) for n in re.findall(r":hourglass_flowing_sand: \*#(\d+)\*", text_of(view))]


def model_names(view: dict[str, Any]) -> list[str]:
    return re.findall(r"^:[a-z_]+: \*([A-Za-z0-9._-]+)\*", text_of(view), flags=re.MULTILINE)


def notice(view: dict[str, Any]) -> str:
    """The note at the top of a Home published in answer to a click."""
    assert view["blocks"][0]["type"] == "header"
    return view["blocks"][1]["text"]["text"]


def request_of(text: str) -> int:
    return int(text.split("Request *#")[1].split("*")[0])


def trail(tab: HomeTab, model: str, number: int) -> list[tuple[str, str, int | None, int | None]]:
    """The audit rows of one request, without ids and times."""
    return [(e.action, e.actor, e.from_version, e.to_version)
            for e in tab.bot.registry.history(model, "production", limit=500) if e.request_id == str(number)]


def home_rows(tab: HomeTab) -> list[tuple[str, str]]:
    with tab.bot.registry.reading() as session:
        return [tuple(r) for r in session.execute(  # type: ignore[misc]
            sa.select(OutboxMessage.topic, OutboxMessage.status).where(OutboxMessage.kind == "home")
            .order_by(OutboxMessage.id)).all()]


def votes(tab: HomeTab, number: int) -> list[tuple[str, str]]:
    with tab.bot.registry.reading() as session:
        rows = session.execute(sa.select(RequestVote.voter, RequestVote.decision)
                               .where(RequestVote.request_id == number).order_by(RequestVote.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


# ---- acceptance 4 -------------------------------------------------------------------------------------


def test_approve_on_the_home_behaves_exactly_like_the_card_and_updates_both(tab: HomeTab) -> None:
    seed_model(tab, "churn")
    seed_model(tab, "fraud")
    churn = request_of(tab.command("promote churn 2 production better auc", user="U0ALICE"))
    fraud = request_of(tab.command("promote fraud 2 production better auc", user="U0ALICE"))
    assert home_rows(tab) == [("home:production", "pending")]  # one refresh covers both: it renders at send time
    tab.deliver()

    # the outbox already refreshed the approvers' Homes when the requests opened
    assert sorted(pending_ids(tab.slack.home_view("U0BOB") or {"blocks": []})) == [churn, fraud]
    assert pending_ids(tab.slack.home_view("U0ALICE") or {"blocks": []}) == []  # the requester: four eyes

    # opening the Home shows the pending requests, with the card's own buttons (ids and values)
    home = tab.open("U0APPR1")
    assert sorted(pending_ids(home)) == [churn, fraud]
    fraud_card = tab.card("fraud")
    for action in (cards.APPROVE_ACTION, cards.REJECT_ACTION):
        assert value_of(home["blocks"], action, fraud) == value_of(fraud_card.blocks, action)
    labels = [b["text"]["text"] for b in buttons(home["blocks"]) if json.loads(b.get("value") or "{}") == {"r": fraud}]
    assert labels == ["Approve", "Reject"]
    assert "*Waiting for your approval* (2)" in text_of(home)

    # churn is approved on the card, fraud on the Home, by the same people in the same order
    first_card = tab.card_click("U0APPR1", tab.card("churn"), cards.APPROVE_ACTION)
    home = tab.click("U0APPR1", home, cards.APPROVE_ACTION, value_of(home["blocks"], cards.APPROVE_ACTION, fraud))
    assert notice(home) == first_card == ":ballot_box_with_check: Approval recorded: 1 of 2."
    # both wait for a second approver now, whichever surface the first vote came from: no buttons left
    assert text_of(home).count(":ballot_box_with_check: You approved; waiting for 1 more.") == 2
    assert sorted(pending_ids(home)) == [churn, fraud] and buttons(home["blocks"]) == []

    tab.deliver()  # the card edit goes through the outbox, whichever surface the vote came from
    for model in ("churn", "fraud"):
        assert "*Approvals* 1 of 2: <@U0APPR1>" in text_of({"blocks": tab.card(model).blocks})

    bob = tab.open("U0BOB")
    second_card = tab.card_click("U0BOB", tab.card("churn"), cards.APPROVE_ACTION)
    bob = tab.click("U0BOB", bob, cards.APPROVE_ACTION, value_of(bob["blocks"], cards.APPROVE_ACTION, fraud))
    assert second_card == ":white_check_mark: Approved: churn v2 now serves production (was v1)."
    assert notice(bob) == second_card.replace("churn", "fraud")
    assert pending_ids(bob) == []
    assert "• *production* v2" in text_of(bob)  # the model's serving line shows the move at once

    # same audit rows, same votes, same outcome
    assert trail(tab, "fraud", fraud) == trail(tab, "churn", churn) == [
        ("promote_requested", "U0ALICE", 1, 2), ("approve", "U0APPR1", None, 2), ("approve", "U0BOB", None, 2),
        ("promote", "U0BOB", 1, 2)]
    assert votes(tab, fraud) == votes(tab, churn) == [("U0APPR1", "approve"), ("U0BOB", "approve")]
    assert tab.bot.registry.environment_state("fraud", "production").stable == 2

    before = len(tab.slack.calls_to("views.publish"))
    tab.deliver()
    for model in ("churn", "fraud"):
        card = tab.card(model)
        assert ":white_check_mark: *Approved*" in text_of({"blocks": card.blocks}) and buttons(card.blocks) == []
        assert len(tab.slack.thread(APPROVALS, card.ts)) == 1
    # … and the other approvers' Homes were published again without their pending requests
    refreshed = {c.args["user_id"] for c in tab.slack.calls_to("views.publish")[before:] if c.ok}
    assert {"U0APPR1", "U0ADMIN"} <= refreshed
    assert pending_ids(tab.slack.home_view("U0APPR1") or {}) == []
    assert "Nothing waits for you." in text_of(tab.slack.home_view("U0ADMIN") or {})


def test_home_refusals_reject_modal_and_gate_override(tab: HomeTab) -> None:
    seed_model(tab, "churn")
    low = request_of(tab.command("promote churn 3 production", user="U0ALICE"))  # auc 0.80: the gate fails
    tab.deliver()
    admin = tab.open("U0ADMIN")
    labels = [b["text"]["text"] for b in buttons(admin["blocks"]) if json.loads(b.get("value") or "{}") == {"r": low}]
    assert labels == ["Approve", "Reject", "Override gate (admin)"]
    assert ":x: gate fails: `auc &gt;= current.auc - 0.005`" in text_of(admin)

    # a refusal is the same refusal as on the card, shown on the Home, and audited
    carol = tab.open("U0CAROL")
    assert pending_ids(carol) == []  # not an approver: nothing to act on
    answer = tab.click("U0CAROL", carol, cards.APPROVE_ACTION, json.dumps({"r": low}))
    assert notice(answer).startswith(":warning: You are not an approver for production")
    assert [e.actor for e in tab.bot.registry.history("churn", "production") if e.action == "approve_refused"] == [
        "U0CAROL"]

    # Reject opens the same modal as on the card; the Home is left as it is until the decision
    opened = len(tab.slack.calls_to("views.open"))
    body = tab.slack.block_actions_body(cards.REJECT_ACTION, value_of(admin["blocks"], cards.REJECT_ACTION, low),
                                        user_id="U0ADMIN", view=admin)
    assert tab.bot.signed_post(body).status_code == 200
    modal = tab.slack.wait_for_calls("views.open", opened + 1, 10)[-1].args["view"]
    assert modal["callback_id"] == cards.REJECT_VIEW and json.loads(modal["private_metadata"]) == {"r": low}
    submitted = tab.slack.view_submission_body(
        modal["callback_id"], {cards.REASON_BLOCK: {cards.REASON_INPUT: "auc regression " + HOSTILE}},
        user_id="U0ADMIN", private_metadata=modal["private_metadata"], blocks=modal["blocks"])
    assert tab.bot.signed_post(submitted).status_code == 200
    tab.deliver()
    assert pending_ids(tab.slack.home_view("U0ADMIN") or {}) == []  # refreshed through the outbox
    assert "*Rejected* by <@U0ADMIN>" in text_of({"blocks": tab.card("churn").blocks})


def test_hostile_text_is_escaped_on_the_home(tab: HomeTab) -> None:
    seed_model(tab, "churn", description=HOSTILE, actor="U0BOB")
    tab.bot.services.deployments.request_promotion("churn", "2", "production", requester="U0ALICE",
                                                   reason="because " + HOSTILE)
    view = tab.open("U0BOB")
    raw = json.dumps(view)
    for dangerous in ("<!channel>", "<@U0EVIL>", "<https://evil.example|click>"):
        assert dangerous not in raw
    text = text_of(view)
    assert "&lt;!channel&gt; &amp; &lt;@U0EVIL&gt;" in text  # the description, escaped
    assert "_Reason:_ because &lt;!channel&gt;" in text
    assert "*churn*" in text and "owner <@U0BOB>" in text  # owners are mentions, by id only
    assert all(s.get("text", {}).get("verbatim") for s in view["blocks"] if s["type"] == "section")


# ---- 300 models: paging within Slack's limits ------------------------------------------------------------


def test_three_hundred_models_page_within_slack_limits(tab: HomeTab) -> None:
    registry = tab.bot.registry
    # long, hostile, emoji-heavy descriptions: the worst case for the JSON size of a view
    description = (HOSTILE + " 🔥📈🧪 " * 400)[:4000]
    names = [f"model-{i:03d}" for i in range(300)]
    for name in names:
        registry.register(NewVersion(model=name, artifact_uri=f"s3://models/{name}/1", actor="ci",
                                     metrics={"auc": 0.9}, description=description))
    for name in names[:12]:  # twelve requests wait for U0BOB: more than the Home lists
        registry.register(NewVersion(model=name, artifact_uri=f"s3://models/{name}/2", actor="ci",
                                     metrics={"auc": 0.91}))
        registry.promote(name, "1", "staging", actor="ci")
        registry.promote(name, "2", "staging", actor="ci")
        registry.promote(name, "1", "production", actor="ci")
        tab.bot.services.deployments.request_promotion(name, "2", "production", requester="U0ALICE")

    view = tab.open("U0BOB")
    assert len(pending_ids(view)) == home_blocks.MAX_PENDING_SHOWN
    assert "2 more: `/model requests` lists them." in text_of(view)
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        check_limits(view)
        seen += model_names(view)
        more = [b for b in buttons(view["blocks"]) if b["action_id"] == home_blocks.HOME_PAGE_ACTION
                and b["text"]["text"].startswith("More")]
        if not more:
            break
        view = tab.click("U0BOB", view, home_blocks.HOME_PAGE_ACTION, more[0]["value"])
        assert pending_ids(view) == []  # approvals live on the first page
        assert pages < 40, "paging does not end"
    assert seen == names  # every model once, in order (U0BOB watches none of them: all models)
    assert pages == 300 // home_blocks.MODELS_PER_PAGE
    assert "Models 281–300 of 300" in text_of(view)

    # U0CAROL registered (owns) 30 of 330: her Home lists only hers, and says how to see the rest
    for i in range(30):
        registry.register(NewVersion(model=f"carol-{i:02d}", artifact_uri="s3://m", actor="U0CAROL"))
    carol = tab.open("U0CAROL")
    assert model_names(carol) == [f"carol-{i:02d}" for i in range(home_blocks.MODELS_PER_PAGE)]
    assert "*Your models* (30)" in text_of(carol) and "`/model list` shows all 330" in text_of(carol)


def test_a_view_over_the_size_budget_drops_models_and_more_continues_with_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The size guard itself, on a budget small enough to hit with ordinary data."""
    monkeypatch.setattr(home_blocks, "MAX_VIEW_BYTES", 6_000)
    line = status.EnvironmentLine(environment="production", stable=3, quality=("roc_auc", 0.91), latency=None,
                                  uptime=0.999, dataset_drift=False, firing=0,
                                  newest=datetime(2026, 1, 1, tzinfo=UTC), stale=False)
    models = tuple(HomeModel(name=f"m{i:02d}", description="x" * 900, owner="U0BOB", latest_version=3, watched=True,
                             environments=(HomeEnvironment("production", 3, None, 0, line),), firing=())
                   for i in range(20))
    page = HomeModels(items=models, scope="watched", offset=40, total=100, watched_total=100, registry_total=500)
    view = home_blocks.home(home_blocks.HomeData(user="U0BOB", pending=[], models=page,
                                                 now=datetime(2026, 1, 1, tzinfo=UTC)))
    assert home_blocks.view_bytes(view) <= 6_000
    shown = len(model_names(view))
    assert 0 < shown < 20
    assert f"{20 - shown} model(s) did not fit on this page" in text_of(view)
    (more,) = [b for b in buttons(view["blocks"]) if b["text"]["text"].startswith("More")]
    assert json.loads(more["value"]) == {"o": 40 + shown}  # nothing is skipped
    (previous,) = [b for b in buttons(view["blocks"]) if b["text"]["text"].startswith("◀")]
    assert json.loads(previous["value"]) == {"o": 40 - home_blocks.MODELS_PER_PAGE}


def test_health_badges_and_firing_alerts(tab: HomeTab) -> None:
    from bot.domain.alerting.engine import AlertEngine, AlertSettings
    from bot.domain.alerting.rules import AlertRules, parse_rule
    from bot.domain.monitoring.samples import SampleIn, Samples

    registry = tab.bot.registry
    for model in ("churn", "fraud", "quiet", "loud"):
        seed_model(tab, model, actor="U0BOB")
    now = tab.bot.services.clock()
    Samples(registry).record([
        SampleIn("churn", "production", "roc_auc", 0.91, now - timedelta(minutes=5), 1),
        SampleIn("fraud", "production", "roc_auc", 0.91, now - timedelta(days=3), 1),  # stale
        SampleIn("loud", "production", "error_rate", 0.09, now - timedelta(minutes=1), 1),
    ], source="test")
    AlertRules(registry, tab.bot.services.policy).add(parse_rule("loud", "production", "error_rate", op=">",
                                                                 threshold="0.05", severity="critical"),
                                                      actor="U0ALICE", now=now)
    AlertEngine(registry, AlertSettings(default_channel="C0ALERTS"), clock=tab.bot.services.clock).evaluate()

    text = text_of(tab.open("U0BOB"))
    assert ":white_check_mark: *churn*" in text and "roc_auc 0.91" in text
    assert ":warning: *fraud*" in text and ":hourglass: stale" in text
    assert ":white_circle: *quiet*" in text and "• *production* v1 — _no data_" in text
    assert ":fire: *loud*" in text and ":rotating_light: 1 firing" in text
    assert ":rotating_light: *error_rate* 0.09 &gt; 0.05 (production, critical, since" in text
