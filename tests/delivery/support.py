"""Shared pieces for the delivery tests: a clock, a webhook receiver, outbox helpers, a drain loop.

Everything real: the strict fake Slack over HTTP, a local HTTP receiver for webhooks, real
databases. Time is a `Clock` the test moves; the drain loop advances it to the next due row
instead of sleeping, so a 1-message-per-second channel drains in milliseconds.

Why the clock starts in November 2023: the fake numbers its messages from ts 1700000000
(2023-11-14T22:13:20Z), while Slack stamps messages with wall-clock time. A row is always
written before its message is posted, so tests keep the clock just before the fake's first ts;
the worker's history lookup (messages newer than the row) then sees what it would see on Slack.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from bot.delivery.worker import DeliveryWorker
from bot.domain.entities import as_utc
from bot.domain.policy import EnvironmentPolicy, Members, Policy, Webhook
from bot.slack.client import InstrumentedWebClient, make_web_client
from storage.db import Database
from storage.models import OutboxMessage
from storage.queries import outbox
from tests.slack_fake import SlackFake

T = TypeVar("T")
START = datetime.fromtimestamp(1_699_999_000, UTC)
HOOK_SECRET_ENV = "MODELBOT_TEST_HOOK_SECRET"
HOOK_SECRET = "whsec-test-0123456789abcdef"
APPROVALS = "C0APPROVALS"
# users the domain mentions; the fake refuses ephemerals to users it does not know
USERS = ("U0DEPLOY", "U0APPR1", "U0APPR2", "U0APPR3")


class Clock:
    """The one notion of now for the domain and the worker in a test."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)

    def at_least(self, moment: datetime) -> None:
        with self._lock:
            self.now = max(self.now, as_utc(moment))


def slack_fake(**options: Any) -> SlackFake:
    channels = {"C0GENERAL": {"name": "general"}, APPROVALS: {"name": "approvals"},
                "C0STAGING": {"name": "staging"}, "C0PROD": {"name": "production"},
                "C0ONE": {"name": "one"}, "C0TWO": {"name": "two"}, "C0THREE": {"name": "three"},
                "C0FOUR": {"name": "four"}}
    fake = SlackFake(channels=channels, **options)
    for user in USERS:
        fake.add_user(user)
    return fake


def web_client(slack: SlackFake, timeout: int = 5) -> InstrumentedWebClient:
    """The worker's client: no retry handlers (the worker schedules retries itself)."""
    return make_web_client(slack.bot_token, slack.api_url, retries=0, timeout=timeout)


def worker(db: Database, slack: SlackFake, clock: Clock, **options: Any) -> DeliveryWorker:
    options.setdefault("env", {HOOK_SECRET_ENV: HOOK_SECRET})
    return DeliveryWorker(db, web_client(slack), clock=clock, **options)


def policy(*, approvals: int = 1, approvers: tuple[str, ...] = ("U0APPR1", "U0APPR2", "U0APPR3"),
           approval_channel: str | None = APPROVALS, hook_url: str | None = None,
           staging_channel: str | None = None) -> Policy:
    webhooks = (Webhook(url=hook_url, secret_env=HOOK_SECRET_ENV),) if hook_url else ()
    return Policy(
        environments={
            "staging": EnvironmentPolicy("staging", approval_channel=staging_channel),
            "production": EnvironmentPolicy("production", approvals=approvals, approvers=Members(approvers),
                                            approval_channel=approval_channel),
        },
        webhooks=webhooks,
    )


def enqueue(db: Database, clock: Clock, *, topic: str = "model:1", kind: str = "post", template: str = "test_note",
            data: dict[str, Any] | None = None, channel: str | None = "C0GENERAL", user_id: str | None = None,
            message_key: str | None = None) -> int:
    """One outbox row as the domain would write it. `test_note` has no renderer: the readable fallback."""
    with db.write() as session:
        row = outbox.enqueue(session, now=clock(), topic=topic, kind=kind, template=template,
                             data=data if data is not None else {"note": "hello"}, channel=channel, user_id=user_id,
                             message_key=message_key)
        session.flush()
        assert row.id is not None
        return row.id


def row(db: Database, outbox_id: int) -> OutboxMessage:
    with db.read() as session:
        found = session.get(OutboxMessage, outbox_id)
        assert found is not None
        return found


def rows(db: Database) -> list[OutboxMessage]:
    with db.read() as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def unfinished(db: Database) -> int:
    with db.read() as session:
        return session.exec(
            select(sa.func.count()).select_from(OutboxMessage)
            .where(col(OutboxMessage.status).in_(("pending", "sending")))
        ).one()


def next_due(db: Database) -> datetime | None:
    """When the earliest destination head (the only rows a worker may claim) becomes due: its next
    attempt (or the end of its lease), and not before its circuit's pause ends when that is open."""
    with db.read() as session:
        waiting = session.exec(
            select(OutboxMessage).where(col(OutboxMessage.status).in_(("pending", "sending")))
            .order_by(col(OutboxMessage.id))
        ).all()
        circuits = outbox.circuits(session, {r.circuit for r in waiting if r.circuit})
    heads: dict[str, datetime] = {}
    for r in waiting:
        if r.destination not in heads:
            moment = as_utc(r.lease_until if r.status == "sending" else r.next_attempt_at)  # type: ignore[arg-type]
            circuit = circuits.get(r.circuit or "")
            if circuit is not None and circuit.state == "open" and circuit.paused_until is not None:
                moment = max(moment, as_utc(circuit.paused_until))
            heads[r.destination] = moment
    return min(heads.values()) if heads else None


def drain(db: Database, work: DeliveryWorker, clock: Clock, *, max_rounds: int = 5000) -> int:
    """Run rounds until nothing is pending; when nothing is due, jump the clock to the next due row."""
    rounds = 0
    while unfinished(db):
        rounds += 1
        assert rounds <= max_rounds, f"outbox not drained after {max_rounds} rounds"
        if work.run_once() == 0:
            due = next_due(db)
            if due is not None:
                clock.at_least(due)
    return rounds


def outbox_ids_in(slack: SlackFake, *channels: str) -> list[int]:
    """Outbox ids of the bot's messages (top level and thread replies), in posting order."""
    ids: list[tuple[str, int]] = []
    for channel in channels:
        for message in slack.messages(channel) + [r for m in slack.messages(channel)
                                                  for r in slack.thread(channel, m.ts)]:
            payload = (message.metadata or {}).get("event_payload") or {}
            if (message.metadata or {}).get("event_type") == "modelbot_outbox":
                ids.append((message.ts, int(payload["outbox_id"])))
    return [i for _, i in sorted(ids, key=lambda pair: float(pair[0]))]


def eventually(predicate: Callable[[], T], *, timeout: float, what: str) -> T:
    """For state another *process* writes (no event to wait on): re-check until true or time is up."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        pause.wait(0.05)


# ---- webhook receiver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def id(self) -> str:
        return self.headers["x-modelbot-delivery"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class WebhookReceiver:
    """A real HTTP endpoint that records every POST and answers from a queue (then 200)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.deliveries: list[Delivery] = []
        self.refused = 0
        self._answers: list[_Answer] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = receiver._record({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: `deliveries` is the record."""

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # parallel deliveries must not meet the default backlog of 5

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/modelbot"

    def answer(self, status: int, *, count: int = 1, **headers: str) -> None:
        with self._cond:
            self._answers.extend(_Answer(status, dict(headers)) for _ in range(count))

    def _record(self, headers: dict[str, str], body: bytes) -> _Answer:
        with self._cond:
            answer = self._answers.pop(0) if self._answers else _Answer(200)
            if 200 <= answer.status < 300:
                self.deliveries.append(Delivery(headers, body, time.time()))
            else:
                self.refused += 1
            self._cond.notify_all()
            return answer

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        with self._cond:
            result = self._cond.wait_for(predicate, timeout=timeout)
            if not result:
                raise TimeoutError(f"webhook receiver: condition not met within {timeout}s "
                                   f"({len(self.deliveries)} deliveries)")
            return result

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class DeadReceiver:
    """Webhook receivers that are down: `refused_url` (nothing listens on the port) and
    `hanging_url(path)` (a server that accepts the connection and never answers)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        closed = socket.create_server(("127.0.0.1", 0))
        self.refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/hooks/refused"
        closed.close()

    def hanging_url(self, path: str = "hooks/hanging") -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/{path}"

    @property
    def held(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)  # read nothing, answer nothing

    def __enter__(self) -> DeadReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Closing the held connections ends the sends that hang on them at once."""
        self._stopped.set()
        self._listener.close()
        for conn in self._held:
            conn.close()


class Deliverer:
    """`modelbot deliver` as operators run it, pointed at the fake and the test database;
    `env` adds variables (MODELBOT_OUTBOX_* timings, MODELBOT_CONFIG)."""

    def __init__(self, database_url: str, slack: SlackFake, workdir: Path, **env: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELBOT_", "SLACK_"))}
        self.env.update({
            "MODELBOT_DATABASE_URL": database_url, "SLACK_BOT_TOKEN": slack.bot_token,
            "MODELBOT_SLACK_API_URL": slack.api_url, HOOK_SECRET_ENV: HOOK_SECRET, **env,
        })
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"deliver-{len(self.processes)}.log", "wb")  # noqa: SIM115 (the child owns it)
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "deliver"], env=self.env, cwd=self.workdir,
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.workdir.glob("deliver-*.log")))

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


# ---- fixtures: modules import clock_fixture etc.; tests ask for clock, slack, hooks ---------------


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[SlackFake]:
    with slack_fake() as fake:
        yield fake


@pytest.fixture(name="hooks")
def hooks_fixture() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver
