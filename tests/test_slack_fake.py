"""Proves tests/slack_fake.py behaves like Slack where modelbot depends on it.

Every test goes through real HTTP, mostly through the real ``slack_sdk.WebClient``: if the fake
and the SDK disagree about encoding, headers or retries, these tests are where it shows.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.slack_fake import (
    BOT_USER_ID,
    RESPONSE_URL_METHOD,
    UPLOAD_METHOD,
    SlackFake,
    block_actions_body,
    event_body,
    sign_request,
    slash_command_body,
    view_submission_body,
)

TOKEN = "xoxb-test"
CHANNEL = "C0GENERAL"


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    with SlackFake(bot_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def client(slack: SlackFake) -> WebClient:
    return WebClient(base_url=slack.api_url, token=TOKEN, timeout=5)


def api_error(call: Callable[[], Any]) -> str:
    """Run a WebClient call that must fail at the API level (HTTP 200) and return Slack's error code."""
    with pytest.raises(SlackApiError) as info:
        call()
    assert info.value.response.status_code == 200
    return info.value.response["error"]


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
    """POST without slack_sdk, to control the encoding; returns status, headers, parsed JSON (or text)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, resp_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, resp_headers, raw = exc.code, dict(exc.headers), exc.read()
    try:
        return status, resp_headers, json.loads(raw)
    except ValueError:
        return status, resp_headers, raw.decode()


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(action_id: str = "approve", text: str = "Approve", value: str = "1") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


def home(blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "home", "blocks": blocks, **extra}


def modal(blocks: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Reason"},
        "blocks": blocks or [],
        **extra,
    }


# ---- messages -------------------------------------------------------------------------------------


def test_auth_test_identifies_the_bot(slack: SlackFake, client: WebClient) -> None:
    assert slack.api_url.startswith("http://127.0.0.1:") and slack.api_url.endswith("/api/")
    response = client.auth_test()
    assert response["user_id"] == BOT_USER_ID
    assert slack.calls_to("auth.test")[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_post_thread_and_update_keep_history(slack: SlackFake, client: WebClient) -> None:
    first = client.chat_postMessage(channel=CHANNEL, text="v1", blocks=[section("*v1*")])
    second = client.chat_postMessage(channel=CHANNEL, text="another")
    assert first["channel"] == CHANNEL
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])

    reply = client.chat_postMessage(channel=CHANNEL, text="in thread", thread_ts=first["ts"])
    # Replying to a reply lands in the parent's thread, as on Slack.
    nested = client.chat_postMessage(channel=CHANNEL, text="nested", thread_ts=reply["ts"])
    assert [m.text for m in slack.messages(CHANNEL)] == ["v1", "another"]
    assert [m.ts for m in slack.thread(CHANNEL, first["ts"])] == [reply["ts"], nested["ts"]]

    client.chat_update(channel=CHANNEL, ts=first["ts"], text="v2", blocks=[section("*v2*")])
    client.chat_update(channel=CHANNEL, ts=first["ts"], text="v3")  # blocks omitted: kept
    message = slack.message(CHANNEL, first["ts"])
    assert message.text == "v3"
    assert message.blocks == [section("*v2*")]
    assert [old["text"] for old in message.history] == ["v1", "v2"]


def test_form_encoded_body_with_token_field(slack: SlackFake) -> None:
    body = urllib.parse.urlencode(
        {"token": TOKEN, "channel": CHANNEL, "text": "form", "blocks": json.dumps([section("x")])}
    ).encode()
    status, _, data = raw_post(
        slack.api_url + "chat.postMessage", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200 and data["ok"]
    call = slack.calls_to("chat.postMessage")[0]
    assert call.args["blocks"] == [section("x")]  # decoded, like a JSON caller's
    assert "token" not in call.args and call.token == TOKEN


def test_json_body_cannot_carry_the_token(slack: SlackFake) -> None:
    body = json.dumps({"token": TOKEN, "channel": CHANNEL, "text": "x"}).encode()
    _, _, data = raw_post(slack.api_url + "chat.postMessage", body, {"Content-Type": "application/json"})
    assert data == {"ok": False, "error": "not_authed"}


def test_token_errors(slack: SlackFake) -> None:
    anonymous = WebClient(base_url=slack.api_url)
    assert api_error(lambda: anonymous.chat_postMessage(channel=CHANNEL, text="x")) == "not_authed"
    wrong = WebClient(base_url=slack.api_url, token="xoxb-wrong")
    assert api_error(lambda: wrong.chat_postMessage(channel=CHANNEL, text="x")) == "invalid_auth"
    app_level = WebClient(base_url=slack.api_url, token="xapp-test")
    assert (
        api_error(lambda: app_level.chat_postMessage(channel=CHANNEL, text="x")) == "not_allowed_token_type"
    )


def test_apps_connections_open_needs_the_app_token(slack: SlackFake, client: WebClient) -> None:
    slack.socket_mode_url = "ws://127.0.0.1:4321/link"
    assert client.apps_connections_open(app_token="xapp-test")["url"] == "ws://127.0.0.1:4321/link"
    assert api_error(lambda: client.apps_connections_open(app_token=TOKEN)) == "not_allowed_token_type"


def test_unknown_method(client: WebClient) -> None:
    assert (
        api_error(lambda: client.api_call("chat.postMessagee", json={"channel": CHANNEL})) == "unknown_method"
    )


@pytest.mark.parametrize(
    ("method", "args", "missing"),
    [
        ("chat.postMessage", {"text": "x"}, "channel"),
        ("chat.update", {"channel": CHANNEL, "text": "x"}, "ts"),
        ("chat.update", {"ts": "1.2", "text": "x"}, "channel"),
        ("chat.postEphemeral", {"channel": CHANNEL, "text": "x"}, "user"),
        ("chat.getPermalink", {"channel": CHANNEL}, "message_ts"),
        ("views.publish", {"view": home([])}, "user_id"),
        ("views.publish", {"user_id": "U0ALICE"}, "view"),
        ("views.open", {"view": modal()}, "trigger_id"),
        ("views.update", {"view_id": "V1"}, "view"),
        ("users.info", {}, "user"),
        ("usergroups.users.list", {}, "usergroup"),
        ("conversations.info", {}, "channel"),
        ("conversations.history", {}, "channel"),
        ("conversations.replies", {"channel": CHANNEL}, "ts"),
        ("files.getUploadURLExternal", {"filename": "a.png"}, "length"),
        ("files.completeUploadExternal", {"channel_id": CHANNEL}, "files"),
    ],
)
def test_missing_required_arguments(
    client: WebClient, method: str, args: dict[str, Any], missing: str
) -> None:
    with pytest.raises(SlackApiError) as info:
        client.api_call(method, json=args)
    assert info.value.response["error"] == "invalid_arguments"
    assert missing in info.value.response["response_metadata"]["messages"][0]


def test_channels(slack: SlackFake, client: WebClient) -> None:
    assert api_error(lambda: client.chat_postMessage(channel="C0NOPE", text="x")) == "channel_not_found"
    slack.add_channel("C0NOPE", name="nope")
    assert client.chat_postMessage(channel="C0NOPE", text="x")["channel"] == "C0NOPE"
    assert client.chat_postMessage(channel="#nope", text="by name")["channel"] == "C0NOPE"
    dm = client.chat_postMessage(channel="U0ALICE", text="psst")
    assert slack.messages(dm["channel"])[0].text == "psst"
    slack.add_channel("C0OLD", is_archived=True)
    assert api_error(lambda: client.chat_postMessage(channel="C0OLD", text="x")) == "is_archived"
    assert client.conversations_info(channel=CHANNEL)["channel"]["name"] == "general"
    assert api_error(lambda: client.conversations_info(channel="C0GONE")) == "channel_not_found"


def test_custom_channel_set_replaces_defaults() -> None:
    with SlackFake(channels={"C0ONLY"}) as slack:
        client = WebClient(base_url=slack.api_url, token=TOKEN)
        client.chat_postMessage(channel="C0ONLY", text="x")
        assert api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x")) == "channel_not_found"


def test_update_and_permalink_need_a_message_the_fake_posted(slack: SlackFake, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="x")["ts"]
    assert api_error(lambda: client.chat_update(channel=CHANNEL, ts="1700000000.999900", text="y")) == (
        "message_not_found"
    )
    assert (
        api_error(lambda: client.chat_update(channel="C0MODELS", ts=posted, text="y")) == "message_not_found"
    )
    assert (
        api_error(lambda: client.api_call("chat.update", json={"channel": CHANNEL, "ts": posted}))
        == "no_text"
    )
    link = client.chat_getPermalink(channel=CHANNEL, message_ts=posted)["permalink"]
    assert link.endswith(posted.replace(".", ""))
    missing = "1.000001"
    assert (
        api_error(lambda: client.chat_getPermalink(channel=CHANNEL, message_ts=missing))
        == "message_not_found"
    )


def test_thread_reply_to_unknown_parent_is_refused(client: WebClient) -> None:
    assert api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x", thread_ts="1.000001")) == (
        "thread_not_found"
    )


def test_seeded_message_can_be_replied_to(slack: SlackFake, client: WebClient) -> None:
    parent = slack.add_message(CHANNEL, "hello bot", user="U0ALICE")
    client.chat_postMessage(channel=CHANNEL, text="hello human", thread_ts=parent)
    assert [m.text for m in slack.thread(CHANNEL, parent)] == ["hello human"]


def test_conversations_history_newest_first_with_metadata_on_request(slack: SlackFake, client: WebClient) -> None:
    meta = {"event_type": "modelbot_outbox", "event_payload": {"outbox_id": 7}}
    first = client.chat_postMessage(channel=CHANNEL, text="one", metadata=meta)["ts"]
    client.chat_postMessage(channel=CHANNEL, text="in thread", thread_ts=first)
    second = client.chat_postMessage(channel=CHANNEL, text="two")["ts"]
    client.chat_postMessage(channel="C0MODELS", text="elsewhere")
    assert slack.messages(CHANNEL)[0].metadata == meta  # stored as posted

    history = client.conversations_history(channel=CHANNEL)
    assert [m["text"] for m in history["messages"]] == ["two", "one"]  # replies stay in their thread
    assert history["has_more"] is False
    assert all("metadata" not in m for m in history["messages"])  # only when asked for
    assert history["messages"][1]["reply_count"] == 1

    with_meta = client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert with_meta["messages"][1]["metadata"] == meta

    # oldest/latest are exclusive unless inclusive; limit + cursor page through older messages
    assert [m["ts"] for m in client.conversations_history(channel=CHANNEL, oldest=first)["messages"]] == [second]
    only = client.conversations_history(channel=CHANNEL, oldest=first, latest=first, inclusive=True)
    assert [m["ts"] for m in only["messages"]] == [first]
    page = client.conversations_history(channel=CHANNEL, limit=1)
    assert [m["ts"] for m in page["messages"]] == [second] and page["has_more"]
    rest = client.conversations_history(channel=CHANNEL, limit=1, cursor=page["response_metadata"]["next_cursor"])
    assert [m["ts"] for m in rest["messages"]] == [first] and not rest["has_more"]


def test_ts_can_follow_a_wall_clock() -> None:
    now = [1_800_000_000.5]
    with SlackFake(ts_clock=lambda: now[0]) as slack:
        client = WebClient(base_url=slack.api_url, token=TOKEN)
        first = client.chat_postMessage(channel=CHANNEL, text="a")["ts"]
        second = client.chat_postMessage(channel=CHANNEL, text="b")["ts"]  # same instant: still later
        now[0] += 60
        third = client.chat_postMessage(channel=CHANNEL, text="c")["ts"]
    assert (first, second, third) == ("1800000000.500000", "1800000000.500100", "1800000060.500000")


def test_conversations_history_errors(slack: SlackFake, client: WebClient) -> None:
    assert api_error(lambda: client.conversations_history(channel="C0NOPE")) == "channel_not_found"
    assert api_error(lambda: client.conversations_history(channel="#general")) == "channel_not_found"
    slack.add_channel("C0OUTSIDE", is_member=False)
    assert api_error(lambda: client.conversations_history(channel="C0OUTSIDE")) == "not_in_channel"
    assert api_error(lambda: client.conversations_history(channel=CHANNEL, oldest="soon")) == "invalid_ts_oldest"
    assert api_error(lambda: client.conversations_history(channel=CHANNEL, cursor="bogus")) == "invalid_cursor"


def test_conversations_replies(slack: SlackFake, client: WebClient) -> None:
    meta = {"event_type": "modelbot_outbox", "event_payload": {"outbox_id": 9}}
    parent = client.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    one = client.chat_postMessage(channel=CHANNEL, text="r1", thread_ts=parent, metadata=meta)["ts"]
    two = client.chat_postMessage(channel=CHANNEL, text="r2", thread_ts=parent)["ts"]
    thread = client.conversations_replies(channel=CHANNEL, ts=parent, include_all_metadata=True)
    assert [m["ts"] for m in thread["messages"]] == [parent, one, two]  # parent first, then oldest first
    assert thread["messages"][1]["metadata"] == meta
    assert [m["ts"] for m in client.conversations_replies(channel=CHANNEL, ts=one, oldest=one)["messages"]] == [
        parent, two,
    ]
    assert api_error(lambda: client.conversations_replies(channel=CHANNEL, ts="1.000001")) == "thread_not_found"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
def test_no_text_and_msg_too_long(client: WebClient) -> None:
    assert api_error(lambda: client.chat_postMessage(channel=CHANNEL)) == "no_text"
    assert api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="", blocks=[])) == "no_text"
    assert api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x" * 40_001)) == "msg_too_long"


def test_ephemeral(slack: SlackFake, client: WebClient) -> None:
    response = client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")
    [ephemeral] = slack.ephemerals(CHANNEL, user="U0ALICE")
    assert ephemeral.ts == response["message_ts"] and ephemeral.text == "only you"
    assert slack.messages(CHANNEL) == []
    assert api_error(lambda: client.chat_postEphemeral(channel=CHANNEL, user="U0NOBODY", text="x")) == (
        "user_not_in_channel"
    )
    # Ephemeral messages cannot be updated through chat.update.
    assert api_error(lambda: client.chat_update(channel=CHANNEL, ts=response["message_ts"], text="y")) == (
        "message_not_found"
    )


# ---- Block Kit limits -----------------------------------------------------------------------------


def _actions(elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "actions", "elements": elements}


INVALID_MESSAGE_BLOCKS: dict[str, Any] = {
    "51 blocks": [{"type": "divider"}] * 51,
    "section text 3001": [section("x" * 3001)],
    "empty section text": [section("")],
    "section without text or fields": [{"type": "section"}],
    "11 fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
    "field 2001": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
    "header 151": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    "header mrkdwn": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
    "button text 76": [_actions([button(text="b" * 76)])],
    "button value 2001": [_actions([button(value="v" * 2001)])],
    "button style": [_actions([{**button(), "style": "loud"}])],
    "action_id 256": [_actions([button(action_id="a" * 256)])],
    "duplicate action_id": [_actions([button("same"), button("same")])],
    "block_id 256": [{"type": "divider", "block_id": "b" * 256}],
    "duplicate block_id": [{"type": "divider", "block_id": "d"}, {"type": "divider", "block_id": "d"}],
    "26 actions elements": [_actions([button(f"a{i}") for i in range(26)])],
    "11 context elements": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
    "input element in actions": [_actions([{"type": "plain_text_input", "action_id": "x"}])],
    "accessory button text 76": [{**section("s"), "accessory": button(text="b" * 76)}],
    "select option value 151": [
        _actions(
            [
                {
                    "type": "static_select",
                    "options": [{"text": {"type": "plain_text", "text": "o"}, "value": "v" * 151}],
                }
            ]
        )
    ],
    "image without alt_text": [{"type": "image", "image_url": "https://example.com/a.png"}],
    "unknown block type": [{"type": "carousel"}],
    "block without type": [{"text": "x"}],
    "block is not an object": ["divider"],
    "blocks is an object": {"type": "divider"},
}


@pytest.mark.parametrize("blocks", INVALID_MESSAGE_BLOCKS.values(), ids=INVALID_MESSAGE_BLOCKS.keys())
def test_invalid_message_blocks(client: WebClient, blocks: Any) -> None:
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=blocks)
    assert info.value.response["error"] == "invalid_blocks"
    assert "[ERROR]" in info.value.response["response_metadata"]["messages"][0]


def test_blocks_at_the_limits_are_accepted(client: WebClient) -> None:
    at_limits = [
        section("x" * 3000),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10},
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        _actions([button(f"a{i}", text="b" * 75, value="v" * 2000) for i in range(24)] + [button("z" * 255)]),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
        {"type": "divider", "block_id": "b" * 255},
    ]
    blocks = at_limits + [{"type": "divider"}] * (50 - len(at_limits))
    assert client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=blocks)["ok"]


def test_unparsable_form_blocks(slack: SlackFake) -> None:
    body = urllib.parse.urlencode({"channel": CHANNEL, "text": "x", "blocks": "[{not json"}).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded"}
    _, _, data = raw_post(slack.api_url + "chat.postMessage", body, headers)
    assert data["error"] == "invalid_blocks_format"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
def test_update_validates_blocks_too(client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="x")["ts"]
    assert api_error(lambda: client.chat_update(channel=CHANNEL, ts=ts, blocks=[section("x" * 3001)])) == (
        "invalid_blocks"
    )


# ---- views ----------------------------------------------------------------------------------------


def test_views_publish_home(slack: SlackFake, client: WebClient) -> None:
    first = client.views_publish(user_id="U0ALICE", view=home([section("hi")]))
    client.views_publish(user_id="U0ALICE", view=home([section("again")]), hash=first["view"]["hash"])
    assert slack.home_view("U0ALICE")["blocks"] == [section("again")]
    assert len(slack.home_views("U0ALICE")) == 2
    stale = first["view"]["hash"]
    assert (
        api_error(lambda: client.views_publish(user_id="U0ALICE", view=home([]), hash=stale))
        == "hash_conflict"
    )
    assert api_error(lambda: client.views_publish(user_id="U0NOBODY", view=home([]))) == "user_not_found"
    assert api_error(lambda: client.views_publish(user_id="U0ALICE", view=modal())) == "invalid_arguments"


@pytest.mark.parametrize(
    ("view", "error"),
    [
        (home([{"type": "divider"}] * 101), "invalid_arguments"),
        (home([section("x" * 3000)] * 90), "view_too_large"),
        (home([], private_metadata="m" * 3001), "invalid_arguments"),
        (home([section("x" * 3001)]), "invalid_arguments"),
        (home([], callback_id="c" * 256), "invalid_arguments"),
    ],
    ids=["101 blocks", "over 250 KB", "private_metadata 3001", "section 3001", "callback_id 256"],
)
def test_invalid_views(client: WebClient, view: dict[str, Any], error: str) -> None:
    assert api_error(lambda: client.views_publish(user_id="U0ALICE", view=view)) == error


def test_home_view_at_100_blocks_is_accepted(client: WebClient) -> None:
    assert client.views_publish(user_id="U0ALICE", view=home([{"type": "divider"}] * 100))["ok"]


def test_home_tab_disabled() -> None:
    with SlackFake(home_tab_enabled=False) as slack:
        client = WebClient(base_url=slack.api_url, token=TOKEN)
        assert api_error(lambda: client.views_publish(user_id="U0ALICE", view=home([]))) == "not_enabled"


def test_trigger_id_works_once(slack: SlackFake, client: WebClient) -> None:
    trigger = slack.new_trigger_id("U0ALICE")
    opened = client.views_open(trigger_id=trigger, view=modal([section("why?")]))
    assert opened["view"]["id"] == slack.views()[0].id
    assert slack.views()[0].user_id == "U0ALICE"
    assert api_error(lambda: client.views_open(trigger_id=trigger, view=modal())) == "expired_trigger_id"
    assert (
        api_error(lambda: client.views_open(trigger_id="123.456.abc", view=modal())) == "invalid_trigger_id"
    )


def test_trigger_id_expires(slack: SlackFake, client: WebClient) -> None:
    trigger = slack.new_trigger_id()
    slack.expire_trigger_id(trigger)
    assert api_error(lambda: client.views_open(trigger_id=trigger, view=modal())) == "expired_trigger_id"


def test_trigger_id_expiry_follows_the_clock() -> None:
    now = [100.0]
    with SlackFake(clock=lambda: now[0]) as slack:
        client = WebClient(base_url=slack.api_url, token=TOKEN)
        trigger = slack.new_trigger_id()
        now[0] += 3.5
        assert api_error(lambda: client.views_open(trigger_id=trigger, view=modal())) == "expired_trigger_id"


def test_invalid_modal_does_not_spend_the_trigger(slack: SlackFake, client: WebClient) -> None:
    trigger = slack.new_trigger_id()
    too_long_title = modal(title={"type": "plain_text", "text": "t" * 25})
    assert (
        api_error(lambda: client.views_open(trigger_id=trigger, view=too_long_title)) == "invalid_arguments"
    )
    needs_submit = modal(
        [
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input"},
            }
        ]
    )
    assert api_error(lambda: client.views_open(trigger_id=trigger, view=needs_submit)) == "invalid_arguments"
    assert client.views_open(trigger_id=trigger, view=modal())["ok"]


def test_views_update(slack: SlackFake, client: WebClient) -> None:
    opened = client.views_open(trigger_id=slack.new_trigger_id(), view=modal(external_id="req-1"))["view"]
    updated = client.views_update(view_id=opened["id"], view=modal([section("done")]), hash=opened["hash"])
    assert slack.view(opened["id"]).view["blocks"] == [section("done")]
    stale = opened["hash"]
    assert (
        api_error(lambda: client.views_update(view_id=opened["id"], view=modal(), hash=stale))
        == "hash_conflict"
    )
    assert client.views_update(external_id="req-1", view=modal(), hash=updated["view"]["hash"])["ok"]
    assert api_error(lambda: client.views_update(view_id="V9999999", view=modal())) == "not_found"


# ---- users, groups --------------------------------------------------------------------------------


def test_users_and_usergroups(client: WebClient) -> None:
    assert client.users_info(user="U0ALICE")["user"]["name"] == "alice"
    assert api_error(lambda: client.users_info(user="U0NOBODY")) == "user_not_found"
    groups = client.usergroups_list(include_users=True)["usergroups"]
    leads = next(g for g in groups if g["handle"] == "ml-leads")
    assert (
        client.usergroups_users_list(usergroup=leads["id"])["users"] == leads["users"] == ["U0ALICE", "U0BOB"]
    )
    assert api_error(lambda: client.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"


def test_custom_users_and_usergroups() -> None:
    users = {"U0DAN": {"name": "dan"}}
    groups = {"S0OPS": {"handle": "ops", "users": ["U0DAN"]}, "S0OLD": {"handle": "old", "disabled": True}}
    with SlackFake(users=users, usergroups=groups) as slack:
        client = WebClient(base_url=slack.api_url, token=TOKEN)
        assert [g["handle"] for g in client.usergroups_list()["usergroups"]] == ["ops"]
        assert len(client.usergroups_list(include_disabled=True)["usergroups"]) == 2
        assert client.users_info(user="U0DAN")["user"]["profile"]["display_name"] == "dan"
        assert api_error(lambda: client.users_info(user="U0ALICE")) == "user_not_found"


# ---- files ----------------------------------------------------------------------------------------


def test_files_upload_v2_three_steps(slack: SlackFake, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="report")["ts"]
    response = client.files_upload_v2(
        channel=CHANNEL,
        content=b"\x89PNG fake chart",
        filename="drift.png",
        title="Drift",
        initial_comment="drift chart",
        thread_ts=parent,
    )
    assert response["file"]["title"] == "Drift"
    assert [c.method for c in slack.calls[1:]] == [
        "files.getUploadURLExternal",
        UPLOAD_METHOD,
        "files.completeUploadExternal",
    ]
    [upload] = slack.files()
    assert upload.content == b"\x89PNG fake chart" and upload.completed
    assert upload.channels == [CHANNEL] and upload.thread_ts == parent
    [shared] = slack.thread(CHANNEL, parent)
    assert shared.text == "drift chart" and shared.files[0]["id"] == upload.id


def test_complete_upload_without_bytes_fails(slack: SlackFake, client: WebClient) -> None:
    started = client.files_getUploadURLExternal(filename="a.txt", length=3)
    files = [{"id": started["file_id"], "title": "a"}]
    error = api_error(lambda: client.files_completeUploadExternal(files=files, channel_id=CHANNEL))
    assert error == "file_not_found"
    status, _, _ = raw_post(started["upload_url"], b"four", {"Content-Type": "application/octet-stream"})
    assert status == 400  # length announced was 3


# ---- failure switches -----------------------------------------------------------------------------


def test_rate_limit_is_retried_by_slack_sdk(slack: SlackFake) -> None:
    slack.rate_limit("chat.postMessage", retry_after=1)
    client = WebClient(
        base_url=slack.api_url, token=TOKEN, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    assert client.chat_postMessage(channel=CHANNEL, text="eventually")["ok"]
    limited, accepted = slack.calls_to("chat.postMessage")
    assert (limited.status, limited.error, limited.response_headers["Retry-After"]) == (
        429,
        "ratelimited",
        "1",
    )
    assert accepted.ok
    assert [m.text for m in slack.messages(CHANNEL)] == ["eventually"]


def test_rate_limit_without_retry_handler_surfaces_retry_after(slack: SlackFake, client: WebClient) -> None:
    slack.rate_limit(retry_after=7)
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=CHANNEL, text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert info.value.response["error"] == "ratelimited"


def test_server_error_is_retried_by_slack_sdk(slack: SlackFake) -> None:
    slack.fail_next("chat.postMessage", status=500)
    handler = ServerErrorRetryHandler(
        max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )
    client = WebClient(base_url=slack.api_url, token=TOKEN, retry_handlers=[handler])
    assert client.chat_postMessage(channel=CHANNEL, text="x")["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 200]


def test_fail_next_counts_and_filters_by_method(slack: SlackFake, client: WebClient) -> None:
    slack.fail_next("chat.update", status=503, count=2)
    assert client.chat_postMessage(channel=CHANNEL, text="x")["ok"]  # other methods unaffected
    ts = slack.messages(CHANNEL)[0].ts
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            client.chat_update(channel=CHANNEL, ts=ts, text="y")
        assert info.value.response.status_code == 503
    assert client.chat_update(channel=CHANNEL, ts=ts, text="y")["ok"]


def test_error_for_gives_a_canned_slack_error(slack: SlackFake, client: WebClient) -> None:
    slack.error_for("chat.postMessage", "not_in_channel")
    assert api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x")) == "not_in_channel"
    assert client.chat_postMessage(channel=CHANNEL, text="x")["ok"]


def test_outage_until_cleared(slack: SlackFake, client: WebClient) -> None:
    slack.set_outage("fail", status=503)
    for call in (client.auth_test, lambda: client.chat_postMessage(channel=CHANNEL, text="x")):
        with pytest.raises(SlackApiError) as info:
            call()
        assert info.value.response.status_code == 503
    slack.set_outage("rate_limit", retry_after=3)
    with pytest.raises(SlackApiError) as info:
        client.auth_test()
    assert info.value.response.status_code == 429
    slack.clear_outage()
    assert client.auth_test()["ok"]


def _call_in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_hang_until_release(slack: SlackFake, client: WebClient) -> None:
    slack.hang("chat.postMessage")
    thread, outcome = _call_in_thread(lambda: client.chat_postMessage(channel=CHANNEL, text="late"))
    slack.wait_for_hanging(1)
    assert slack.calls_to("chat.postMessage") == []  # recorded only once answered
    assert client.auth_test()["ok"]  # other methods still flow
    slack.release()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert outcome["result"]["ok"]
    assert slack.hanging == 0


def test_client_timeout_during_hang(slack: SlackFake) -> None:
    slack.hang(seconds=10)
    impatient = WebClient(base_url=slack.api_url, token=TOKEN, timeout=0.2)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        impatient.auth_test()


def test_hanging_outage_released_by_clear(slack: SlackFake, client: WebClient) -> None:
    slack.set_outage("hang")
    thread, outcome = _call_in_thread(client.auth_test)
    slack.wait_for_hanging(1)
    slack.clear_outage()
    thread.join(timeout=5)
    assert outcome["result"]["ok"]


def test_stop_does_not_wait_for_hung_requests() -> None:
    slack = SlackFake().start()
    client = WebClient(base_url=slack.api_url, token=TOKEN, timeout=10)
    slack.hang(seconds=60)
    thread, outcome = _call_in_thread(client.auth_test)
    slack.wait_for_hanging(1)
    started = time.monotonic()
    slack.stop()
    assert time.monotonic() - started < 3
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), SlackApiError)  # answered 503 on the way down


# ---- waiting --------------------------------------------------------------------------------------


def test_wait_for_calls_from_another_thread(slack: SlackFake, client: WebClient) -> None:
    _call_in_thread(lambda: client.chat_postMessage(channel=CHANNEL, text="background"))
    [call] = slack.wait_for_calls("chat.postMessage", 1, timeout=5)
    assert call.args["text"] == "background"
    # Effects are stored before the call is recorded, so this is already visible.
    assert slack.messages(CHANNEL)[0].text == "background"
    assert slack.wait_for(lambda: slack.messages(CHANNEL))[0].text == "background"


def test_wait_for_times_out(slack: SlackFake) -> None:
    with pytest.raises(TimeoutError, match="never"):
        slack.wait_for(lambda: False, timeout=0.05, what="never")


# ---- response_url ---------------------------------------------------------------------------------


def test_response_url_records_flags_and_allows_five_posts(slack: SlackFake) -> None:
    webhook = WebhookClient(slack.response_url("cmd"))
    assert webhook.send(text="working…").status_code == 200
    assert webhook.send(text="done", replace_original=True, response_type="in_channel").status_code == 200
    assert webhook.send_dict({"delete_original": True}).status_code == 200
    for _ in range(2):
        assert webhook.send(text="more").status_code == 200
    sixth = webhook.send(text="too many")
    assert sixth.status_code == 404 and json.loads(sixth.body)["error"] == "used_url"

    posts = slack.responses("cmd")
    assert [p.text for p in posts] == ["working…", "done", None, "more", "more"]
    assert posts[0].response_type == "ephemeral" and not posts[0].replace_original
    assert posts[1].response_type == "in_channel" and posts[1].replace_original
    assert posts[2].delete_original
    assert [c.status for c in slack.calls_to(RESPONSE_URL_METHOD)] == [200] * 5 + [404]


def test_response_url_rejections(slack: SlackFake) -> None:
    unknown = slack.base_url + "/response/never-issued"
    status, _, data = raw_post(unknown, b'{"text": "x"}', {"Content-Type": "application/json"})
    assert (status, data["ok"]) == (404, False)
    webhook = WebhookClient(slack.response_url("r"))
    assert webhook.send(text="x", blocks=[section("y" * 3001)]).status_code == 400
    assert webhook.send_dict({"response_type": "ephemeral"}).status_code == 400  # no text, no blocks
    slack.expire_response_url("r")
    assert json.loads(webhook.send(text="late").body)["error"] == "expired_url"
    assert slack.responses("r") == []


# ---- inbound payload helpers ----------------------------------------------------------------------


def test_sign_request_matches_slack_sdk_verifier() -> None:
    body = slash_command_body("list models")
    headers = sign_request("s3cret", body)
    verifier = SignatureVerifier("s3cret")
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + b"&x=1", headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    old = sign_request("s3cret", body, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(body, old)  # replay window is 5 minutes


def test_slash_command_body_fields(slack: SlackFake, client: WebClient) -> None:
    body = slack.slash_command_body("promote fraud v3", response_name="promo", channel_id="C0MODELS")
    fields = dict(urllib.parse.parse_qsl(body.decode()))
    assert fields["command"] == "/model" and fields["text"] == "promote fraud v3"
    assert fields["channel_id"] == "C0MODELS" and fields["user_id"] == "U0ALICE"
    assert fields["response_url"] == slack.response_url("promo")
    assert client.views_open(trigger_id=fields["trigger_id"], view=modal())["ok"]
    plain = dict(urllib.parse.parse_qsl(slash_command_body("x").decode()))
    assert (
        api_error(lambda: client.views_open(trigger_id=plain["trigger_id"], view=modal()))
        == "invalid_trigger_id"
    )


def test_block_actions_body_shape(slack: SlackFake) -> None:
    body = slack.block_actions_body("approve", "req-42", message_ts="1700000000.000100", user_id="U0BOB")
    payload = json.loads(dict(urllib.parse.parse_qsl(body.decode()))["payload"])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0BOB"
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1700000000.000100",
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["actions"][0]["action_id"] == "approve" and payload["actions"][0]["value"] == "req-42"
    assert payload["response_url"] == slack.response_url("action")
    select = json.loads(
        dict(urllib.parse.parse_qsl(block_actions_body("pick", "v2", action_type="static_select").decode()))[
            "payload"
        ]
    )
    assert select["actions"][0]["selected_option"]["value"] == "v2"


def test_view_submission_and_event_bodies() -> None:
    body = view_submission_body(
        "reject_reason", {"reason": {"input": "drift too high"}}, private_metadata="req-7"
    )
    payload = json.loads(dict(urllib.parse.parse_qsl(body.decode()))["payload"])
    assert payload["type"] == "view_submission"
    assert payload["view"]["callback_id"] == "reject_reason"
    assert payload["view"]["private_metadata"] == "req-7"
    assert payload["view"]["state"]["values"]["reason"]["input"]["value"] == "drift too high"

    envelope = json.loads(event_body({"type": "app_home_opened", "user": "U0ALICE", "tab": "home"}))
    assert envelope["type"] == "event_callback" and envelope["event"]["type"] == "app_home_opened"
    assert envelope["event_id"].startswith("Ev")


def test_bolt_app_starts_against_the_fake(slack: SlackFake, client: WebClient) -> None:
    app = App(client=client, signing_secret="s3cret")
    assert app.client.base_url == slack.api_url
    assert slack.wait_for_calls("auth.test", 1)[0].ok
