"""Shared fixtures for end-to-end Slack tests: the real web app on a free port, the fake Slack, signing.

Import the fixtures into a test module: `from tests.slack_support import bot_fixture, slack_fixture
# noqa: F401` gives it fixtures named `bot` and `slack` (the `_fixture` names keep ruff's F811 quiet).
Nothing here mocks modelbot: requests travel over real HTTP with real HMAC signatures into
uvicorn → FastAPI → Bolt → our listeners → the database (SQLite and PostgreSQL through the
`database_url` fixture), and replies travel over real HTTP to the fake's response_urls.
"""

from __future__ import annotations

import itertools
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.listener.listener_completion_handler import ListenerCompletionHandler

from bot.config.settings import Settings
from bot.domain.registry import NewVersion, Registry
from bot.listeners.app import build_app
from bot.services import Services, open_services
from bot.web.app import SLACK_EVENTS_PATH, create_web_app
from bot.web.server import ServerThread
from storage.queries import registry as queries
from tests.slack_fake import ResponsePost, SlackFake, sign_request

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the shape of Slack's docs example; not a real secret
MODEL_SECTION = re.compile(r"^\*([^*]+)\*  latest v\d+")


class CompletionTracker(ListenerCompletionHandler):
    """Counts listeners that have *finished* (reply sent, metrics counted), to wait on without sleeping.

    Wraps Bolt's completion hook, which its thread runner calls in a `finally` after our
    listener returns; our code is untouched.
    """

    def __init__(self, inner: ListenerCompletionHandler) -> None:
        self.inner = inner
        self.completed = 0
        self._cond = threading.Condition()

    def handle(self, request: BoltRequest, response: BoltResponse | None) -> None:
        try:
            self.inner.handle(request, response)
        finally:
            with self._cond:
                self.completed += 1
                self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.completed >= count, timeout):
                raise TimeoutError(f"only {self.completed} of {count} listeners finished within {timeout}s")


@dataclass
class RunningBot:
    """The HTTP-mode server under test plus everything a test needs to talk to it."""

    url: str
    slack: SlackFake
    services: Services
    app: App
    listeners: CompletionTracker
    signing_secret: str = SIGNING_SECRET
    http: requests.Session = field(default_factory=requests.Session)
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def registry(self) -> Registry:
        return self.services.registry

    def unique(self, prefix: str) -> str:
        """A fresh response_url name: each accepts only 5 posts, like Slack's."""
        return f"{prefix}-{next(self._names)}"

    def post(self, body: bytes, headers: Mapping[str, str] | None = None, *,
             content_type: str = "application/x-www-form-urlencoded") -> requests.Response:
        """POST exactly these bytes and headers (nothing added but the content type)."""
        return self.http.post(self.url + SLACK_EVENTS_PATH, data=body,
                              headers={"Content-Type": content_type, **(headers or {})}, timeout=10)

    def signed_post(self, body: bytes, *, timestamp: int | None = None, secret: str | None = None,
                    content_type: str = "application/x-www-form-urlencoded") -> requests.Response:
        headers = sign_request(secret or self.signing_secret, body, timestamp)
        return self.post(body, headers, content_type=content_type)

    def command(self, text: str, *, user_id: str = "U0ALICE", timeout: float = 10.0) -> ResponsePost:
        """Send `/model TEXT` signed, assert the 200 ack, and return the reply posted to its response_url."""
        name = self.unique("cmd")
        response = self.signed_post(self.slack.slash_command_body(text, response_name=name, user_id=user_id))
        assert response.status_code == 200, (response.status_code, response.text)
        return self.slack.wait_for_responses(name, 1, timeout)[0]

    def click(self, action_id: str, value: str, *, timeout: float = 10.0) -> ResponsePost:
        """Press a button (signed block_actions) and return the reply posted to its response_url."""
        name = self.unique("click")
        response = self.signed_post(self.slack.block_actions_body(action_id, value, response_name=name))
        assert response.status_code == 200, (response.status_code, response.text)
        return self.slack.wait_for_responses(name, 1, timeout)[0]

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url + path, timeout=10)

    def row_counts(self) -> dict[str, int]:
        with self.registry.reading() as session:
            return queries.row_counts(session)


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


def bot_settings(database_url: str, slack: SlackFake, **overrides: Any) -> Settings:
    """Settings as `Settings.from_env` would build them from MODELBOT_SLACK_API_URL & co."""
    env = {
        "MODELBOT_DATABASE_URL": database_url,
        "MODELBOT_SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "MODELBOT_DB_LOCK_TIMEOUT": "10",
    }
    if slack.app_token:
        env["SLACK_APP_TOKEN"] = slack.app_token
    env.update(overrides)
    return Settings.from_env(env)


@pytest.fixture(name="bot")
def bot_fixture(database_url: str, slack: SlackFake) -> Iterator[RunningBot]:
    """The real HTTP-mode web app on 127.0.0.1:<free port>, talking to the fake Slack."""
    services = open_services(bot_settings(database_url, slack))
    app = build_app(services, "http")
    tracker = CompletionTracker(app.listener_runner.listener_completion_handler)
    app.listener_runner.listener_completion_handler = tracker
    server = ServerThread(create_web_app(services, app)).start()
    running = RunningBot(url=server.url, slack=slack, services=services, app=app, listeners=tracker)
    try:
        yield running
    finally:
        running.http.close()
        server.stop()
        app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]
        services.close()


# ---- child processes (`modelbot serve`) ----------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def stderr_lines(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The child's stderr, line by line, through a queue a test can block on with a timeout."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_for_line(lines: queue.Queue[str | None], pattern: str, seen: list[str], timeout: float = 30) -> re.Match[str]:
    """Read the child's log until a line matches (event-driven: blocks on the pipe, never sleeps)."""
    regex = re.compile(pattern)
    while True:
        line = lines.get(timeout=timeout)
        if line is None:
            raise AssertionError("process exited before logging " + pattern + ":\n" + "".join(seen))
        seen.append(line)
        if match := regex.search(line):
            return match


# ---- data -------------------------------------------------------------------------------------

HOSTILE_TEXT = "<!channel> & <@U123>"


def seed_registry(registry: Registry) -> None:
    """A small realistic registry: churn has 6 versions, promotions and a rollback (for history)."""
    for v in range(1, 7):
        registry.register(NewVersion(
            model="churn", artifact_uri=f"s3://models/churn/{v}", actor="ci-bot",
            metrics={"auc": 0.80 + v / 100, "loss": 0.40 - v / 100, "latency_ms": 20 + v},
            params={"lr": str(0.01 * v), "depth": str(4 + v % 2)},
            tags={"team": "growth", "commit": f"{v:07x}"},
            run_id=f"run-{v}", source=f"git:{v:040x}",
        ))
    registry.promote("churn", "2", "staging", actor="alice", reason="looks good")
    registry.promote("churn", "2", "production", actor="alice")
    registry.promote("churn", "4", "production", actor="bob", reason="better auc")
    registry.rollback("churn", "production", actor="carol", reason="latency regression")
    registry.register(NewVersion(
        model="fraud", artifact_uri="s3://models/fraud/1", actor="ci-bot", metrics={"auc": 0.9},
        description=HOSTILE_TEXT,
    ))


def section_texts(blocks: list[dict[str, Any]] | None) -> list[str]:
    """Every mrkdwn/plain text in the blocks (sections, fields, contexts, headers)."""
    out: list[str] = []
    for block in blocks or []:
        for key in ("text",):
            if isinstance(block.get(key), dict):
                out.append(block[key]["text"])
        for f in block.get("fields") or []:
            out.append(f["text"])
        for el in block.get("elements") or []:
            if isinstance(el, dict) and isinstance(el.get("text"), str):
                out.append(el["text"])
    return out


def buttons(blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [el for b in blocks or [] if b.get("type") == "actions" for el in b["elements"]
            if el.get("type") == "button"]


def now() -> int:
    return int(time.time())
