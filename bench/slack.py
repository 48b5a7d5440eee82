"""Slack HTTP-mode benchmark: signed `/model` commands against `modelbot serve --http` under load.

    python -m bench.slack [--seconds 60] [--users 20] [--scenario team|saturation|both]
                          [--think-ms 1000] [--models 1000] [--versions 100]
                          [--database-url URL | --postgres] [--scheduler on|off] [--keep]

Why it exists: issue 3, acceptance 5. Slack gives an app 3 seconds to acknowledge a command
and users judge it by how fast the answer appears; both must hold when a whole team uses
the bot at once, on a registry of a real company's size.

What runs where:

* **The server** is the production entry point, `python -m bot.cli serve --http`, in its own
  process (uvicorn → FastAPI → Bolt → listeners), configured only through the environment
  like a deployment, so the load generator cannot steal its GIL.
* **Slack** is the strict fake from `tests/slack_fake.py`, in this process: the server's
  replies go over real HTTP to its response_urls, which validate Block Kit and record when
  each reply arrived.
* **The registry**: 1,000 models × 100 versions (3 metrics, 3 params, 2 tags each), audit
  rows and production/staging pointers, bulk-loaded by `bench.registry.bulk_load` (not
  measured) into a SQLite file, or PostgreSQL with `--postgres` / `--database-url`.
* **Load**: `--users` simulated users (default 20), each a thread with its own keep-alive
  HTTP connection, in a closed loop: sign a command, POST it, wait for the reply at its
  response_url, think, send the next. A 25/25/25/25 mix of `list` (the model list, or one
  model's versions), `show` (a number, `latest` or `@production`), `compare` (2 versions,
  every fifth time 5) and `history`, on random models. Two scenarios, `--seconds` each:
  - **team**: think time uniform in [0, 2 × `--think-ms`] (mean 1 s, also before each user's
    first command, so the phase does not open with 20 simultaneous commands): 20 people typing
    a command every second or so — about 20 commands/s, already far busier than a real team.
    The targets are judged here.
  - **saturation**: no think time, so 20 requests are always in flight and the server (one
    process, one GIL, sharing 2 CPUs with the load generator and the fake) runs flat out.
    This finds the capacity and shows how latency degrades past it; by Little's law the
    latency there is roughly users / throughput, whatever the code does.

Measured per command, after an untimed warm-up per scenario: **ack** = HTTP response time of the signed
POST /slack/events as the client sees it (target p99 ≤ 50 ms; Slack's limit 3,000 ms);
**reply** = from sending the POST to the fake recording the reply at the response_url
(target p99 ≤ 300 ms); requests per second; **errors** (target 0): non-200 acks, replies
missing after 10 s, replies that are error messages, and `internal_error` outcomes counted by
the server's own /metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench._common import LatencyStats, render_table
from bench.registry import bulk_load, fresh_postgres_database, model_name
from storage.db import Database, DatabaseSettings
from tests import slack_fake
from tests.slack_fake import SlackFake, sign_request

REPO = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
ACK_P99_TARGET_MS = 50.0
REPLY_P99_TARGET_MS = 300.0
REPLY_TIMEOUT_S = 10.0
POSTGRES_ENV = ("MODELBOT_BENCH_POSTGRES_URL", "MODELBOT_TEST_POSTGRES_URL")
COMMANDS = ("list", "show", "compare", "history")


def log(message: str) -> None:
    """Progress goes to stderr so stdout carries only the report."""
    print(f"[bench.slack {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LoadShape:
    """What `bench.registry.bulk_load` reads from its config: the same data shape as that bench."""

    models: int
    versions: int


def widen_fake_listen_backlog(backlog: int = 512) -> None:
    """Let the fake Slack accept bursts of connections, as slack.com does.

    The fake is a `ThreadingHTTPServer`, whose listen backlog is socketserver's default of 5.
    The bot posts each reply over a new connection (slack_sdk's urllib client does not keep
    connections alive), so at 150+ replies/s the backlog overflows, the kernel drops SYNs and
    the client retries after 1 s: every such reply would be charged a second that belongs to
    the fake, not to modelbot. Set before `SlackFake.start()`; the fake's code is unchanged.
    """
    slack_fake._Server.request_queue_size = backlog


# ---- the server under test ------------------------------------------------------------------


@dataclass
class ServerProcess:
    """`modelbot serve --http` as a child process; its log is drained so the pipe never blocks."""

    proc: subprocess.Popen[str]
    url: str
    host: str
    port: int
    problems: list[str] = field(default_factory=list)

    def stop(self) -> int:
        self.proc.terminate()  # SIGTERM: the graceful path a deployment uses
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_server(database_url: str, slack: SlackFake, *, scheduler: bool = True) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MODELBOT_"))}
    env.update({
        "MODELBOT_DATABASE_URL": database_url,
        "MODELBOT_SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    })
    if not scheduler:
        env["MODELBOT_SCHEDULER"] = "off"  # `modelbot serve` then runs no background jobs
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--http", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    ready: queue.Queue[str | None] = queue.Queue()
    problems: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if match := re.search(r"listening on (http://\S+)", line):
                ready.put(match.group(1))
            elif re.search(r" (WARNING|ERROR|CRITICAL) ", line) and "`token` will be unused" not in line:
                problems.append(line.rstrip())
        ready.put(None)

    threading.Thread(target=drain, name="server-log", daemon=True).start()
    url = ready.get(timeout=120)
    if url is None:
        raise RuntimeError("modelbot serve exited before listening:\n" + "\n".join(problems))
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return ServerProcess(proc, url, host, int(port), problems)


# ---- simulated users --------------------------------------------------------------------------


@dataclass
class Sample:
    command: str
    ack_ms: float
    reply_ms: float | None
    error: str | None = None


class Workload:
    """Picks the next command text; one seeded stream per user so runs are comparable."""

    def __init__(self, models: int, versions: int, seed: int) -> None:
        self.models = models
        self.versions = versions
        self.rng = random.Random(seed)

    def next(self) -> tuple[str, str]:
        r = self.rng
        kind = r.choice(COMMANDS)
        model = model_name(r.randrange(self.models))
        if kind == "list":
            return kind, "list" if r.random() < 0.5 else f"list {model}"
        if kind == "show":
            ref = r.choice([str(r.randint(1, self.versions)), "latest", "@production"])
            return kind, f"show {model} {ref}"
        if kind == "compare":
            count = 5 if r.random() < 0.2 else 2
            refs = r.sample(range(1, self.versions + 1), min(count, self.versions))
            return kind, f"compare {model} " + " ".join(map(str, refs))
        return kind, f"history {model}" + (" production" if r.random() < 0.5 else "")


class User(threading.Thread):
    """One person typing commands: POST signed, wait for the reply, repeat until the deadline."""

    names = itertools.count()

    def __init__(self, index: int, server: ServerProcess, slack: SlackFake, workload: Workload,
                 start: threading.Event, deadline: list[float], think_mean_s: float) -> None:
        super().__init__(name=f"user-{index}", daemon=True)
        self.index = index
        self.server = server
        self.slack = slack
        self.workload = workload
        self.start_event = start
        self.deadline = deadline
        self.think_mean_s = think_mean_s
        self.samples: list[Sample] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        self.start_event.wait()
        try:
            # People do not all press Enter in the same millisecond: with think time, each user
            # starts after a first pause, or every phase would open with a 20-command burst.
            self.think()
            while time.perf_counter() < self.deadline[0]:
                self.samples.append(self.one(conn))
                self.think()
        finally:
            conn.close()

    def think(self) -> None:
        """A person reading the answer (simulated behaviour, not synchronisation)."""
        if self.think_mean_s:
            pause = self.workload.rng.uniform(0, 2 * self.think_mean_s)
            time.sleep(max(0.0, min(pause, self.deadline[0] - time.perf_counter())))

    def one(self, conn: http.client.HTTPConnection) -> Sample:
        kind, text = self.workload.next()
        name = f"u{self.index}-{next(self.names)}"
        body = self.slack.slash_command_body(text, response_name=name, user_id=f"U{self.index:04d}")
        headers = {**sign_request(SIGNING_SECRET, body), "Content-Type": "application/x-www-form-urlencoded"}
        sent_wall = time.time()
        started = time.perf_counter()
        try:
            conn.request("POST", "/slack/events", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # reconnects on the next request
            return Sample(kind, (time.perf_counter() - started) * 1000, None, f"ack failed: {type(exc).__name__}")
        ack_ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            return Sample(kind, ack_ms, None, f"ack HTTP {response.status}")
        try:
            reply = self.slack.wait_for_responses(name, 1, timeout=REPLY_TIMEOUT_S)[0]
        except TimeoutError:
            return Sample(kind, ack_ms, None, f"no reply within {REPLY_TIMEOUT_S:g} s")
        reply_ms = (reply.time - sent_wall) * 1000
        first = ((reply.blocks or [{}])[0].get("text") or {}).get("text", "")
        if first.startswith((":warning:", ":x:")):
            return Sample(kind, ack_ms, reply_ms, f"error reply: {first[:80]}")
        return Sample(kind, ack_ms, reply_ms)


@dataclass(frozen=True)
class Scenario:
    name: str
    think_mean_s: float
    judged: bool  # whether the targets apply (people), or it is a stress measurement


@dataclass
class Result:
    scenario: Scenario
    samples: list[Sample]
    wall_s: float
    floor_ms: list[float] = field(default_factory=list)  # GET /healthz on the same server meanwhile
    server_cpu_s: float | None = None  # user + system CPU the server process used during the phase


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), or None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class FloorProbe(threading.Thread):
    """GET /healthz every 50 ms during a phase: the latency of (almost) no work on the same server.

    On a shared machine, scheduling delays hit every request alike; when /healthz shows the
    same tail as the commands, the tail belongs to the machine, not to the command path.
    """

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(name="floor-probe", daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.samples: list[float] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                self.samples.append((time.perf_counter() - started) * 1000)
                self.stop.wait(0.05)  # pacing, not synchronisation
        finally:
            conn.close()


def run_load(server: ServerProcess, slack: SlackFake, scenario: Scenario, *, users: int, seconds: float,
             warmup_s: float, models: int, versions: int, seed: int) -> Result:
    """Warm up (discarded), then `seconds` of load; returns samples and the measured wall time."""
    if warmup_s > 0:
        log(f"{scenario.name}: warm-up, {users} users for {warmup_s:g} s (not measured) …")
        _run_phase(server, slack, users, warmup_s, models, versions, seed + 1_000_000, scenario.think_mean_s)
    log(f"{scenario.name}: {users} users for {seconds:g} s …")
    probe = FloorProbe(server)
    probe.start()
    cpu_before = process_cpu_s(server.proc.pid)
    try:
        samples, wall = _run_phase(server, slack, users, seconds, models, versions, seed, scenario.think_mean_s)
    finally:
        probe.stop.set()
        probe.join()
    cpu_after = process_cpu_s(server.proc.pid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Result(scenario, samples, wall, probe.samples, cpu)


def _run_phase(server: ServerProcess, slack: SlackFake, users: int, seconds: float, models: int,
               versions: int, seed: int, think_mean_s: float) -> tuple[list[Sample], float]:
    start = threading.Event()
    deadline = [0.0]
    threads = [User(i, server, slack, Workload(models, versions, seed + i), start, deadline, think_mean_s)
               for i in range(users)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    slack.clear_calls()  # the fake keeps every request; drop them between phases to bound memory
    return [s for t in threads for s in t.samples], wall


# ---- server-side view ---------------------------------------------------------------------------


def server_outcomes(server: ServerProcess) -> dict[str, float]:
    """`modelbot_commands_total` by outcome, read from the server's own /metrics."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    outcomes: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "modelbot_commands_total":
                outcomes[sample.labels["outcome"]] = outcomes.get(sample.labels["outcome"], 0) + sample.value
    return outcomes


# ---- report -------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "✓" if ok else "✗ MISSED"


def fmt_ms(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def stats(samples: list[float]) -> LatencyStats | None:
    return LatencyStats.of(samples) if samples else None


def cell(s: LatencyStats | None) -> str:
    return "—" if s is None else f"{fmt_ms(s.p50_ms)} / {fmt_ms(s.p99_ms)}"


def scenario_tables(result: Result) -> tuple[list[str], bool]:
    """The two tables of one scenario, and whether its latency targets were met."""
    samples = result.samples
    acks = [s.ack_ms for s in samples]
    replies = [s.reply_ms for s in samples if s.reply_ms is not None]
    ack, reply = stats(acks), stats(replies)
    ack_ok = ack is not None and ack.p99_ms <= ACK_P99_TARGET_MS
    reply_ok = reply is not None and reply.p99_ms <= REPLY_P99_TARGET_MS
    scenario = result.scenario
    table = []
    for label, st, values, target, ok in (
        ("ack: POST /slack/events → HTTP 200", ack, acks, ACK_P99_TARGET_MS, ack_ok),
        ("reply: POST sent → reply at response_url", reply, replies, REPLY_P99_TARGET_MS, reply_ok),
    ):
        verdict = _verdict(ok) if scenario.judged else ("(within)" if ok else "(over: stress)")
        table.append([label, f"{len(values):,}", fmt_ms(st.p50_ms if st else None), fmt_ms(st.p99_ms if st else None),
                      fmt_ms(max(values, default=None)), f"p99 ≤ {target:g} ms", verdict])
    floor = stats(result.floor_ms)
    table.append(["floor: GET /healthz meanwhile (no Slack work)", f"{len(result.floor_ms):,}",
                  fmt_ms(floor.p50_ms if floor else None), fmt_ms(floor.p99_ms if floor else None),
                  fmt_ms(max(result.floor_ms, default=None)), "—", "reference"])
    per_command = []
    for kind in COMMANDS:
        mine = [s for s in samples if s.command == kind]
        a = stats([s.ack_ms for s in mine])
        r = stats([s.reply_ms for s in mine if s.reply_ms is not None])
        per_command.append([kind, f"{len(mine):,}", cell(a), cell(r), str(sum(1 for s in mine if s.error))])
    errors: dict[str, int] = {}
    for s in samples:
        if s.error:
            errors[s.error] = errors.get(s.error, 0) + 1
    think = (f"think time uniform 0–{2 * scenario.think_mean_s:g} s" if scenario.think_mean_s
             else "no think time")
    cpu = ""
    if result.server_cpu_s is not None and samples:
        cpu = (f"; server CPU {result.server_cpu_s * 1000 / len(samples):.1f} ms per command "
               f"({100 * result.server_cpu_s / result.wall_s:.0f}% of one core)")
    lines = [
        f"### {scenario.name}: {think}; {result.wall_s:.1f} s measured; "
        f"{len(samples) / result.wall_s:.1f} commands/s{cpu}; errors {sum(errors.values())}"
        + (f" {errors}" if errors else "")
        + ("" if scenario.judged else " (stress measurement: targets shown for reference)"),
        "",
        render_table(["measure", "n", "p50", "p99", "max", "target", "met"], table),
        "",
        render_table(["command", "n", "ack p50 / p99", "reply p50 / p99", "errors"], per_command),
        "",
    ]
    return lines, (ack_ok and reply_ok and not errors)


def report(results: list[Result], *, args: argparse.Namespace, backend: str, rows: dict[str, int],
           load_s: float, outcomes: dict[str, float], server_problems: list[str],
           exit_code: int | None) -> tuple[str, bool]:
    internal = outcomes.get("internal_error", 0.0)
    load = os.getloadavg()
    lines = [
        f"Slack HTTP-mode benchmark: `modelbot serve --http` (uvicorn, 1 process) + strict fake Slack; "
        f"{backend} registry of {args.models:,} models × {args.versions} versions ({rows}); "
        f"{args.users} concurrent users, closed loop, {args.warmup:g} s warm-up per scenario; "
        f"background scheduler in the server {args.scheduler}; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs (server, load generator and fake share them), "
        f"1-min load average {load[0]:.1f} at end (other work on the machine inflates p99).",
        "",
    ]
    all_met = internal == 0 and exit_code == 0
    errors_total = 0
    for result in results:
        section, ok = scenario_tables(result)
        lines += section
        errors_total += sum(1 for s in result.samples if s.error)
        if result.scenario.judged:
            all_met &= ok
    lines += [
        f"- errors: {errors_total} client-side, {internal:g} internal_error outcomes in the server's "
        f"/metrics (target 0) {_verdict(errors_total == 0 and internal == 0)}",
        "- server outcomes (/metrics, warm-ups included): "
        + ", ".join(f"{k} {v:g}" for k, v in sorted(outcomes.items())),
        f"- server warnings/errors logged: {len(server_problems)}"
        + (f" (first: {server_problems[0][:200]})" if server_problems else ""),
        f"- server exit after SIGTERM: {exit_code}",
        f"- bulk load (not measured): {load_s:.1f} s",
        f"- targets met ({', '.join(r.scenario.name for r in results if r.scenario.judged) or 'no judged scenario'}):"
        f" {'yes' if all_met else 'NO'}",
    ]
    return "\n".join(lines), all_met


# ---- entry point --------------------------------------------------------------------------------


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """(url, backend label): a fresh SQLite file, or a fresh database on a PostgreSQL server."""
    server_url = args.database_url or (
        next((os.environ[k] for k in POSTGRES_ENV if os.environ.get(k)), None) if args.postgres else None
    )
    if args.postgres and not server_url:
        raise SystemExit(f"--postgres needs one of {', '.join(POSTGRES_ENV)} (or --database-url)")
    if server_url:
        with fresh_postgres_database(server_url) as url:
            yield url, "PostgreSQL"
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-slack-"))
    try:
        yield f"sqlite:///{workdir / 'modelbot.db'}", "SQLite"
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.slack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured load duration (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="untimed load before measuring (default 5 s)")
    parser.add_argument("--users", type=int, default=20, help="concurrent simulated users (default 20)")
    parser.add_argument("--scenario", choices=["team", "saturation", "both"], default="both")
    parser.add_argument("--think-ms", type=float, default=1000.0,
                        help="team scenario: mean pause between a user's commands (default 1000)")
    parser.add_argument("--scheduler", choices=["on", "off"], default="on",
                        help="run the background scheduler inside the server, as `modelbot serve` does (default on)")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--postgres", action="store_true",
                        help=f"PostgreSQL server from {' or '.join(POSTGRES_ENV)} instead of SQLite")
    parser.add_argument("--database-url", help="a PostgreSQL server URL (a fresh database is created on it)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file (path printed)")
    args = parser.parse_args(argv)
    if (args.seconds <= 0 or args.users < 1 or args.models < 1 or args.versions < 2 or args.warmup < 0
            or args.think_ms < 0):
        parser.error("--seconds and --users must be positive, --models ≥ 1, --versions ≥ 2, no negative times")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with database(args) as (url, backend):
        db = Database(DatabaseSettings(url=url))
        try:
            db.upgrade()
            log(f"{backend}: bulk-loading {args.models} × {args.versions} (not measured) …")
            load_s, rows = bulk_load(db, LoadShape(args.models, args.versions))  # type: ignore[arg-type]
            log(f"  loaded in {load_s:.1f} s: {rows}")
        finally:
            db.dispose()
        widen_fake_listen_backlog()
        with SlackFake() as slack:
            server = start_server(url, slack, scheduler=args.scheduler == "on")
            log(f"server up at {server.url} (pid {server.proc.pid})")
            scenarios = [Scenario("team", args.think_ms / 1000, judged=True),
                         Scenario("saturation", 0.0, judged=False)]
            chosen = [sc for sc in scenarios if args.scenario in (sc.name, "both")]
            try:
                results = [run_load(server, slack, sc, users=args.users, seconds=args.seconds,
                                    warmup_s=args.warmup, models=args.models, versions=args.versions,
                                    seed=args.seed + i * 7919) for i, sc in enumerate(chosen)]
                outcomes = server_outcomes(server)
            finally:
                exit_code = server.stop()
        text, all_met = report(results, args=args, backend=backend, rows=rows, load_s=load_s,
                               outcomes=outcomes, server_problems=server.problems, exit_code=exit_code)
    print(text)
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
