"""Fault soak: nothing lost, nothing twice, while Slack misbehaves and processes die.

    python -m bench.soak [--minutes 20] [--kill-every 120] [--models 4]
                         [--database-url URL | --postgres] [--keep]

Why it exists: issue 11. modelbot promises that a state change and the messages it causes
commit together and are delivered exactly once to Slack (at least once, with a delivery id,
to webhooks), and that a decision is never lost or doubled. Tests check each fault alone for
seconds; this runs them all together for `--minutes` (20 by default). It is a soak, not a timed
test: it prints counts, and exits 1 when one of them is wrong.

What runs, all real processes and real HTTP:

* `modelbot serve --http` (Slack requests, the alert scheduler, a delivery worker) and
  `modelbot deliver` (a second delivery worker), configured through the environment like a
  deployment, with short outbox timings (2 s HTTP timeout, 10 s lease) so faults bite often.
* **Slack** is the strict fake (`tests/slack_fake.py`) in this process. It cycles through
  healthy (20 s), 429 with Retry-After: 2 (10 s), healthy, 500 (10 s), healthy, and hanging
  every request for 3 s (10 s) — longer than the workers' timeout, so posts land after the
  worker gave up on them and must be found by their metadata instead of posted again.
* **A webhook receiver** flaps: up (25 s), answering 503 (10 s), up, holding each delivery
  3 s before answering (10 s: the sender times out after the receiver processed it). It
  verifies signatures and de-duplicates by `X-Modelbot-Delivery`, as receivers should.
* **A killer** SIGKILLs one of the two processes every `--kill-every` seconds (serve and
  deliver in turn) and starts it again at once.
* **A driver** acts like a team: per model, in turn, promotes to staging (a slash command),
  requests production (a slash command) and approves it (a signed button click), rolls
  production back (the confirmation button `/model rollback` shows), and fires an alert or
  resolves the one it fired at the model's last turn (metric samples that cross a rule's
  threshold, evaluated by serve's scheduler every 10 s). Each decision carries
  a unique reason; the driver sends it until the database shows it, as a person would look
  before typing it again, and notes when an acknowledged decision never arrived.

At the end the faults stop, both workers drain the outbox, and the counts are taken:

* **Slack messages**: every outbox row that creates a message (`post`, `thread`) should
  exist in Slack exactly once, identified by the outbox id in its message metadata (for a
  card, the metadata of its first version: updates rename it). Lost = not in Slack;
  duplicated = more than once. Ephemeral messages (at least once by design) and card
  updates are not messages of their own.
* **Webhooks**: every webhook row should arrive at least once; duplicates are redeliveries
  the receiver dropped by id. Bad signatures are counted too.
* **Decisions**: each decision of the driver should be recorded once: an audit row (staging
  promotion, rollback), a change request, a vote.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from sqlmodel import select

from bench._common import REPO_ROOT, print_table
from bot.blocks.approvals import APPROVE_ACTION, ROLLBACK_ACTION
from bot.config.settings import Settings
from bot.delivery import verify_webhook
from bot.delivery.jobs import metadata_outbox_id
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.registry import NewVersion
from bot.services import Services, open_services
from storage.models import AuditEvent, ChangeRequest, OutboxMessage, RequestVote
from tests.slack_fake import SlackFake, sign_request

SIGNING_SECRET = "soak-signing-secret-0123456789"
HOOK_SECRET_ENV = "MODELBOT_SOAK_HOOK_SECRET"
HOOK_SECRET = "soak-hook-secret-0123456789"
DEPLOYS, APPROVALS, ALERTS = "C0DEPLOYS", "C0APPROVALS", "C0ALERTS"
REQUESTER, APPROVER = "U0DEPLOY", "U0APPR1"
# Slack: (state, seconds); the cycle repeats until the end
SLACK_CYCLE = (("healthy", 20), ("429", 10), ("healthy", 20), ("500", 10), ("healthy", 20), ("hang", 10))
HOOK_CYCLE = (("up", 25), ("503", 10), ("up", 25), ("slow", 10))
OUTBOX_TIMINGS = {
    "MODELBOT_OUTBOX_HTTP_TIMEOUT": "2", "MODELBOT_OUTBOX_LEASE_SECONDS": "10", "MODELBOT_OUTBOX_POLL_SECONDS": "0.2",
    "MODELBOT_OUTBOX_BACKOFF_BASE": "0.5", "MODELBOT_OUTBOX_BACKOFF_CAP": "5", "MODELBOT_OUTBOX_POST_INTERVAL": "0.2",
    "MODELBOT_OUTBOX_CIRCUIT_PAUSE": "2", "MODELBOT_OUTBOX_CIRCUIT_PAUSE_CAP": "10",
}
DECISION_WAIT_S = 15.0
MAX_ATTEMPTS = 8
DRAIN_TIMEOUT_S = 300.0


def log(message: str) -> None:
    print(f"[bench.soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- processes ------------------------------------------------------------------------------------


@dataclass
class Child:
    """One modelbot process, restarted after every kill; its output goes to a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready: str  # a line its log prints once it works
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + 120
        while self.ready not in self.log_path.read_bytes()[offset:].decode(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


# ---- the webhook receiver ------------------------------------------------------------------------


class Receiver:
    """Verifies each delivery's signature, records it by delivery id, and answers per its mode."""

    def __init__(self) -> None:
        self.mode = "up"
        self.deliveries: Counter[str] = Counter()
        self.bad_signatures = 0
        self.refused = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = receiver.mode
                if mode == "503":
                    with receiver._lock:
                        receiver.refused += 1
                    self._answer(503)
                    return
                with receiver._lock:
                    if verify_webhook(HOOK_SECRET, dict(self.headers.items()), body):
                        receiver.deliveries[self.headers["X-Modelbot-Delivery"]] += 1
                    else:
                        receiver.bad_signatures += 1
                if mode == "slow":
                    time.sleep(3)  # processed, but the sender gives up first: it will deliver again
                self._answer(200)

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/soak"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- faults ---------------------------------------------------------------------------------------


def cycle(stop: threading.Event, phases: tuple[tuple[str, int], ...], apply: Callable[[str], None]) -> None:
    while not stop.is_set():
        for state, seconds in phases:
            apply(state)
            if stop.wait(seconds):
                return


def slack_state(slack: SlackFake, state: str) -> None:
    if state == "healthy":
        slack.clear_outage()
    elif state == "429":
        slack.set_outage("rate_limit", retry_after=2)
    elif state == "500":
        slack.set_outage("fail", status=500)
    else:
        slack.set_outage("hang", seconds=3)


# ---- the driver -----------------------------------------------------------------------------------


@dataclass
class Decision:
    kind: str  # staging, request, approval, rollback
    key: str  # the reason token, or "request id:voter"
    acked_but_missing: int = 0
    attempts: int = 0


@dataclass
class Driver:
    services: Services
    slack: SlackFake
    serve_url: str
    models: list[str]
    decisions: list[Decision] = field(default_factory=list)
    alerts_fired: int = 0
    firing: set[str] = field(default_factory=set)
    counter: int = 0
    http: requests.Session = field(default_factory=requests.Session)

    def token(self) -> str:
        self.counter += 1
        return f"soak-{self.counter:05d}"

    def post(self, body: bytes) -> bool:
        """POST signed like Slack; True when acknowledged with 200."""
        try:
            response = self.http.post(self.serve_url, data=body, timeout=5, headers={
                **sign_request(SIGNING_SECRET, body), "Content-Type": "application/x-www-form-urlencoded"})
        except requests.RequestException:
            return False
        return response.status_code == 200

    def decide(self, decision: Decision, send: Callable[[], bytes], recorded: Callable[[], int]) -> None:
        """Send until the database shows the decision; never send it again once it is there. A
        decision still missing after MAX_ATTEMPTS sends stays expected, and counts as lost."""
        while recorded() == 0 and decision.attempts < MAX_ATTEMPTS:
            decision.attempts += 1
            acked = self.post(send())
            if wait_until(lambda: recorded() > 0, DECISION_WAIT_S if acked else 2.0):
                break
            if acked:
                decision.acked_but_missing += 1
        self.decisions.append(decision)

    def command(self, text: str) -> bytes:
        return self.slack.slash_command_body(text, user_id=REQUESTER, response_name=f"soak-{self.counter}")

    def step(self, model: str, move: int) -> None:
        state = self.services.registry.environment_state
        if move == 0:  # promote to staging: approvals 0, announced, webhook
            version = 1 + (state(model, "staging").stable or 0) % 3
            token = self.token()
            self.decide(Decision("staging", token), lambda: self.command(f"promote {model} {version} staging {token}"),
                        lambda: count(self.services, AuditEvent, reason=token, action="promote"))
        elif move == 1:  # request production, then approve it with a click
            version = 1 + (state(model, "production").stable or 0) % 3
            token = self.token()
            self.decide(Decision("request", token),
                        lambda: self.command(f"promote {model} {version} production {token}"),
                        lambda: count(self.services, ChangeRequest, reason=token))
            request_id = one_id(self.services, ChangeRequest, reason=token)
            if request_id is None:
                return
            self.decide(Decision("approval", f"{request_id}:{APPROVER}"),
                        lambda: self.slack.block_actions_body(APPROVE_ACTION, json.dumps({"r": request_id}),
                                                              user_id=APPROVER, channel_id=APPROVALS,
                                                              response_name=f"soak-{self.counter}"),
                        lambda: count(self.services, RequestVote, request_id=request_id, voter=APPROVER))
        elif move == 2:  # roll production back: `/model rollback` shows a button; pressing it decides
            now = state(model, "production")
            if now.previous is None:
                return
            token = self.token()
            value = json.dumps({"m": model, "e": "production", "t": now.previous, "f": now.stable, "r": token})
            self.decide(Decision("rollback", token),
                        lambda: self.slack.block_actions_body(ROLLBACK_ACTION, value, user_id=REQUESTER,
                                                              response_name=f"soak-{self.counter}"),
                        lambda: count(self.services, AuditEvent, reason=token, action="rollback"))
        else:  # the model's alert fires, and resolves at the model's next turn (a card, then its update and thread)
            firing = model in self.firing
            value = 0.0 if firing else 0.9
            Samples(self.services.registry).record(
                [SampleIn(model, "production", "error_rate", value, datetime.now(UTC))], source="soak")
            if firing:
                self.firing.discard(model)
            else:
                self.firing.add(model)
                self.alerts_fired += 1


def count(services: Services, table: type, **where: Any) -> int:
    with services.db.read() as session:
        query = select(sa.func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        return int(session.exec(query).one())


def one_id(services: Services, table: type, **where: Any) -> int | None:
    with services.db.read() as session:
        query = select(table.id)  # type: ignore[attr-defined]
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        found = session.exec(query).first()
        return None if found is None else int(found)


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


# ---- setup ----------------------------------------------------------------------------------------


POLICY = f"""
announce_channel = "{DEPLOYS}"
[roles]
admins = ["U0ADMIN"]
[environments.staging]
approvals = 0
[environments.production]
approvals = 1
approvers = ["{APPROVER}"]
approval_channel = "{APPROVALS}"
[alerts]
channel = "{ALERTS}"
group_wait = "1s"
group_interval = "10s"
evaluation_interval = "10s"
charts = false
"""


def policy_text(models: list[str], hook_url: str) -> str:
    rules = "".join(f'\n[[alerts.rules]]\nmodel = "{m}"\nmetric = "error_rate"\nop = ">"\nthreshold = 0.5\n'
                    for m in models)
    hook = f'\n[[webhooks]]\nurl = "{hook_url}"\nsecret_env = "{HOOK_SECRET_ENV}"\n'
    return POLICY + rules + hook


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
        return
    if args.postgres:
        url = os.environ.get("MODELBOT_TEST_POSTGRES_URL")
        if not url:
            raise SystemExit("--postgres needs MODELBOT_TEST_POSTGRES_URL (a server where a database can be created)")
        name = f"modelbot_soak_{os.getpid()}"
        admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
        return
    yield f"sqlite:///{workdir / 'soak.db'}"


# ---- the run --------------------------------------------------------------------------------------


@dataclass
class Counts:
    rows: dict[str, int]
    messages_expected: int
    messages_once: int
    messages_duplicated: int
    messages_lost: int
    webhooks_expected: int
    webhooks_delivered: int
    webhooks_duplicated: int
    bad_signatures: int
    decisions_expected: int
    decisions_recorded: int
    decisions_doubled: int
    acked_but_missing: int

    @property
    def ok(self) -> bool:
        return (self.messages_duplicated == 0 and self.messages_lost == 0
                and self.webhooks_delivered == self.webhooks_expected and self.bad_signatures == 0
                and self.decisions_recorded == self.decisions_expected and self.decisions_doubled == 0
                and self.rows.get("pending", 0) == self.rows.get("sending", 0) == 0)


def slack_outbox_ids(slack: SlackFake, channels: tuple[str, ...]) -> Counter[int]:
    """How often each outbox id appears as a message: top-level (by its first version) and in threads."""
    seen: Counter[int] = Counter()
    for channel in channels:
        for message in slack.messages(channel):
            first = message.history[0] if message.history else message.to_slack()
            if (outbox_id := metadata_outbox_id(first)) is not None:
                seen[outbox_id] += 1
            for reply in slack.thread(channel, message.ts):
                if (outbox_id := metadata_outbox_id(reply.to_slack())) is not None:
                    seen[outbox_id] += 1
    return seen


def tally(services: Services, slack: SlackFake, receiver: Receiver, driver: Driver) -> Counts:
    with services.db.read() as session:
        rows = session.exec(select(OutboxMessage)).all()
    statuses = Counter(r.status for r in rows)
    expected = {r.id for r in rows if r.kind in ("post", "thread")}
    seen = slack_outbox_ids(slack, (DEPLOYS, APPROVALS, ALERTS))
    hooks = {str(r.id) for r in rows if r.kind == "webhook"}
    decided = 0
    doubled = 0
    for d in driver.decisions:
        if d.kind == "approval":
            request_id, voter = d.key.split(":")
            n = count(services, RequestVote, request_id=int(request_id), voter=voter)
        elif d.kind == "request":
            n = count(services, ChangeRequest, reason=d.key)
        else:
            n = count(services, AuditEvent, reason=d.key, action="promote" if d.kind == "staging" else "rollback")
        decided += n >= 1
        doubled += n > 1
    return Counts(
        rows=dict(statuses),
        messages_expected=len(expected),
        messages_once=sum(1 for i in expected if seen[i] == 1),
        messages_duplicated=sum(1 for i in expected if seen[i] > 1),
        messages_lost=sum(1 for i in expected if seen[i] == 0),
        webhooks_expected=len(hooks),
        webhooks_delivered=len(hooks & set(receiver.deliveries)),
        webhooks_duplicated=sum(n - 1 for i, n in receiver.deliveries.items() if i in hooks),
        bad_signatures=receiver.bad_signatures,
        decisions_expected=len(driver.decisions),
        decisions_recorded=decided,
        decisions_doubled=doubled,
        acked_but_missing=sum(d.acked_but_missing for d in driver.decisions),
    )


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="modelbot-soak-"))
    models = [f"soak{i}" for i in range(args.models)]
    channels = {c: {"name": c.lower()} for c in (DEPLOYS, APPROVALS, ALERTS, "C0GENERAL")}
    receiver = Receiver()
    stop = threading.Event()
    children: list[Child] = []
    try:
        with database(args, workdir) as url, SlackFake(channels=channels, ts_clock=time.time) as slack:
            for user in (REQUESTER, APPROVER, "U0ADMIN"):
                slack.add_user(user)
            policy = workdir / "modelbot.toml"
            policy.write_text(policy_text(models, receiver.url))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MODELBOT_"))}
            env.update({"MODELBOT_DATABASE_URL": url, "MODELBOT_CONFIG": str(policy), "MODELBOT_SLACK_API_URL":
                        slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                        HOOK_SECRET_ENV: HOOK_SECRET, "MODELBOT_DB_LOCK_TIMEOUT": "30", **OUTBOX_TIMINGS})
            services = open_services(Settings.from_env(env))
            for model in models:
                for version in (1, 2, 3):
                    services.registry.register(NewVersion(model=model, artifact_uri=f"s3://soak/{model}/{version}",
                                                          actor="ci"))
            port = free_port()
            cli = [sys.executable, "-m", "bot.cli"]
            children += [
                Child("serve", [*cli, "serve", "--http", "--host", "127.0.0.1", "--port", str(port)], env,
                      "listening on", workdir),
                Child("deliver", [*cli, "deliver"], env, "outbox delivery started", workdir),
            ]
            for child in children:
                child.start()
            log(f"serve and deliver are up; soaking for {args.minutes:g} min in {workdir}")
            kills: list[str] = []

            def killer() -> None:
                turn = 0
                while not stop.wait(args.kill_every):
                    child = children[turn % 2]
                    turn += 1
                    child.kill()
                    kills.append(child.name)
                    log(f"SIGKILLed {child.name}; starting it again")
                    child.start()

            threads = [
                threading.Thread(target=cycle, args=(stop, SLACK_CYCLE, lambda s: slack_state(slack, s)), daemon=True),
                threading.Thread(target=cycle, args=(stop, HOOK_CYCLE, lambda s: setattr(receiver, "mode", s)),
                                 daemon=True),
                threading.Thread(target=killer, daemon=True),
            ]
            for thread in threads:
                thread.start()
            driver = Driver(services, slack, f"http://127.0.0.1:{port}/slack/events", models)
            deadline = time.monotonic() + args.minutes * 60
            step = 0
            while time.monotonic() < deadline:
                driver.step(models[step % len(models)], (step // len(models)) % 4)
                step += 1
                if step % 20 == 0:
                    log(f"{len(driver.decisions)} decisions, {driver.alerts_fired} alerts, {len(kills)} kills")
            stop.set()
            for thread in threads:
                thread.join(timeout=180)
            slack.clear_outage()
            receiver.mode = "up"
            log("faults stopped; waiting for the outbox to drain")
            drained = wait_until(lambda: count_unfinished(services) == 0, DRAIN_TIMEOUT_S)
            codes = {child.name: child.stop() for child in children}
            counts = tally(services, slack, receiver, driver)
            report(args, counts, kills=kills, drained=drained, codes=codes, children=children)
            services.close()
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
            return 0 if counts.ok and drained else 1
    finally:
        stop.set()
        receiver.close()
        for child in children:  # after an error: no process outlives the run
            if child.proc is not None and child.proc.poll() is None:
                child.proc.kill()


def count_unfinished(services: Services) -> int:
    with services.db.read() as session:
        return int(session.exec(select(sa.func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.status.in_(("pending", "sending")))).one())  # type: ignore[attr-defined]


def report(args: argparse.Namespace, c: Counts, *, kills: list[str], drained: bool, codes: dict[str, int],
           children: list[Child]) -> None:
    tracebacks = sum(child.log_path.read_text(errors="replace").count("Traceback") for child in children)
    print(f"\nmodelbot fault soak: {args.minutes:g} min, {args.models} models, a kill every {args.kill_every:g} s "
          f"({Counter(kills)['serve']} serve, {Counter(kills)['deliver']} deliver); outbox drained: "
          f"{'yes' if drained else 'NO'}; exit codes after SIGTERM {codes}; tracebacks in logs: {tracebacks}\n")
    print_table(["what", "expected", "delivered/recorded once", "duplicated", "lost"], [
        ["Slack messages (post, thread)", c.messages_expected, c.messages_once, c.messages_duplicated,
         c.messages_lost],
        ["webhooks (by delivery id)", c.webhooks_expected, c.webhooks_delivered,
         f"{c.webhooks_duplicated} (dropped by id)", c.webhooks_expected - c.webhooks_delivered],
        ["decisions (audit, requests, votes)", c.decisions_expected, c.decisions_recorded, c.decisions_doubled,
         c.decisions_expected - c.decisions_recorded],
    ])
    print(f"\noutbox rows by status: {dict(sorted(c.rows.items()))}; webhook signatures that failed to verify: "
          f"{c.bad_signatures}; decisions acknowledged by Slack's 200 but not recorded (sent again): "
          f"{c.acked_but_missing}")
    print(f"verdict: {'OK' if c.ok and drained else 'FAILED'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="how long the faults go on (default 20)")
    parser.add_argument("--kill-every", type=float, default=120.0, help="seconds between SIGKILLs (default 120)")
    parser.add_argument("--models", type=int, default=4)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="an empty database to use (default: a SQLite file)")
    where.add_argument("--postgres", action="store_true", help="a scratch database on MODELBOT_TEST_POSTGRES_URL")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs, SQLite file)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
