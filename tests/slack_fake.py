"""A strict fake of the Slack Web API, served over real HTTP on 127.0.0.1.

Why a real server: slack_sdk's ``WebClient`` reaches Slack through ``urllib``, so libraries that
patch ``requests`` never see those calls, and mocking the client skips the very code that breaks
in production (encoding, headers, retry handlers, Retry-After).  Tests point
``WebClient(base_url=slack.api_url)`` at this server and run the real HTTP path.

Why strict: Slack rejects many payloads that look fine in Python (51 blocks in a message, a
3001-character section, a reused ``trigger_id``, a ``chat.update`` of a message that does not
exist).  The fake answers those the way Slack does (HTTP 200, ``{"ok": false, "error": ...}``,
``response_metadata.messages`` with a JSON pointer), so such bugs fail in tests and not in front
of users.  Where Slack's exact behaviour is undocumented or lenient the fake errs on the strict
side, and the docstring of the method concerned says so.

Typical use::

    with SlackFake() as slack:
        client = WebClient(base_url=slack.api_url, token=slack.bot_token)
        client.chat_postMessage(channel="C0GENERAL", text="hi")
        assert slack.messages("C0GENERAL")[0].text == "hi"

The module also builds and signs *inbound* Slack traffic (slash commands, block actions, view
submissions, events) for tests that drive our own ``/slack/events`` endpoint.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import decimal
import hashlib
import hmac
import itertools
import json
import mimetypes
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeVar

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_CHANNELS",
    "DEFAULT_USERGROUPS",
    "DEFAULT_USERS",
    "RESPONSE_URL_METHOD",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "UPLOAD_METHOD",
    "Call",
    "Ephemeral",
    "Message",
    "ResponsePost",
    "SlackFake",
    "UploadedFile",
    "ViewRecord",
    "block_actions_body",
    "event_body",
    "sign_request",
    "slash_command_body",
    "view_submission_body",
]

T = TypeVar("T")

# Identity of the fake workspace and of our bot in it.
TEAM_ID = "T0FAKE"
TEAM_DOMAIN = "fake"
TEAM_NAME = "Fake Workspace"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
BOT_NAME = "modelbot"
APP_ID = "A0MODELBOT"

# Pseudo method names under which non-Web-API endpoints are recorded and matched by failure switches.
RESPONSE_URL_METHOD = "response_url"
UPLOAD_METHOD = "upload_url"

DEFAULT_CHANNELS: Mapping[str, Mapping[str, Any]] = {
    "C0GENERAL": {"name": "general"},
    "C0MODELS": {"name": "models"},
    "C0ALERTS": {"name": "ml-alerts"},
    "G0PRIVATE": {"name": "ml-private", "is_private": True},
}
DEFAULT_USERS: Mapping[str, Mapping[str, Any]] = {
    "U0ALICE": {"name": "alice", "real_name": "Alice Approver"},
    "U0BOB": {"name": "bob", "real_name": "Bob Builder"},
    "U0CAROL": {"name": "carol", "real_name": "Carol Oncall"},
}
DEFAULT_USERGROUPS: Mapping[str, Mapping[str, Any]] = {
    "S0LEADS": {"handle": "ml-leads", "name": "ML leads", "users": ["U0ALICE", "U0BOB"]},
}

# Limits (docs.slack.dev/reference/block-kit/*, api.slack.com/interactivity/handling).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
# "250 kb": Slack does not say whether that is 250,000 or 256,000 bytes; the stricter reading wins.
MAX_VIEW_BYTES = 250_000
MAX_PRIVATE_METADATA = 3000
MAX_MESSAGE_TEXT = 40_000
RESPONSE_URL_MAX_POSTS = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60
TRIGGER_TTL_SECONDS = 3.0

_FIRST_TS_MICROS = 1_700_000_000 * 1_000_000
# Form-encoded callers send these as JSON strings; the fake decodes them so that `Call.args` looks
# the same whichever encoding the client chose.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "files")
# Methods that need the app-level (xapp-) token; every other method needs the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_ANY_TOKEN_METHODS = frozenset({"auth.test"})

_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
_ELEMENT_TYPES = frozenset(
    {
        "button",
        "channels_select",
        "checkboxes",
        "conversations_select",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "external_select",
        "file_input",
        "image",
        "multi_channels_select",
        "multi_conversations_select",
        "multi_external_select",
        "multi_static_select",
        "multi_users_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "static_select",
        "timepicker",
        "url_text_input",
        "users_select",
        "workflow_button",
    }
)
_INPUT_ONLY_ELEMENTS = frozenset(
    {
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_input",
        "file_input",
        "rich_text_input",
    }
)
_ACTIONS_ELEMENTS = _ELEMENT_TYPES - _INPUT_ONLY_ELEMENTS - {"image"}
_ACCESSORY_ELEMENTS = _ACTIONS_ELEMENTS | {"image"}
_INPUT_ELEMENTS = _ELEMENT_TYPES - {"button", "overflow", "image", "workflow_button"}


# --------------------------------------------------------------------------------------------------
# Records handed to tests
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One HTTP request the fake answered, recorded after its effects are stored.

    ``method`` is the Web API method (``chat.postMessage``), or ``RESPONSE_URL_METHOD`` /
    ``UPLOAD_METHOD`` for the non-API endpoints.  ``args`` holds the arguments with JSON-string
    fields (blocks, view, ...) decoded and ``token`` removed; ``headers`` keys are lower-case.
    """

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    time: float
    status: int
    response: dict[str, Any] | None
    response_headers: dict[str, str]
    token: str | None
    raw_body: bytes

    @property
    def ok(self) -> bool:
        """True when Slack would call this a success (HTTP 200 and ``ok: true``)."""
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The Slack error code returned, if any."""
        return None if self.response is None else self.response.get("error")


@dataclass
class Message:
    """A message the bot posted (or a test seeded); ``history`` holds earlier versions after updates."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    reply_broadcast: bool = False
    user: str = BOT_USER_ID
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_slack(self) -> dict[str, Any]:
        """The message as Slack's API would return it."""
        out: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "user": self.user,
            "text": self.text,
            "team": TEAM_ID,
        }
        if self.user == BOT_USER_ID:
            out.update({"bot_id": BOT_ID, "app_id": APP_ID})
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments is not None:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        if self.files:
            out["files"] = copy.deepcopy(self.files)
        if self.history:
            out["edited"] = {"user": BOT_USER_ID, "ts": self.ts}
        return out


@dataclass
class Ephemeral:
    """An ephemeral message: seen by one user only, never updatable through chat.update."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None


@dataclass
class ViewRecord:
    """A modal opened through views.open (and later views.update); ``history`` holds earlier versions."""

    id: str
    user_id: str | None
    trigger_id: str
    view: dict[str, Any]
    hash: str
    external_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class UploadedFile:
    """A file going through the three-step external upload (URL → bytes → complete)."""

    id: str
    filename: str
    length: int
    title: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True)
class ResponsePost:
    """One accepted POST to a response_url; the flags are recorded, not applied to messages."""

    name: str
    body: dict[str, Any]
    time: float

    @property
    def text(self) -> str | None:
        return self.body.get("text")

    @property
    def blocks(self) -> list[dict[str, Any]] | None:
        return self.body.get("blocks")

    @property
    def response_type(self) -> str:
        """``ephemeral`` unless ``in_channel`` was asked for, as on Slack."""
        return self.body.get("response_type") or "ephemeral"

    @property
    def replace_original(self) -> bool:
        return _flag(self.body.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        return _flag(self.body.get("delete_original"))


# --------------------------------------------------------------------------------------------------
# Errors and Block Kit validation
# --------------------------------------------------------------------------------------------------


class _ApiError(Exception):
    """Raised inside a method handler: becomes ``{"ok": false, "error": code}`` with HTTP 200, like Slack."""

    def __init__(self, error: str, messages: list[str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error": self.error, **self.extra}
        if self.messages:
            out["response_metadata"] = {"messages": self.messages}
        return out


class _Invalid(Exception):
    """A Block Kit violation; the caller maps it to the surface's error code (messages vs views differ)."""

    def __init__(self, problem: str, pointer: str) -> None:
        super().__init__(f"[ERROR] {problem} [json-pointer:{pointer}]")


def _flag(value: Any) -> bool:
    """Slack booleans arrive as JSON booleans or as form strings ("true", "1")."""
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _check_str(value: Any, pointer: str, *, max_len: int, min_len: int = 1) -> None:
    if not isinstance(value, str):
        raise _Invalid("must be a string", pointer)
    if len(value) < min_len:
        raise _Invalid(f"must be at least {min_len} characters", pointer)
    if len(value) > max_len:
        raise _Invalid(f"must be less than {max_len + 1} characters", pointer)


def _check_list(value: Any, pointer: str, *, max_items: int, min_items: int = 1) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid("must be an array", pointer)
    if len(value) < min_items:
        raise _Invalid(f"must provide at least {min_items} items", pointer)
    if len(value) > max_items:
        raise _Invalid(f"no more than {max_items} items allowed", pointer)
    return value


def _check_text(obj: Any, pointer: str, *, max_len: int, plain_only: bool = False) -> None:
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict):
        raise _Invalid("must be a text object", pointer)
    if obj.get("type") not in kinds:
        raise _Invalid(f"type must be one of {', '.join(kinds)}", f"{pointer}/type")
    _check_str(obj.get("text"), f"{pointer}/text", max_len=max_len)


def _check_option(opt: Any, pointer: str, *, mrkdwn_ok: bool) -> None:
    if not isinstance(opt, dict):
        raise _Invalid("must be an option object", pointer)
    _check_text(opt.get("text"), f"{pointer}/text", max_len=75, plain_only=not mrkdwn_ok)
    _check_str(opt.get("value"), f"{pointer}/value", max_len=150)
    if "description" in opt:
        _check_text(opt["description"], f"{pointer}/description", max_len=75, plain_only=not mrkdwn_ok)
    if "url" in opt:
        _check_str(opt["url"], f"{pointer}/url", max_len=3000)


def _check_confirm(obj: Any, pointer: str) -> None:
    if not isinstance(obj, dict):
        raise _Invalid("must be a confirmation dialog object", pointer)
    _check_text(obj.get("title"), f"{pointer}/title", max_len=100, plain_only=True)
    _check_text(obj.get("text"), f"{pointer}/text", max_len=300)
    _check_text(obj.get("confirm"), f"{pointer}/confirm", max_len=30, plain_only=True)
    _check_text(obj.get("deny"), f"{pointer}/deny", max_len=30, plain_only=True)


def _check_image(obj: dict[str, Any], pointer: str) -> None:
    if "image_url" in obj:
        _check_str(obj["image_url"], f"{pointer}/image_url", max_len=3000)
    elif not isinstance(obj.get("slack_file"), dict):
        raise _Invalid("must provide image_url or slack_file", pointer)
    _check_str(obj.get("alt_text"), f"{pointer}/alt_text", max_len=2000)


def _check_element(el: Any, pointer: str, allowed: frozenset[str], action_ids: set[str]) -> None:
    if not isinstance(el, dict) or not isinstance(el.get("type"), str):
        raise _Invalid("must be an element object with a type", pointer)
    kind = el["type"]
    if kind not in allowed:
        raise _Invalid(f"unsupported element type {kind!r} here", f"{pointer}/type")
    if "action_id" in el:
        _check_str(el["action_id"], f"{pointer}/action_id", max_len=255)
        if el["action_id"] in action_ids:
            raise _Invalid("action_id must be unique within its block", f"{pointer}/action_id")
        action_ids.add(el["action_id"])
    if "confirm" in el:
        _check_confirm(el["confirm"], f"{pointer}/confirm")
    if "placeholder" in el:
        _check_text(el["placeholder"], f"{pointer}/placeholder", max_len=150, plain_only=True)
    if kind == "button":
        _check_text(el.get("text"), f"{pointer}/text", max_len=75, plain_only=True)
        if "value" in el:
            _check_str(el["value"], f"{pointer}/value", max_len=2000)
        if "url" in el:
            _check_str(el["url"], f"{pointer}/url", max_len=3000)
        if "style" in el and el["style"] not in ("primary", "danger"):
            raise _Invalid("style must be primary or danger", f"{pointer}/style")
    elif kind in ("static_select", "multi_static_select"):
        if "options" in el:
            for i, opt in enumerate(_check_list(el["options"], f"{pointer}/options", max_items=100)):
                _check_option(opt, f"{pointer}/options/{i}", mrkdwn_ok=False)
        elif "option_groups" in el:
            groups = _check_list(el["option_groups"], f"{pointer}/option_groups", max_items=100)
            for g, group in enumerate(groups):
                gp = f"{pointer}/option_groups/{g}"
                if not isinstance(group, dict):
                    raise _Invalid("must be an option group object", gp)
                _check_text(group.get("label"), f"{gp}/label", max_len=75, plain_only=True)
                for i, opt in enumerate(_check_list(group.get("options"), f"{gp}/options", max_items=100)):
                    _check_option(opt, f"{gp}/options/{i}", mrkdwn_ok=False)
        else:
            raise _Invalid("must provide options or option_groups", pointer)
    elif kind == "overflow":
        for i, opt in enumerate(_check_list(el.get("options"), f"{pointer}/options", max_items=5)):
            _check_option(opt, f"{pointer}/options/{i}", mrkdwn_ok=False)
    elif kind in ("checkboxes", "radio_buttons"):
        for i, opt in enumerate(_check_list(el.get("options"), f"{pointer}/options", max_items=10)):
            _check_option(opt, f"{pointer}/options/{i}", mrkdwn_ok=True)
    elif kind == "plain_text_input":
        max_length = el.get("max_length")
        if max_length is not None and (not isinstance(max_length, int) or not 1 <= max_length <= 3000):
            raise _Invalid("max_length must be between 1 and 3000", f"{pointer}/max_length")
    elif kind == "image":
        _check_image(el, pointer)


def _check_block(block: Any, pointer: str, block_ids: set[str]) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _Invalid("must be a block object with a type", pointer)
    kind = block["type"]
    if kind not in _BLOCK_TYPES:
        raise _Invalid(f"unknown block type {kind!r}", f"{pointer}/type")
    if "block_id" in block:
        _check_str(block["block_id"], f"{pointer}/block_id", max_len=255)
        if block["block_id"] in block_ids:
            raise _Invalid("block_id must be unique", f"{pointer}/block_id")
        block_ids.add(block["block_id"])
    action_ids: set[str] = set()
    if kind == "section":
        if "text" not in block and "fields" not in block:
            raise _Invalid("must provide text or fields", pointer)
        if "text" in block:
            _check_text(block["text"], f"{pointer}/text", max_len=3000)
        if "fields" in block:
            for i, f in enumerate(_check_list(block["fields"], f"{pointer}/fields", max_items=10)):
                _check_text(f, f"{pointer}/fields/{i}", max_len=2000)
        if "accessory" in block:
            _check_element(block["accessory"], f"{pointer}/accessory", _ACCESSORY_ELEMENTS, action_ids)
    elif kind == "header":
        _check_text(block.get("text"), f"{pointer}/text", max_len=150, plain_only=True)
    elif kind == "context":
        for i, el in enumerate(_check_list(block.get("elements"), f"{pointer}/elements", max_items=10)):
            if isinstance(el, dict) and el.get("type") == "image":
                _check_image(el, f"{pointer}/elements/{i}")
            else:
                _check_text(el, f"{pointer}/elements/{i}", max_len=3000)
    elif kind == "actions":
        for i, el in enumerate(_check_list(block.get("elements"), f"{pointer}/elements", max_items=25)):
            _check_element(el, f"{pointer}/elements/{i}", _ACTIONS_ELEMENTS, action_ids)
    elif kind == "image":
        _check_image(block, pointer)
        if "title" in block:
            _check_text(block["title"], f"{pointer}/title", max_len=2000, plain_only=True)
    elif kind == "input":
        _check_text(block.get("label"), f"{pointer}/label", max_len=2000, plain_only=True)
        if "element" not in block:
            raise _Invalid("missing required field: element", pointer)
        _check_element(block["element"], f"{pointer}/element", _INPUT_ELEMENTS, action_ids)
        if "hint" in block:
            _check_text(block["hint"], f"{pointer}/hint", max_len=2000, plain_only=True)
    elif kind == "markdown":
        _check_str(block.get("text"), f"{pointer}/text", max_len=12_000)
    elif kind == "rich_text":
        _check_list(block.get("elements"), f"{pointer}/elements", max_items=10_000)
    elif kind == "file":
        _check_str(block.get("external_id"), f"{pointer}/external_id", max_len=255)
        if block.get("source") != "remote":
            raise _Invalid("source must be remote", f"{pointer}/source")
    elif kind == "video":
        _check_str(block.get("alt_text"), f"{pointer}/alt_text", max_len=2000)
        _check_text(block.get("title"), f"{pointer}/title", max_len=200, plain_only=True)
        _check_str(block.get("thumbnail_url"), f"{pointer}/thumbnail_url", max_len=3000)
        _check_str(block.get("video_url"), f"{pointer}/video_url", max_len=3000)


def _check_blocks(blocks: Any, pointer: str, *, max_blocks: int) -> list[dict[str, Any]]:
    """Validate a list of blocks the way Slack does; raises ``_Invalid`` at the first problem."""
    _check_list(blocks, pointer, max_items=max_blocks, min_items=0)
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        _check_block(block, f"{pointer}/{i}", block_ids)
    return blocks


def _message_content(args: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]] | None, list[Any] | None]:
    """Validate text/blocks/attachments of a message; Slack's codes: invalid_blocks, no_text, msg_too_long."""
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        raise _ApiError("invalid_blocks_format", ["[ERROR] blocks is not valid JSON [json-pointer:/blocks]"])
    if blocks is not None:
        try:
            _check_blocks(blocks, "/blocks", max_blocks=MAX_MESSAGE_BLOCKS)
        except _Invalid as exc:
            raise _ApiError("invalid_blocks", [str(exc)]) from None
    attachments = args.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise _ApiError("invalid_attachments", ["[ERROR] attachments must be an array"])
    text = args.get("text")
    text = "" if text is None else str(text)
    if not text and not blocks and not attachments:
        raise _ApiError("no_text")
    if len(text) > MAX_MESSAGE_TEXT:
        raise _ApiError("msg_too_long")
    return text, blocks, attachments


def _check_view(view: Any, *, allowed_types: tuple[str, ...]) -> dict[str, Any]:
    """Validate a modal or Home view; too big → view_too_large, anything else → invalid_arguments."""
    if not isinstance(view, dict):
        raise _ApiError("invalid_arguments", ["[ERROR] view must be a JSON object [json-pointer:/view]"])
    size = len(json.dumps(view, separators=(",", ":")).encode("utf-8"))
    if size > MAX_VIEW_BYTES:
        raise _ApiError("view_too_large", [f"[ERROR] view is {size} bytes, over {MAX_VIEW_BYTES}"])
    try:
        kind = view.get("type")
        if kind not in allowed_types:
            raise _Invalid(f"type must be one of {', '.join(allowed_types)}", "/view/type")
        blocks = _check_blocks(view.get("blocks"), "/view/blocks", max_blocks=MAX_VIEW_BLOCKS)
        if kind == "modal":
            _check_text(view.get("title"), "/view/title", max_len=24, plain_only=True)
            for key in ("submit", "close"):
                if key in view:
                    _check_text(view[key], f"/view/{key}", max_len=24, plain_only=True)
            if "submit" not in view and any(b.get("type") == "input" for b in blocks):
                raise _Invalid("submit is required when the view has input blocks", "/view/submit")
        if "private_metadata" in view:
            _check_str(
                view["private_metadata"], "/view/private_metadata", max_len=MAX_PRIVATE_METADATA, min_len=0
            )
        for key in ("callback_id", "external_id"):
            if key in view:
                _check_str(view[key], f"/view/{key}", max_len=255, min_len=0)
    except _Invalid as exc:
        raise _ApiError("invalid_arguments", [str(exc)]) from None
    return view


def _require(args: Mapping[str, Any], *names: str) -> None:
    """Slack answers a missing required argument with invalid_arguments and a pointer message."""
    for name in names:
        if args.get(name) in (None, ""):
            raise _ApiError("invalid_arguments", [f"[ERROR] missing required field: {name}"])


# --------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[int, dict[str, str], bytes]:
        headers = dict(self.headers)
        if isinstance(self.body, dict):
            payload = json.dumps(self.body).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        else:
            payload = self.body.encode("utf-8")
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return self.status, headers, payload


@dataclass
class _Rule:
    """A queued failure switch: kind decides the answer, ``remaining`` counts matching requests left."""

    kind: Literal["fail", "rate_limit", "hang", "error"]
    method: str | None
    remaining: int
    status: int = 500
    retry_after: int = 1
    seconds: float | None = None
    error: str = "internal_error"
    extra: dict[str, Any] = field(default_factory=dict)

    def matches(self, method: str) -> bool:
        return self.method is None or self.method == method


@dataclass
class _Trigger:
    minted_at: float
    user_id: str | None
    used: bool = False
    expired: bool = False


@dataclass
class _ResponseUrl:
    created_at: float
    posts: list[ResponsePost] = field(default_factory=list)
    expired: bool = False


class _Server(ThreadingHTTPServer):
    """One thread per request, daemonic so a client that never reads cannot keep the process alive."""

    daemon_threads = True
    block_on_close = False
    # socketserver's default backlog of 5 makes a burst of parallel clients (a delivery worker
    # with several threads) see connection resets and 1 s SYN retries that Slack never causes
    request_queue_size = 128

    def __init__(self, fake: SlackFake, address: tuple[str, int]) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # headers and body go out in two writes; with Nagle on, the body waits ~40 ms for the
    # client's delayed ACK, which turns every call into a 40 ms call
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, reply_headers, payload = self.server.fake._dispatch(self.path, headers, body)
        try:
            self.send_response(status)
            for key, value in reply_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its own timeout during a hang): nothing left to tell it

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log; `SlackFake.calls` is the record."""


def _parse_api_request(
    headers: Mapping[str, str], query: str, body: bytes
) -> tuple[dict[str, Any], str | None, _ApiError | None]:
    """Arguments, token and a parse error (if any) from query string + form or JSON body.

    Token rules as on Slack: ``Authorization: Bearer`` wins; a ``token`` form/query field is
    accepted otherwise, but a JSON body cannot carry the token (Slack ignores it there).
    """
    args: dict[str, Any] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    error: _ApiError | None = None
    is_json = False
    if body:
        if ctype == "application/json":
            is_json = True
            try:
                parsed = json.loads(body)
            except ValueError:
                error = _ApiError("invalid_json")
            else:
                if isinstance(parsed, dict):
                    args.update(parsed)
                else:
                    error = _ApiError("json_not_object")
        elif ctype in ("application/x-www-form-urlencoded", ""):
            try:
                args.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                error = _ApiError("invalid_form_data")
        elif ctype == "multipart/form-data":
            error = _ApiError("invalid_form_data", ["[ERROR] the fake does not parse multipart bodies"])
        else:
            error = _ApiError("invalid_post_type")
    body_token = args.pop("token", None)
    auth = headers.get("authorization")
    if auth is not None:
        token: str | None = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else auth
    else:
        token = None if is_json else body_token
    for key in _JSON_FIELDS:
        if isinstance(args.get(key), str):
            # Left as a string when unparsable: the method then answers with its *_format error.
            with contextlib.suppress(ValueError):
                args[key] = json.loads(args[key])
    return args, token, error


# --------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------


class SlackFake:
    """The Slack Web API (the methods modelbot calls) plus response_urls and file uploads.

    All state lives behind one re-entrant Condition: request threads mutate it, tests read it,
    and the ``wait_for*`` helpers block on it instead of sleeping.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        app_token: str | None = "xapp-test",
        channels: Iterable[str] | Mapping[str, Mapping[str, Any]] | None = None,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        usergroups: Mapping[str, Mapping[str, Any]] | None = None,
        socket_mode_url: str = "ws://127.0.0.1:9/socket-mode",
        home_tab_enabled: bool = True,
        trigger_ttl: float = TRIGGER_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        ts_clock: Callable[[], float] | None = None,
    ) -> None:
        """Configure the workspace; nothing listens until ``start()`` / ``with``.

        ``channels`` may be ids (``{"C0GENERAL"}``) or ids → info (``{"C1": {"name": "x",
        "is_archived": True}}``).  ``clock`` (monotonic seconds) drives trigger_id and
        response_url expiry, so tests can age them without sleeping.

        Message ts are deterministic by default (``1700000000.000100``, then +100 µs each).
        With ``ts_clock`` (unix seconds, e.g. ``time.time``) they follow that clock like Slack's
        (still strictly increasing), for tests whose code compares ts with its own clock.
        """
        self.bot_token = bot_token
        self.app_token = app_token
        self.socket_mode_url = socket_mode_url
        self.home_tab_enabled = home_tab_enabled
        self.trigger_ttl = trigger_ttl
        self._clock = clock
        self._host = host
        self._cond = threading.Condition(threading.RLock())
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._active = 0
        self._hanging = 0
        self._release_gen = 0

        self._channels: dict[str, dict[str, Any]] = {}
        channel_map: Mapping[str, Mapping[str, Any]]
        if channels is None:
            channel_map = DEFAULT_CHANNELS
        elif isinstance(channels, Mapping):
            channel_map = channels
        else:
            channel_map = {cid: {} for cid in channels}
        for cid, info in channel_map.items():
            self.add_channel(cid, **info)
        self._users: dict[str, dict[str, Any]] = {}
        for uid, info in (DEFAULT_USERS if users is None else users).items():
            self.add_user(uid, **info)
        self._users[BOT_USER_ID] = _user_info(BOT_USER_ID, {"name": BOT_NAME, "is_bot": True})
        self._usergroups: dict[str, dict[str, Any]] = {}
        for gid, info in (DEFAULT_USERGROUPS if usergroups is None else usergroups).items():
            self.add_usergroup(gid, **info)

        self._calls: list[Call] = []
        self._messages: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: dict[str, ViewRecord] = {}
        self._home: dict[str, list[dict[str, Any]]] = {}
        self._files: dict[str, UploadedFile] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._rules: list[_Rule] = []
        self._outage: _Rule | None = None
        self._ids = itertools.count(1)
        self._ts_counter = itertools.count(1)
        self._ts_clock = ts_clock
        self._last_ts_micros = 0

        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "apps.connections.open": self._apps_connections_open,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.replies": self._conversations_replies,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
        }

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> SlackFake:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("SlackFake already started")
        self._closing = False
        self._server = _Server(self, (self._host, 0))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="slack-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop serving without waiting on hung requests: hangs are released and answered 503."""
        server = self._server
        if server is None:
            return
        with self._cond:
            self._closing = True
            self._release_gen += 1
            self._cond.notify_all()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=drain_timeout)
        with self._cond:
            self._cond.wait_for(lambda: self._active == 0, timeout=drain_timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> SlackFake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("SlackFake is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        """Web API base URL for ``WebClient(base_url=...)`` / ``MODELBOT_SLACK_API_URL`` (ends in /api/)."""
        return f"{self.base_url}/api/"

    # ---- workspace setup ------------------------------------------------------------------------

    def add_channel(self, channel_id: str, **info: Any) -> None:
        """Register a channel (``name``, ``is_private``, ``is_archived``, ... override the defaults)."""
        with self._cond:
            self._channels[channel_id] = _channel_info(channel_id, info)

    def add_user(self, user_id: str, **info: Any) -> None:
        """Register a user for users.info, chat.postEphemeral, views.publish and DMs."""
        with self._cond:
            self._users[user_id] = _user_info(user_id, info)

    def add_usergroup(
        self, usergroup_id: str, *, handle: str, users: Iterable[str] = (), **info: Any
    ) -> None:
        """Register a user group (``disabled=True`` hides it from usergroups.list by default)."""
        with self._cond:
            members = list(users)
            self._usergroups[usergroup_id] = {
                "id": usergroup_id,
                "team_id": TEAM_ID,
                "is_usergroup": True,
                "name": info.pop("name", handle),
                "handle": handle,
                "description": info.pop("description", ""),
                "date_delete": 1_700_000_000 if info.pop("disabled", False) else 0,
                "users": members,
                "user_count": len(members),
                **info,
            }

    def add_message(
        self, channel: str, text: str, *, user: str = "U0ALICE", thread_ts: str | None = None, **fields: Any
    ) -> str:
        """Seed a message (e.g. a human's post the bot replies to in a thread); returns its ts."""
        with self._cond:
            msg = Message(
                channel=channel, ts=self._next_ts(), text=text, user=user, thread_ts=thread_ts, **fields
            )
            self._messages.setdefault(channel, []).append(msg)
            self._cond.notify_all()
            return msg.ts

    def new_trigger_id(self, user_id: str | None = None) -> str:
        """Mint a trigger_id that views.open accepts once, within ``trigger_ttl`` seconds."""
        with self._cond:
            trigger_id = f"{next(self._ids)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = _Trigger(minted_at=self._clock(), user_id=user_id)
            return trigger_id

    def expire_trigger_id(self, trigger_id: str) -> None:
        """Age a trigger_id past its 3 s without waiting 3 s."""
        with self._cond:
            self._triggers[trigger_id].expired = True

    def response_url(self, name: str = "default") -> str:
        """A response_url on the fake (idempotent per name) that records up to 5 posts."""
        with self._cond:
            self._response_urls.setdefault(name, _ResponseUrl(created_at=self._clock()))
        return f"{self.base_url}/response/{urllib.parse.quote(name, safe='')}"

    def expire_response_url(self, name: str) -> None:
        """Age a response_url past Slack's 30 minutes: further posts get 404 expired_url."""
        with self._cond:
            self._response_urls[name].expired = True

    # ---- inbound payloads wired to this fake ----------------------------------------------------

    def slash_command_body(self, text: str, *, response_name: str = "command", **kwargs: Any) -> bytes:
        """``slash_command_body`` whose response_url and trigger_id work against this fake."""
        kwargs.setdefault("response_url", self.response_url(response_name))
        kwargs.setdefault("trigger_id", self.new_trigger_id(kwargs.get("user_id", "U0ALICE")))
        return slash_command_body(text, **kwargs)

    def block_actions_body(
        self, action_id: str, value: str, *, response_name: str = "action", **kwargs: Any
    ) -> bytes:
        """``block_actions_body`` whose response_url and trigger_id work against this fake."""
        kwargs.setdefault("response_url", self.response_url(response_name))
        kwargs.setdefault("trigger_id", self.new_trigger_id(kwargs.get("user_id", "U0ALICE")))
        return block_actions_body(action_id, value, **kwargs)

    def view_submission_body(self, callback_id: str, values: Mapping[str, Any], **kwargs: Any) -> bytes:
        """``view_submission_body`` whose trigger_id works against this fake."""
        kwargs.setdefault("trigger_id", self.new_trigger_id(kwargs.get("user_id", "U0ALICE")))
        return view_submission_body(callback_id, values, **kwargs)

    # ---- failure switches -----------------------------------------------------------------------

    def fail_next(
        self, method: str | None = None, *, status: int = 500, count: int = 1, error: str = "internal_error"
    ) -> None:
        """Answer the next ``count`` matching requests (any endpoint when method is None) with ``status``."""
        self._add_rule(_Rule("fail", method, count, status=status, error=error))

    def rate_limit(self, method: str | None = None, *, retry_after: int = 2, count: int = 1) -> None:
        """Answer the next ``count`` matching requests with 429, ``Retry-After`` and ``ratelimited``."""
        self._add_rule(_Rule("rate_limit", method, count, status=429, retry_after=retry_after))

    def hang(self, method: str | None = None, *, seconds: float | None = 30.0, count: int = 1) -> None:
        """Hold the next ``count`` matching requests until ``release()``, ``seconds`` pass, or stop.

        A held request is then answered normally (or 503 if the fake is stopping), so a client
        whose timeout is shorter sees a timeout, and one whose timeout is longer sees a slow reply.
        """
        self._add_rule(_Rule("hang", method, count, seconds=seconds))

    def error_for(self, method: str, error: str, *, count: int = 1, **extra: Any) -> None:
        """Answer the next ``count`` calls of ``method`` with HTTP 200 ``{"ok": false, "error": error, **extra}``."""
        self._add_rule(_Rule("error", method, count, status=200, error=error, extra=extra))

    def set_outage(
        self,
        kind: Literal["fail", "rate_limit", "hang"],
        *,
        status: int = 503,
        retry_after: int = 2,
        seconds: float | None = 30.0,
    ) -> None:
        """Answer every request (all endpoints) with 5xx / 429 / a hang until ``clear_outage()``."""
        if kind not in ("fail", "rate_limit", "hang"):
            raise ValueError(f"unknown outage kind {kind!r}")
        with self._cond:
            self._outage = _Rule(
                kind,
                None,
                1,
                status=429 if kind == "rate_limit" else status,
                retry_after=retry_after,
                seconds=seconds,
                error="service_unavailable" if kind == "fail" else "internal_error",
            )

    def clear_outage(self) -> None:
        """End the outage; requests held by a hanging outage are released."""
        with self._cond:
            self._outage = None
            self._release_gen += 1
            self._cond.notify_all()

    def release(self) -> None:
        """Let every held request through and drop the pending ``hang`` switches."""
        with self._cond:
            self._rules = [r for r in self._rules if r.kind != "hang"]
            self._release_gen += 1
            self._cond.notify_all()

    def clear_failures(self) -> None:
        """Drop all pending failure switches and any outage (held requests are released)."""
        with self._cond:
            self._rules.clear()
            self._outage = None
            self._release_gen += 1
            self._cond.notify_all()

    @property
    def hanging(self) -> int:
        """How many requests are being held right now."""
        with self._cond:
            return self._hanging

    # ---- what happened --------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request answered so far, in order (held requests appear once answered)."""
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method (or pseudo method ``response_url`` / ``upload_url``)."""
        with self._cond:
            return [c for c in self._calls if c.method == method]

    def clear_calls(self) -> None:
        """Forget recorded calls (workspace state stays)."""
        with self._cond:
            self._calls.clear()

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel in posting order (thread replies: see ``thread``)."""
        with self._cond:
            return [copy.deepcopy(m) for m in self._messages.get(channel, []) if m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies in the thread rooted at ``ts`` (the parent itself is not included)."""
        with self._cond:
            return [copy.deepcopy(m) for m in self._messages.get(channel, []) if m.thread_ts == ts]

    def message(self, channel: str, ts: str) -> Message:
        """One message (top-level or reply) by ts; KeyError when the fake has none."""
        with self._cond:
            found = self._find_message(channel, ts)
            if found is None:
                raise KeyError(f"no message {ts} in {channel}")
            return copy.deepcopy(found)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages, optionally filtered by channel and/or user."""
        with self._cond:
            return [
                copy.deepcopy(e)
                for e in self._ephemerals
                if (channel is None or e.channel == channel) and (user is None or e.user == user)
            ]

    def views(self) -> list[ViewRecord]:
        """Modals opened via views.open, in order, with their latest content."""
        with self._cond:
            return [copy.deepcopy(v) for v in self._views.values()]

    def view(self, view_id: str) -> ViewRecord:
        with self._cond:
            return copy.deepcopy(self._views[view_id])

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab last published for a user, or None."""
        with self._cond:
            versions = self._home.get(user_id)
            return copy.deepcopy(versions[-1]) if versions else None

    def home_views(self, user_id: str) -> list[dict[str, Any]]:
        """Every Home tab version published for a user."""
        with self._cond:
            return copy.deepcopy(self._home.get(user_id, []))

    def files(self) -> list[UploadedFile]:
        """Files started through files.getUploadURLExternal, completed or not."""
        with self._cond:
            return [copy.deepcopy(f) for f in self._files.values()]

    def responses(self, name: str = "default") -> list[ResponsePost]:
        """Accepted posts to a response_url (rejected ones are in ``calls_to("response_url")``)."""
        with self._cond:
            record = self._response_urls.get(name)
            return list(record.posts) if record else []

    # ---- waiting --------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, what: str = "") -> T:
        """Block until ``predicate()`` is truthy (re-checked on every state change); TimeoutError otherwise.

        The predicate runs under the fake's lock, so it may call ``messages()``, ``calls_to()``...
        """
        with self._cond:
            result = self._cond.wait_for(predicate, timeout=timeout)
            if not result:
                seen = ", ".join(f"{c.method}->{c.status}:{c.error or 'ok'}" for c in self._calls[-20:])
                label = f" ({what})" if what else ""
                raise TimeoutError(
                    f"SlackFake: condition{label} not met within {timeout}s; last calls: [{seen}]"
                )
            return result

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until ``method`` has been answered ``count`` times; returns all its calls."""
        self.wait_for(lambda: len(self.calls_to(method)) >= count, timeout, f"{count} x {method}")
        return self.calls_to(method)

    def wait_for_responses(
        self, name: str = "default", count: int = 1, timeout: float = 5.0
    ) -> list[ResponsePost]:
        """Wait until response_url ``name`` has accepted ``count`` posts."""
        self.wait_for(lambda: len(self.responses(name)) >= count, timeout, f"{count} posts to {name}")
        return self.responses(name)

    def wait_for_hanging(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` requests are being held by a hang switch or outage."""
        self.wait_for(lambda: self._hanging >= count, timeout, f"{count} hanging requests")

    # ---- request handling (server threads) ------------------------------------------------------

    def _add_rule(self, rule: _Rule) -> None:
        if rule.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._cond:
            self._rules.append(rule)

    def _take_rule(self, method: str) -> _Rule | None:
        with self._cond:
            if self._outage is not None:
                return self._outage
            for rule in self._rules:
                if rule.matches(method):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
            return None

    def _hold(self, seconds: float | None) -> None:
        with self._cond:
            generation = self._release_gen
            self._hanging += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(lambda: self._release_gen != generation or self._closing, timeout=seconds)
            finally:
                self._hanging -= 1
                self._cond.notify_all()

    def _dispatch(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Route one request, apply failure switches, record it; called from server threads."""
        split = urllib.parse.urlsplit(path)
        route: Callable[[], _Reply]
        token: str | None = None
        parse_error: _ApiError | None = None
        if split.path.startswith("/api/"):
            method = split.path[len("/api/") :]
            args, token, parse_error = _parse_api_request(headers, split.query, body)

            def route() -> _Reply:
                return self._api(method, args, token, parse_error)

        elif split.path.startswith("/response/"):
            method = RESPONSE_URL_METHOD
            name = urllib.parse.unquote(split.path[len("/response/") :])
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            args = parsed if isinstance(parsed, dict) else {}

            def route() -> _Reply:
                return self._response_post(name, parsed)

        elif split.path.startswith("/upload/v1/"):
            method = UPLOAD_METHOD
            file_id = split.path[len("/upload/v1/") :]
            args = {"file_id": file_id, "length": len(body)}

            def route() -> _Reply:
                return self._upload(file_id, body)

        else:
            return _Reply(404, {"ok": False, "error": "not_found"}).encode()

        with self._cond:
            self._active += 1
        try:
            rule = self._take_rule(method)
            if rule is not None and rule.kind == "hang":
                self._hold(rule.seconds)
                rule = None
            with self._cond:
                if self._closing:
                    reply = _Reply(503, {"ok": False, "error": "service_unavailable"})
                elif rule is not None:
                    reply = _rule_reply(rule)
                else:
                    reply = route()
                status, reply_headers, payload = reply.encode()
                self._calls.append(
                    Call(
                        method=method,
                        args=args,
                        headers=headers,
                        time=time.time(),
                        status=status,
                        response=reply.body if isinstance(reply.body, dict) else None,
                        response_headers=reply_headers,
                        token=token,
                        raw_body=body,
                    )
                )
                self._cond.notify_all()
                return status, reply_headers, payload
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _api(
        self, method: str, args: dict[str, Any], token: str | None, parse_error: _ApiError | None
    ) -> _Reply:
        try:
            if method not in self._methods and method != "auth.test":
                raise _ApiError("unknown_method")
            if parse_error is not None:
                raise parse_error
            if not token:
                raise _ApiError("not_authed")
            if token == self.bot_token:
                kind = "bot"
            elif self.app_token is not None and token == self.app_token:
                kind = "app"
            else:
                raise _ApiError("invalid_auth")
            if method not in _ANY_TOKEN_METHODS:
                needed = "app" if method in _APP_TOKEN_METHODS else "bot"
                if kind != needed:
                    raise _ApiError("not_allowed_token_type")
            data = self._auth_test(kind) if method == "auth.test" else self._methods[method](args)
        except _ApiError as exc:
            return _Reply(200, exc.body())
        except Exception as exc:
            # A bug in the fake (or input it did not foresee) must fail loudly, not as a dropped
            # connection that a retry handler would paper over.
            return _Reply(500, {"ok": False, "error": "fake_bug", "detail": f"{type(exc).__name__}: {exc}"})
        return _Reply(200, {"ok": True, **data})

    # ---- helpers on state (called under the lock) -----------------------------------------------

    def _next_ts(self) -> str:
        if self._ts_clock is None:
            micros = _FIRST_TS_MICROS + next(self._ts_counter) * 100
        else:
            micros = max(int(self._ts_clock() * 1_000_000), self._last_ts_micros + 100)
            self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _resolve_channel(self, channel: Any) -> str:
        """Channel id, ``#name``, or a user id (→ the bot's DM with that user), as Slack accepts."""
        if not isinstance(channel, str):
            raise _ApiError("channel_not_found")
        if channel in self._channels:
            return channel
        if channel.startswith("#"):
            for cid, info in self._channels.items():
                if info.get("name") == channel[1:]:
                    return cid
        if channel in self._users:
            dm_id = "D" + channel[1:]
            if dm_id not in self._channels:
                self._channels[dm_id] = _channel_info(
                    dm_id, {"name": channel, "is_im": True, "user": channel}
                )
            return dm_id
        raise _ApiError("channel_not_found")

    def _postable_channel(self, channel: Any) -> str:
        cid = self._resolve_channel(channel)
        if self._channels[cid].get("is_archived"):
            raise _ApiError("is_archived")
        return cid

    def _find_message(self, channel: str, ts: str) -> Message | None:
        for msg in self._messages.get(channel, []):
            if msg.ts == ts:
                return msg
        return None

    def _thread_root(self, channel: str, thread_ts: Any) -> str | None:
        """Resolve thread_ts to the root ts (a reply's ts means its parent's thread).

        Stricter than Slack, which accepts an unknown thread_ts and strands the reply where
        nobody sees it: here that is ``thread_not_found``, so tests catch the lost reply.
        """
        if thread_ts in (None, ""):
            return None
        parent = self._find_message(channel, str(thread_ts))
        if parent is None:
            raise _ApiError("thread_not_found")
        return parent.thread_ts or parent.ts

    def _store_message(self, msg: Message) -> Message:
        self._messages.setdefault(msg.channel, []).append(msg)
        return msg

    # ---- Web API methods (called under the lock) ------------------------------------------------

    def _auth_test(self, kind: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "team_id": TEAM_ID,
            "is_enterprise_install": False,
        }
        if kind == "bot":
            data.update({"user": BOT_NAME, "user_id": BOT_USER_ID, "bot_id": BOT_ID})
        else:
            data.update({"app_id": APP_ID})
        return data

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.socket_mode_url}

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "channel")
        channel = self._postable_channel(args["channel"])
        text, blocks, attachments = _message_content(args)
        thread_ts = self._thread_root(channel, args.get("thread_ts"))
        msg = self._store_message(
            Message(
                channel=channel,
                ts=self._next_ts(),
                text=text,
                blocks=blocks,
                attachments=attachments,
                thread_ts=thread_ts,
                metadata=args.get("metadata") if isinstance(args.get("metadata"), dict) else None,
                reply_broadcast=thread_ts is not None and _flag(args.get("reply_broadcast")),
            )
        )
        return {"channel": channel, "ts": msg.ts, "message": msg.to_slack()}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "channel", "user")
        channel = self._postable_channel(args["channel"])
        user = self._users.get(args["user"])
        if user is None or user.get("deleted") or user.get("is_bot"):
            raise _ApiError("user_not_in_channel")
        text, blocks, _attachments = _message_content(args)
        thread_ts = args.get("thread_ts") or None
        ephemeral = Ephemeral(
            channel=channel,
            user=args["user"],
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
        )
        self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        """Replace text/blocks/attachments given; omitted ones are kept, as on Slack (``[]`` clears)."""
        _require(args, "channel", "ts")
        channel = self._resolve_channel(args["channel"])
        msg = self._find_message(channel, str(args["ts"]))
        if msg is None:
            raise _ApiError("message_not_found")
        if not any(key in args for key in ("text", "blocks", "attachments")):
            raise _ApiError("no_text")
        merged = {
            "text": args.get("text", msg.text),
            "blocks": args.get("blocks", msg.blocks),
            "attachments": args.get("attachments", msg.attachments),
        }
        text, blocks, attachments = _message_content(merged)
        before = msg.to_slack()
        before.pop("edited", None)
        msg.history.append(before)
        msg.text, msg.blocks, msg.attachments = text, blocks, attachments
        if isinstance(args.get("metadata"), dict):
            msg.metadata = args["metadata"]
        return {"channel": channel, "ts": msg.ts, "text": msg.text, "message": msg.to_slack()}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "channel", "message_ts")
        channel = self._resolve_channel(args["channel"])
        msg = self._find_message(channel, str(args["message_ts"]))
        if msg is None:
            raise _ApiError("message_not_found")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{msg.ts.replace('.', '')}"
        if msg.thread_ts:
            link += f"?thread_ts={msg.thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "channel")
        return {"channel": copy.deepcopy(self._channels[self._resolve_channel(args["channel"])])}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """Channels of the asked ``types`` (default ``public_channel``) by id, paged by ``cursor``
        (``limit`` default 100, at most 1000); archived ones unless ``exclude_archived``. A private
        channel needs ``groups:read`` on Slack, so asking for one here is ``missing_scope``."""
        types = set(str(args.get("types") or "public_channel").split(","))
        if types - {"public_channel"}:
            raise _ApiError("missing_scope", needed="groups:read")
        raw_limit = args.get("limit")
        limit = 100 if raw_limit in (None, "") else int(raw_limit)
        if limit < 1:
            raise _ApiError("invalid_limit")
        limit = min(limit, 1000)
        listed = sorted(
            cid for cid, info in self._channels.items()
            if info.get("is_channel") and not info.get("is_private")
            and not (_flag(args.get("exclude_archived")) and info.get("is_archived"))
        )
        start = 0
        if args.get("cursor"):
            try:
                start = int(base64.urlsafe_b64decode(str(args["cursor"]).encode("ascii")).decode().removeprefix("at:"))
            except (ValueError, UnicodeError):
                raise _ApiError("invalid_cursor") from None
        page = listed[start:start + limit]
        out: dict[str, Any] = {"channels": [copy.deepcopy(self._channels[c]) for c in page]}
        following = start + limit
        out["response_metadata"] = {
            "next_cursor": base64.urlsafe_b64encode(f"at:{following}".encode()).decode() if following < len(listed)
            else ""
        }
        return out

    def _readable_channel(self, channel: Any) -> str:
        """History methods take a conversation *id* only (no ``#name``, no user id), and need membership."""
        if not isinstance(channel, str) or channel not in self._channels:
            raise _ApiError("channel_not_found")
        if not self._channels[channel].get("is_member", True):
            raise _ApiError("not_in_channel")
        return channel

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's top-level messages, newest first (thread replies only when broadcast), as on Slack.

        Honours ``oldest``/``latest`` (exclusive unless ``inclusive``), ``limit`` (default 100, at
        most 999) and ``cursor``.  Message ``metadata`` is returned only with
        ``include_all_metadata``, as on Slack, so a caller that forgets to ask cannot find it.
        """
        _require(args, "channel")
        channel = self._readable_channel(args["channel"])
        window = _TimeWindow.from_args(args)
        candidates = [
            m for m in self._messages.get(channel, []) if m.thread_ts is None or m.reply_broadcast
        ]
        newest_first = sorted(candidates, key=lambda m: _ts_key(m.ts), reverse=True)
        before = _decode_cursor(args.get("cursor"))
        page = [m for m in newest_first if window.contains(m.ts) and (before is None or _ts_key(m.ts) < before)]
        limit = _page_limit(args.get("limit"))
        shown, more = page[:limit], len(page) > limit
        out: dict[str, Any] = {
            "messages": [self._history_entry(m, _flag(args.get("include_all_metadata"))) for m in shown],
            "has_more": more,
            "pin_count": 0,
        }
        if more:
            out["response_metadata"] = {"next_cursor": _encode_cursor(shown[-1].ts)}
        return out

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread, oldest first: the parent, then its replies (``ts`` may name any message in it).

        ``oldest``/``latest``/``inclusive``/``limit``/``cursor`` and ``include_all_metadata`` work as in
        ``conversations.history``.  The parent leads the first page whatever the time window says
        (Slack returns it first); the window filters the replies.  An unknown ``ts`` is
        ``thread_not_found``.
        """
        _require(args, "channel", "ts")
        channel = self._readable_channel(args["channel"])
        found = self._find_message(channel, str(args["ts"]))
        if found is None:
            raise _ApiError("thread_not_found")
        root_ts = found.thread_ts or found.ts
        root = self._find_message(channel, root_ts)
        window = _TimeWindow.from_args(args)
        after = _decode_cursor(args.get("cursor"))
        replies = sorted(
            (m for m in self._messages.get(channel, []) if m.thread_ts == root_ts),
            key=lambda m: _ts_key(m.ts),
        )
        page = [m for m in replies if window.contains(m.ts) and (after is None or _ts_key(m.ts) > after)]
        if after is None and root is not None:
            page.insert(0, root)
        limit = _page_limit(args.get("limit"))
        shown, more = page[:limit], len(page) > limit
        metadata = _flag(args.get("include_all_metadata"))
        out: dict[str, Any] = {"messages": [self._history_entry(m, metadata) for m in shown], "has_more": more}
        if more:
            out["response_metadata"] = {"next_cursor": _encode_cursor(shown[-1].ts)}
        return out

    def _history_entry(self, msg: Message, include_metadata: bool) -> dict[str, Any]:
        entry = msg.to_slack()
        if not include_metadata:
            entry.pop("metadata", None)
        if msg.thread_ts is None:
            replies = [m for m in self._messages.get(msg.channel, []) if m.thread_ts == msg.ts]
            if replies:
                entry.update({"thread_ts": msg.ts, "reply_count": len(replies), "latest_reply": replies[-1].ts})
        return entry

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "user")
        user = self._users.get(args["user"])
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        groups = []
        for group in self._usergroups.values():
            if group["date_delete"] and not _flag(args.get("include_disabled")):
                continue
            out = copy.deepcopy(group)
            if not _flag(args.get("include_users")):
                out.pop("users")
            if not _flag(args.get("include_count")):
                out.pop("user_count")
            groups.append(out)
        return {"usergroups": groups}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "usergroup")
        group = self._usergroups.get(args["usergroup"])
        if group is None:
            raise _ApiError("no_such_subteam")
        return {"users": list(group["users"])}

    def _use_trigger(self, trigger_id: str) -> _Trigger:
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger.used or trigger.expired or self._clock() - trigger.minted_at > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validates the view before spending the trigger, so a bad view leaves the trigger usable."""
        trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger_id:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        _require(args, "view")
        view = _check_view(args["view"], allowed_types=("modal",))
        external_id = view.get("external_id")
        if external_id and any(v.external_id == external_id for v in self._views.values()):
            raise _ApiError("duplicate_external_id")
        trigger = self._use_trigger(str(trigger_id))
        view_id = f"V{next(self._ids):07d}"
        record = ViewRecord(
            id=view_id,
            user_id=trigger.user_id,
            trigger_id=str(trigger_id),
            view=view,
            hash=self._new_hash(),
            external_id=external_id or None,
        )
        self._views[view_id] = record
        return {"view": self._view_payload(record)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "view")
        record = None
        if args.get("view_id"):
            record = self._views.get(args["view_id"])
        elif args.get("external_id"):
            record = next((v for v in self._views.values() if v.external_id == args["external_id"]), None)
        else:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: view_id or external_id"])
        if record is None:
            raise _ApiError("not_found")
        view = _check_view(args["view"], allowed_types=("modal",))
        if args.get("hash") and args["hash"] != record.hash:
            raise _ApiError("hash_conflict")
        record.history.append(record.view)
        record.view = view
        record.external_id = view.get("external_id") or record.external_id
        record.hash = self._new_hash()
        return {"view": self._view_payload(record)}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "user_id", "view")
        if not self.home_tab_enabled:
            raise _ApiError("not_enabled")
        if args["user_id"] not in self._users:
            raise _ApiError("user_not_found")
        view = _check_view(args["view"], allowed_types=("home",))
        versions = self._home.setdefault(args["user_id"], [])
        if args.get("hash") and versions and args["hash"] != versions[-1]["hash"]:
            raise _ApiError("hash_conflict")
        published = {
            **copy.deepcopy(view),
            "id": f"V{next(self._ids):07d}",
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "hash": self._new_hash(),
            "state": {"values": {}},
        }
        versions.append(published)
        return {"view": copy.deepcopy(published)}

    def _new_hash(self) -> str:
        return f"{int(time.time())}.{secrets.token_hex(6)}"

    def _view_payload(self, record: ViewRecord) -> dict[str, Any]:
        return {
            **copy.deepcopy(record.view),
            "id": record.id,
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "hash": record.hash,
            "external_id": record.external_id or "",
            "root_view_id": record.id,
            "previous_view_id": None,
            "state": {"values": {}},
        }

    def _files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "filename", "length")
        try:
            length = int(args["length"])
        except (TypeError, ValueError):
            length = 0
        if length < 1:
            raise _ApiError("invalid_arguments", ["[ERROR] length must be a positive integer"])
        file_id = f"F{next(self._ids):07d}"
        self._files[file_id] = UploadedFile(
            id=file_id,
            filename=str(args["filename"]),
            length=length,
            alt_txt=args.get("alt_txt"),
            snippet_type=args.get("snippet_type"),
        )
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _upload(self, file_id: str, body: bytes) -> _Reply:
        """Step 2 of the upload: Slack's upload URL takes the raw bytes and answers in plain text."""
        upload = self._files.get(file_id)
        if upload is None or upload.completed:
            return _Reply(404, "Not Found")
        if len(body) != upload.length:
            return _Reply(400, f"length mismatch: announced {upload.length}, received {len(body)}")
        upload.content = body
        return _Reply(200, f"OK - {len(body)}")

    def _files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        _require(args, "files")
        items = args["files"]
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, dict) and i.get("id") for i in items)
        ):
            raise _ApiError("invalid_arguments", ["[ERROR] files must be a JSON array of {id, title}"])
        targets: list[str] = []
        if args.get("channel_id"):
            targets.append(args["channel_id"])
        if args.get("channels"):
            targets.extend(c for c in str(args["channels"]).split(",") if c)
        channels = [self._postable_channel(c) for c in targets]
        if args.get("thread_ts") and len(channels) != 1:
            raise _ApiError("invalid_arguments", ["[ERROR] thread_ts needs exactly one channel"])
        uploads = []
        for item in items:
            upload = self._files.get(item["id"])
            # Slack's exact code for "announced but bytes never arrived" is undocumented; be strict.
            if upload is None or upload.completed or upload.content is None:
                raise _ApiError("file_not_found", [f"[ERROR] file {item['id']} was not uploaded"])
            uploads.append((upload, item))
        roots = {c: self._thread_root(c, args.get("thread_ts")) for c in channels}
        for upload, item in uploads:
            upload.completed = True
            upload.title = item.get("title") or upload.filename
            upload.channels = channels
            upload.initial_comment = args.get("initial_comment")
            upload.thread_ts = args.get("thread_ts") or None
        file_dicts = [self._file_payload(u) for u, _ in uploads]
        for channel in channels:
            self._store_message(
                Message(
                    channel=channel,
                    ts=self._next_ts(),
                    text=args.get("initial_comment") or "",
                    thread_ts=roots[channel],
                    files=copy.deepcopy(file_dicts),
                )
            )
        return {"files": file_dicts}

    def _file_payload(self, upload: UploadedFile) -> dict[str, Any]:
        mimetype = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
        return {
            "id": upload.id,
            "name": upload.filename,
            "title": upload.title,
            "mimetype": mimetype,
            "size": upload.length,
            "user": BOT_USER_ID,
            "channels": list(upload.channels),
            "url_private": f"{self.base_url}/files/{upload.id}/{urllib.parse.quote(upload.filename)}",
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{upload.id}/{upload.filename}",
        }

    # ---- response_url ---------------------------------------------------------------------------

    def _response_post(self, name: str, body: Any) -> _Reply:
        """Slack's response_url: JSON message, 5 posts in 30 minutes, 404 once used up or unknown."""
        record = self._response_urls.get(name)
        if record is None:
            return _Reply(404, {"ok": False, "error": "no_such_url"})
        if record.expired or self._clock() - record.created_at > RESPONSE_URL_TTL_SECONDS:
            return _Reply(404, {"ok": False, "error": "expired_url"})
        if len(record.posts) >= RESPONSE_URL_MAX_POSTS:
            return _Reply(404, {"ok": False, "error": "used_url"})
        if not isinstance(body, dict):
            return _Reply(400, {"ok": False, "error": "invalid_payload"})
        if body.get("response_type") not in (None, "ephemeral", "in_channel"):
            return _Reply(400, {"ok": False, "error": "invalid_response_type"})
        if not _flag(body.get("delete_original")):
            try:
                _message_content(body)
            except _ApiError as exc:
                return _Reply(400, exc.body())
        record.posts.append(ResponsePost(name=name, body=body, time=time.time()))
        return _Reply(200, {"ok": True})


@dataclass(frozen=True)
class _TimeWindow:
    """``oldest``/``latest``/``inclusive`` of the history methods, compared exactly (no float rounding)."""

    oldest: decimal.Decimal | None
    latest: decimal.Decimal | None
    inclusive: bool

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> _TimeWindow:
        return cls(
            oldest=_parse_ts(args.get("oldest"), "invalid_ts_oldest"),
            latest=_parse_ts(args.get("latest"), "invalid_ts_latest"),
            inclusive=_flag(args.get("inclusive")),
        )

    def contains(self, ts: str) -> bool:
        value = decimal.Decimal(ts)
        if self.oldest is not None and (value < self.oldest or (value == self.oldest and not self.inclusive)):
            return False
        return not (
            self.latest is not None and (value > self.latest or (value == self.latest and not self.inclusive))
        )


def _parse_ts(raw: Any, error: str) -> decimal.Decimal | None:
    if raw in (None, ""):
        return None
    try:
        value = decimal.Decimal(str(raw))
    except decimal.InvalidOperation:
        raise _ApiError(error) from None
    if not value.is_finite() or value < 0:
        raise _ApiError(error)
    return value


def _ts_key(ts: str) -> decimal.Decimal:
    return decimal.Decimal(ts)


def _page_limit(raw: Any) -> int:
    """Slack's history methods: default 100, at most 999 (larger values are clamped)."""
    if raw in (None, ""):
        return 100
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise _ApiError("invalid_limit") from None
    if value < 1:
        raise _ApiError("invalid_limit")
    return min(value, 999)


def _encode_cursor(ts: str) -> str:
    return base64.urlsafe_b64encode(f"ts:{ts}".encode()).decode("ascii")


def _decode_cursor(raw: Any) -> decimal.Decimal | None:
    """Cursors are opaque to callers; here they carry the ts of the last message handed out."""
    if raw in (None, ""):
        return None
    try:
        text = base64.urlsafe_b64decode(str(raw).encode("ascii")).decode("utf-8")
        if not text.startswith("ts:"):
            raise ValueError(text)
        return decimal.Decimal(text[3:])
    except (ValueError, UnicodeError, decimal.InvalidOperation):
        raise _ApiError("invalid_cursor") from None


def _rule_reply(rule: _Rule) -> _Reply:
    if rule.kind == "rate_limit":
        return _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(rule.retry_after)})
    if rule.kind == "error":
        return _Reply(200, {"ok": False, "error": rule.error, **rule.extra})
    return _Reply(rule.status, {"ok": False, "error": rule.error})


def _channel_info(channel_id: str, info: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": channel_id,
        "name": channel_id.lower(),
        "is_channel": channel_id.startswith("C"),
        "is_group": channel_id.startswith("G"),
        "is_im": channel_id.startswith("D"),
        "is_private": channel_id.startswith(("G", "D")),
        "is_archived": False,
        "is_member": True,
        "created": 1_700_000_000,
        "context_team_id": TEAM_ID,
    }
    out.update(info)
    out["id"] = channel_id
    return out


def _user_info(user_id: str, info: Mapping[str, Any]) -> dict[str, Any]:
    name = str(info.get("name", user_id.lower()))
    real_name = str(info.get("real_name", name.title()))
    out: dict[str, Any] = {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name,
        "real_name": real_name,
        "deleted": False,
        "is_bot": False,
        "is_admin": False,
        "tz": "Europe/London",
        "tz_offset": 0,
        "profile": {"display_name": name, "real_name": real_name, "email": f"{name}@example.com"},
    }
    profile = {**out["profile"], **info.get("profile", {})}
    out.update(info)
    out["profile"] = profile
    out["id"] = user_id
    return out


# --------------------------------------------------------------------------------------------------
# Inbound Slack traffic for tests of our own endpoints
# --------------------------------------------------------------------------------------------------

_UNROUTABLE_RESPONSE_URL = "http://127.0.0.1:9/response/unset"


def sign_request(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would add: ``v0=`` + hex HMAC-SHA256(secret, ``v0:{ts}:{body}``).

    Computed here, not with slack_sdk's verifier, so a bug shared by both cannot hide itself.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode("ascii") + b":" + body
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": f"v0={digest}", "X-Slack-Request-Timestamp": str(ts)}


def _random_trigger_id() -> str:
    """A well-formed trigger_id no fake knows about (views.open answers invalid_trigger_id)."""
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


def slash_command_body(
    text: str,
    *,
    command: str = "/model",
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0GENERAL",
    channel_name: str = "general",
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    response_url: str = _UNROUTABLE_RESPONSE_URL,
    trigger_id: str | None = None,
    api_app_id: str = APP_ID,
) -> bytes:
    """A slash-command POST body, form-encoded with the fields Slack sends."""
    fields = {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _random_trigger_id(),
    }
    return urllib.parse.urlencode(fields).encode("utf-8")


def _payload_body(payload: Mapping[str, Any]) -> bytes:
    """Interactivity bodies are form-encoded with one field, ``payload``, holding JSON."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode("utf-8")


def _user_block(user_id: str, user_name: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def block_actions_body(
    action_id: str,
    value: str,
    *,
    block_id: str = "actions",
    action_type: str = "button",
    action_text: str = "Click",
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0GENERAL",
    channel_name: str = "general",
    message_ts: str = "1700000000.000100",
    message: Mapping[str, Any] | None = None,
    is_ephemeral: bool = False,
    response_url: str = _UNROUTABLE_RESPONSE_URL,
    trigger_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    state_values: Mapping[str, Any] | None = None,
    view: Mapping[str, Any] | None = None,
) -> bytes:
    """A ``block_actions`` body for a click (button) or choice (``action_type="static_select"``).

    With ``view`` the action comes from a modal/Home tab: container is the view and there is no
    channel, message or response_url, as on Slack.
    """
    now = f"{time.time():.6f}"
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "action_ts": now,
    }
    option_text = {"type": "plain_text", "text": action_text, "emoji": True}
    if action_type in ("static_select", "external_select", "overflow", "radio_buttons"):
        action["selected_option"] = {"text": option_text, "value": value}
    else:
        action.update({"text": option_text, "value": value})
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user_block(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": "legacy-verification-token",
        "trigger_id": trigger_id or _random_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "state": {"values": dict(state_values or {})},
        "actions": [action],
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.get("id", "V0VIEW")}
        payload["view"] = dict(view)
    else:
        payload["container"] = {
            "type": "ephemeral" if is_ephemeral else "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        payload["channel"] = {"id": channel_id, "name": channel_name}
        payload["message"] = (
            dict(message)
            if message is not None
            else {
                "type": "message",
                "ts": message_ts,
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "text": "",
                "blocks": [],
            }
        )
        payload["response_url"] = response_url
    return _payload_body(payload)


def view_submission_body(
    callback_id: str,
    values: Mapping[str, Any],
    *,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    view_id: str = "V0VIEW",
    private_metadata: str = "",
    external_id: str = "",
    title: str = "Modal",
    blocks: list[dict[str, Any]] | None = None,
    view_hash: str = "1700000000.abcdef",
    trigger_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    response_urls: list[dict[str, Any]] | None = None,
) -> bytes:
    """A ``view_submission`` body; ``values`` is Slack's ``state.values`` shape.

    A bare string leaf (``{"reason": {"input": "why"}}``) is wrapped as a plain_text_input value,
    because that is what our modals mostly hold.
    """
    state: dict[str, dict[str, Any]] = {}
    for block, actions in values.items():
        state[block] = {
            action: ({"type": "plain_text_input", "value": v} if isinstance(v, str) else dict(v))
            for action, v in actions.items()
        }
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user_block(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": "legacy-verification-token",
        "trigger_id": trigger_id or _random_trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "external_id": external_id,
            "title": {"type": "plain_text", "text": title},
            "blocks": blocks or [],
            "state": {"values": state},
            "hash": view_hash,
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": api_app_id,
            "bot_id": BOT_ID,
        },
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _payload_body(payload)


def event_body(
    event: Mapping[str, Any],
    *,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    event_id: str | None = None,
    event_time: int | None = None,
) -> bytes:
    """An Events API ``event_callback`` envelope around ``event``, as JSON bytes."""
    now = int(time.time())
    inner = dict(event)
    inner.setdefault("event_ts", f"{now}.000100")
    envelope = {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": inner,
        "type": "event_callback",
        "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
        "event_time": now if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope).encode("utf-8")
