"""REST API benchmark: serving-state reads, watches and registers over real HTTP.

    python -m bench.api [--models 1000] [--versions 100] [--clients 50] [--seconds 30]
                        [--warmup 3] [--workers 1,2] [--watchers 1000] [--promotions 5]
                        [--idle-seconds 5] [--interval 0.5] [--phases reads,registers,mixed,paced,watch]
                        [--skip-postgres] [--profile DIR]

Why it exists: issues 7 and 15. A serving layer reads
`GET /api/v1/models/{m}/environments/production` to learn what to serve (or holds it open as
a watch, `?revision=N&wait=…`), and CI registers versions with `POST /api/v1/models/{m}/versions`;
both must stay fast on a real company's registry while many clients call at once. Targets on
this machine: reads p99 ≤ 20 ms and ≥ 2,000 reads/s at 50 clients; registers p99 ≤ 50 ms at 50
clients; a promotion reaches 1,000 watchers with p99 ≤ 250 ms; idle watchers cost ≈ 0 CPU.

How:

* **Data** (not measured): 1,000 models × 100 versions with their audit rows and deployments,
  bulk-loaded with SQLAlchemy core by `bench.registry.bulk_load` (the same data as the
  registry benchmark), plus one API token with every scope.
* **Server**: `modelbot serve --http --workers N` as a user runs it, without Slack settings (the
  REST API alone), the scheduler off, once per `--workers` value on the same database. The
  token's rate limit is lifted with `MODELBOT_API_RATE_PER_SECOND` (the limiter still runs on
  every request). Server CPU is the sum over the server's processes.
* **Clients**: `--clients` connections with HTTP/1.1 keep-alive, each sending its next
  request as soon as the previous answer arrived (closed loop), from one event loop (uvloop)
  in this process: a minimal HTTP client, so the clients cost little CPU next to the server
  (these machines have two cores, shared). Latency is measured from writing the request to
  reading the last byte of the answer; requests started during the first `--warmup` seconds
  are discarded.
* **Phases**, `--seconds` each, closed loop: (a) every client reads the serving state of a
  random model (after the warm-up every state is in the server's cache: what a fleet polling
  a few states sees); (b) every client registers a version of a random model; (c) mixed: 90 %
  read while 10 % register. Then (d) the mixed clients *paced*, one request every `--interval`
  seconds each, latency counted from the scheduled send time (no coordinated omission).
  Throughput counts successful answers per second.
* **Watch**: `--watchers` connections each hold a watch on one model's production state
  (`?revision=N&wait=60s`); `--promotions` times a promotion is POSTed on a new connection and
  each watcher's latency is the time from sending the promotion to receiving the new state
  (every watcher re-arms at once, as the client library does). Then, every watch held again,
  the server's CPU is measured over `--idle-seconds`.
* **Backends**: SQLite, and PostgreSQL when `MODELBOT_BENCH_POSTGRES_URL` or
  `MODELBOT_TEST_POSTGRES_URL` names a server (a fresh database is created and dropped).
* `--profile DIR` samples a one-worker server with py-spy (`py-spy record --nonblocking --gil`)
  during each phase and prints the hottest frames, to explain a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import REPO_ROOT, percentiles, render_table
from bench.registry import POSTGRES_ENV, Config, bulk_load, fresh_postgres_database, model_name

READ_P99_TARGET_MS = 20.0
READ_THROUGHPUT_TARGET = 2000.0
REGISTER_P99_TARGET_MS = 50.0
WATCH_P99_TARGET_MS = 250.0
WATCH_WAIT = "60s"
IDLE_SETTLE_S = 2.0
PHASES = ("reads", "registers", "mixed", "paced", "watch")
RATE_LIFTED = "1000000000"
POLICY = """
[environments.staging]
approvals = 0

[environments.production]
approvals = 0
"""


def log(message: str) -> None:
    """Progress goes to stderr so stdout carries only the report."""
    print(f"[bench.api {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the server process ----------------------------------------------------------------------


class ServerProcess:
    """`modelbot serve --http --workers N` on the bench's database, API only."""

    def __init__(self, database_url: str, policy: Path, workers: int, log_dir: Path) -> None:
        self.port, self.workers = _free_port(), workers
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
        env.update({"MODELBOT_DATABASE_URL": database_url, "MODELBOT_CONFIG": str(policy),
                    "MODELBOT_API_RATE_PER_SECOND": RATE_LIFTED, "MODELBOT_SCHEDULER": "off",
                    "PYTHONUNBUFFERED": "1"})
        self.log = log_dir / f"serve-{self.port}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--http", "--port", str(self.port),
                 "--workers", str(workers)], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API server did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.2)  # polling a readiness condition, with a deadline

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as answer:
                healthy = answer.status == 200
        except OSError:
            return False
        return healthy and (self.workers == 1 or
                            self.log.read_text().count("Application startup complete.") >= self.workers)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server's processes so far (Linux), to tell CPU-bound from waiting."""
        total, found = 0.0, False
        for pid in [self.pid, *_descendants(self.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            found = True
        return total if found else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # graceful stop on SIGTERM
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# ---- the clients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    kind: str  # "read" or "register"
    method: str
    path: str
    body: bytes = b""


@dataclass
class Sample:
    kind: str
    started: float
    ms: float
    status: int


def read_request(rng: random.Random, models: int) -> Request:
    return Request("read", "GET", f"/api/v1/models/{model_name(rng.randrange(models))}/environments/production")


def register_request(rng: random.Random, models: int) -> Request:
    m = rng.randrange(models)
    body = {"artifact_uri": f"s3://bench/{model_name(m)}/{uuid.uuid4().hex}", "run_id": uuid.uuid4().hex,
            "metrics": {"auc": round(rng.uniform(0.8, 0.95), 4), "loss": round(rng.uniform(0.2, 0.5), 4),
                        "f1": round(rng.uniform(0.6, 0.8), 4)},
            "params": {"lr": "0.001", "depth": str(rng.randint(4, 9)), "optimizer": "adam"},
            "tags": {"team": f"team-{m % 17}", "commit": uuid.uuid4().hex}}
    return Request("register", "POST", f"/api/v1/models/{model_name(m)}/versions", json.dumps(body).encode())


class HttpConnection:
    """HTTP/1.1 keep-alive over asyncio streams: just enough for uvicorn's answers."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.headers = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: Request) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{request.method} {request.path} HTTP/1.1\r\n{self.headers}"
        if request.body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(request.body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + request.body)
        status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
        lines = status_and_headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next((int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"),
                      None)
        if length is None:
            raise RuntimeError(f"answer without Content-Length: {lines[:3]}")
        body = await self.reader.readexactly(length)
        if any(h.lower() == "connection: close" for h in lines[1:]):
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def client(port: int, token: str, make: Callable[[random.Random], Request], rng: random.Random,
                 deadline: float, samples: list[Sample], errors: Counter[str], interval: float | None = None) -> None:
    """Closed loop (`interval` None): the next request as soon as the answer arrived. Paced: one
    request every `interval` seconds on a fixed schedule, latency counted from the scheduled
    time, so a server that falls behind is charged for the wait (no coordinated omission)."""
    conn = HttpConnection("127.0.0.1", port, token)
    scheduled = time.perf_counter() + (rng.uniform(0, interval) if interval else 0.0)
    try:
        while time.perf_counter() < deadline:
            request = make(rng)
            if interval:
                await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))  # pacing, not synchronisation
                started, scheduled = scheduled, scheduled + interval
            else:
                started = time.perf_counter()
            try:
                status, body = await conn.send(request)
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
                errors[f"{request.kind}: {type(exc).__name__}"] += 1
                await conn.close()
                continue
            samples.append(Sample(request.kind, started, (time.perf_counter() - started) * 1000.0, status))
            if status >= 300 and len(errors) < 50:
                errors[f"{request.kind}: HTTP {status} {body[:120]!r}"] += 1
    finally:
        await conn.close()


@dataclass
class PhaseResult:
    backend: str
    workers: int
    phase: str
    kind: str  # "read", "register", "watch" (a promotion reaching a watcher) or "idle" (held watches)
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    server_cpu: float | None = None  # server CPU seconds per wall second (1.0 = one core busy)
    client_cpu: float | None = None  # the same for this process (the clients)

    @property
    def ok(self) -> list[float]:
        return [s.ms for s in self.samples if s.status < 300]

    @property
    def target_ms(self) -> float:
        return {"read": READ_P99_TARGET_MS, "register": REGISTER_P99_TARGET_MS}.get(self.kind, WATCH_P99_TARGET_MS)


def run_phase(backend: str, phase: str, server: ServerProcess, token: str, mix: list[Callable[[random.Random], Request]],
              seconds: float, warmup: float, seed: int, interval: float | None = None) -> list[PhaseResult]:
    """All clients at once for `warmup + seconds`; one result per request kind."""
    samples: list[Sample] = []
    errors: Counter[str] = Counter()

    async def run() -> None:
        start = time.perf_counter()
        deadline = start + warmup + seconds
        await asyncio.gather(*(client(server.port, token, make, random.Random(f"{seed}:{phase}:{i}"), deadline,
                                      samples, errors, interval) for i, make in enumerate(mix)))

    cpu_before, own_before = server.cpu_seconds(), time.process_time()
    t0 = time.perf_counter()
    run_loop(run())
    measured_from = t0 + warmup
    cpu_after, own_after = server.cpu_seconds(), time.process_time()
    elapsed = time.perf_counter() - t0
    server_cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / elapsed
    client_cpu = (own_after - own_before) / elapsed
    out = []
    for kind in sorted({s.kind for s in samples}):
        kept = [s for s in samples if s.kind == kind and s.started >= measured_from]
        errs = Counter({k: v for k, v in errors.items() if k.startswith(kind)})
        out.append(PhaseResult(backend, server.workers, phase, kind, seconds, kept, errs, server_cpu, client_cpu))
    return out


def run_loop(main: Any) -> Any:
    """uvloop when installed (it comes with uvicorn[standard]): the clients then cost less CPU
    on a machine they share with the server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


# ---- the watch path --------------------------------------------------------------------------------


def run_watch(backend: str, server: ServerProcess, token: str, args: argparse.Namespace) -> list[PhaseResult]:
    """`--watchers` held watches on one state; their idle cost; then `--promotions` promotions,
    each timed from sending it until every watcher has the new state."""
    model = model_name(0)
    path = f"/api/v1/models/{model}/environments/production"
    versions = (args.versions, args.versions - 1)  # the bench's data serves the latest version
    arrivals: dict[int, list[float]] = {}
    armed: dict[int, int] = {}  # revision -> watchers whose watch on it has been sent
    errors: Counter[str] = Counter()
    stop = asyncio.Event()
    idle_cpu: list[float] = []
    burst_cpu: list[float] = []  # server CPU per wall second while promotions reach the watchers
    burst_window: list[float] = []
    latencies: list[Sample] = []

    async def watcher() -> None:
        conn = HttpConnection("127.0.0.1", server.port, token)
        try:
            _, body = await conn.send(Request("watch", "GET", path))
            revision = json.loads(body)["revision"]
            while not stop.is_set():
                armed[revision] = armed.get(revision, 0) + 1
                status, body = await conn.send(Request("watch", "GET", f"{path}?revision={revision}&wait={WATCH_WAIT}"))
                now = time.perf_counter()
                if status != 200:
                    errors[f"watch: HTTP {status} {body[:120]!r}"] += 1
                    continue
                new = json.loads(body)["revision"]
                if new != revision:
                    arrivals.setdefault(new, []).append(now)
                    revision = new
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            if not stop.is_set():
                errors[f"watch: {type(exc).__name__}"] += 1
        finally:
            await conn.close()

    async def until(condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > deadline:
                return False
            await asyncio.sleep(0.005)  # polling a condition, with a deadline
        return True

    async def run() -> None:
        tasks = [asyncio.create_task(watcher()) for _ in range(args.watchers)]
        conn = HttpConnection("127.0.0.1", server.port, token)
        _, body = await conn.send(Request("read", "GET", path))
        await conn.close()  # idle longer than the server's keep-alive: each promotion connects anew
        revision, stable = json.loads(body)["revision"], json.loads(body)["stable"]
        await until(lambda: armed.get(revision, 0) >= args.watchers, 120)
        burst_cpu_before, burst_t0 = server.cpu_seconds(), time.perf_counter()
        for _ in range(args.promotions):
            stable = versions[1] if stable == versions[0] else versions[0]  # back and forth
            body = json.dumps({"version": str(stable)}).encode()
            sent = time.perf_counter()
            status, answer = await conn.send(Request("promote", "POST", f"{path}/promotions", body))
            await conn.close()
            if status != 201:
                errors[f"promote: HTTP {status} {answer[:120]!r}"] += 1
                break
            revision = json.loads(answer)["state"]["revision"]
            if not await until(lambda r=revision: len(arrivals.get(r, [])) >= args.watchers, 30):
                errors[f"watch: {args.watchers - len(arrivals.get(revision, []))} watchers missed revision "
                       f"{revision} within 30 s"] += 1
            latencies.extend(Sample("watch", sent, (t - sent) * 1000.0, 200) for t in arrivals.get(revision, []))
            await until(lambda r=revision: armed.get(r, 0) >= args.watchers, 30)
        burst_cpu_after, burst_s = server.cpu_seconds(), time.perf_counter() - burst_t0
        burst_window.append(burst_s)
        if burst_cpu_before is not None and burst_cpu_after is not None:
            burst_cpu.append((burst_cpu_after - burst_cpu_before) / burst_s)
        # idle: every watch re-armed and held; let the server take in the last requests, then measure
        await asyncio.sleep(IDLE_SETTLE_S)
        cpu_before, t0 = server.cpu_seconds(), time.perf_counter()
        await asyncio.sleep(args.idle_seconds)  # the measured idle window
        cpu_after = server.cpu_seconds()
        if cpu_before is not None and cpu_after is not None:
            idle_cpu.append((cpu_after - cpu_before) / (time.perf_counter() - t0))
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    own_before = time.process_time()
    started = time.perf_counter()
    run_loop(run())
    client_cpu = (time.process_time() - own_before) / (time.perf_counter() - started)
    phase = f"watch ({args.watchers} watchers, {args.promotions} promotions)"
    return [
        PhaseResult(backend, server.workers, phase, "watch", burst_window[0] if burst_window else 0.0, latencies,
                    errors, burst_cpu[0] if burst_cpu else None, client_cpu),
        PhaseResult(backend, server.workers, f"idle ({args.watchers} held watches, {args.idle_seconds:g} s)",
                    "idle", args.idle_seconds, [], Counter(), idle_cpu[0] if idle_cpu else None, None),
    ]


# ---- profiling ---------------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(server: ServerProcess, directory: Path | None, name: str, seconds: float) -> Iterator[None]:
    """py-spy samples the server while the phase runs; prints the hottest frames afterwards."""
    if directory is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{name}.txt"
    # --gil: only the thread holding the GIL is sampled, so the shares are where the (one core
    # of) CPU goes, not where the 40 pool threads stand waiting for it
    proc = subprocess.Popen([py_spy, "record", "--nonblocking", "--gil", "--format", "raw", "-d", str(int(seconds)),
                             "-o", str(out), "-p", str(server.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        _, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            log(f"py-spy failed: {err.decode(errors='replace')[-300:]}")
        elif out.exists():
            log(f"profile of {name} in {out}\n{hot_frames(out)}")


def hot_frames(collapsed: Path, top: int = 12) -> str:
    """Self and inclusive sample shares from py-spy's collapsed stacks (`frame;frame;… count`)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return "(no samples)"
    ours = [(f, n) for f, n in inclusive.most_common() if "(bot/" in f or "(storage/" in f][:top]
    lines = ["  self:"] + [f"    {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["  inclusive (modelbot code):"] + [f"    {n / total:6.1%}  {f}" for f, n in ours]
    return "\n".join(lines)


# ---- one backend ----------------------------------------------------------------------------------


def bench_backend(name: str, database_url: str, args: argparse.Namespace, workdir: Path) -> list[PhaseResult]:
    from bot.domain.registry import Registry
    from bot.domain.tokens import SCOPES, Tokens
    from storage.db import Database, DatabaseSettings

    db = Database(DatabaseSettings(url=database_url))
    try:
        db.upgrade()
        log(f"{name}: bulk-loading {args.models} × {args.versions} (not measured) …")
        cfg = Config(models=args.models, versions=args.versions, calls=0, warmup=0, rounds=0, seed=args.seed,
                     cold_runs=0)
        load_s, rows = bulk_load(db, cfg)
        log(f"  loaded in {load_s:.1f} s: {rows}")
        registry = Registry(db)
        _, token = Tokens(registry).create("bench", ",".join(SCOPES), actor="bench", now=registry.clock())
    finally:
        db.dispose()
    policy = workdir / "modelbot.toml"
    policy.write_text(POLICY)
    results: list[PhaseResult] = []
    for workers in args.workers:
        server = ServerProcess(database_url, policy, workers, workdir)
        log(f"{name}: `modelbot serve --workers {workers}` pid {server.pid} on port {server.port}")
        try:
            results += bench_server(name, server, token, args)
        finally:
            server.stop()
    return results


def bench_server(name: str, server: ServerProcess, token: str, args: argparse.Namespace) -> list[PhaseResult]:
    models = args.models
    reads: list[Callable[[random.Random], Request]] = [lambda r: read_request(r, models)] * args.clients
    writes: list[Callable[[random.Random], Request]] = [lambda r: register_request(r, models)] * args.clients
    writers = max(1, args.clients // 10)
    mixed = writes[:writers] + reads[: args.clients - writers]
    _check_answers(server, token, models)
    paced = f"paced mixed ({1 / args.interval:g}/s each)" if args.interval else None
    phases = [("reads", reads, None), ("registers", writes, None), ("mixed", mixed, None)]
    if paced:
        phases.append((paced, mixed, args.interval))
    phases = [p for p in phases if p[0].split()[0] in args.phases]
    profile = args.profile if server.workers == 1 else None
    results: list[PhaseResult] = []
    for phase, mix, interval in phases:
        log(f"{name} ×{server.workers}: phase {phase}, {len(mix)} clients, {args.warmup:g} s warm-up + "
            f"{args.seconds:g} s …")
        with profiled(server, profile, f"{name.lower()}-{phase.split()[0]}", args.warmup + args.seconds):
            results += run_phase(name, phase, server, token, mix, args.seconds, args.warmup, args.seed, interval)
    if args.watchers and "watch" in args.phases:
        log(f"{name} ×{server.workers}: watch, {args.watchers} watchers, {args.promotions} promotions …")
        with profiled(server, profile, f"{name.lower()}-watch", args.idle_seconds + 5 * args.promotions + 10):
            results += run_watch(name, server, token, args)
    return results


def _check_answers(server: ServerProcess, token: str, models: int) -> None:
    """Fail before timing if the server does not answer what the bench expects."""

    async def check() -> None:
        conn = HttpConnection("127.0.0.1", server.port, token)
        status, body = await conn.send(read_request(random.Random(1), models))
        state = json.loads(body)
        assert status == 200 and state["stable"] is not None and state["revision"] >= 1, (status, body)
        status, body = await conn.send(register_request(random.Random(2), models))
        assert status == 201 and json.loads(body)["version"] > 1, (status, body)
        await conn.close()

    run_loop(check())


# ---- report ------------------------------------------------------------------------------------


def report(results: list[PhaseResult], args: argparse.Namespace, load: tuple[float, float, float]) -> str:
    rows = []
    for r in results:
        cpu = "–" if r.server_cpu is None else f"{r.server_cpu * 100:.0f} %"
        cpu += "" if r.client_cpu is None else f" / {r.client_cpu * 100:.0f} %"
        if r.kind == "idle":
            rows.append([r.backend, r.workers, r.phase, "held watches", "–", 0, "–", "–", "–", "–", "≈ 0 CPU",
                         "met" if r.server_cpu is not None and r.server_cpu < 0.02 else "missed", cpu, "–"])
            continue
        ok = r.ok
        failed = len(r.samples) - len(ok) + sum(v for k, v in r.errors.items() if "HTTP" not in k or r.kind == "watch")
        target = f"p99 ≤ {r.target_ms:g} ms"
        closed_read = r.kind == "read" and not r.phase.startswith("paced")
        if closed_read and r.phase == "reads":
            target += f", ≥ {READ_THROUGHPUT_TARGET:,.0f}/s"
        if not ok:
            rows.append([r.backend, r.workers, r.phase, r.kind, 0, failed, "–", "–", "–", "–", target, "missed", cpu, "–"])
            continue
        p = percentiles(ok, (50, 99))
        throughput = len(ok) / r.seconds if r.seconds and r.kind != "watch" else None
        # server CPU per answer (per watcher reached, for the watch): what the load cannot inflate much
        per = None if r.server_cpu is None or not r.seconds else r.server_cpu * r.seconds / len(ok) * 1000
        met = p["p99"] <= r.target_ms and not failed
        if closed_read and r.phase == "reads":
            met = met and throughput is not None and throughput >= READ_THROUGHPUT_TARGET
        rows.append([r.backend, r.workers, r.phase, r.kind, f"{len(ok):,}", failed,
                     "–" if throughput is None else f"{throughput:,.0f}/s", f"{p['p50']:.1f}", f"{p['p99']:.1f}",
                     f"{max(ok):.1f}", target, "met" if met else "missed", cpu, "–" if per is None else f"{per:.2f}"])
    headers = ["backend", "workers", "phase", "request", "ok", "failed", "throughput", "p50 ms", "p99 ms", "max ms",
               "target", "verdict", "CPU server / clients", "server CPU ms per answer"]
    head = (f"API at {args.clients} concurrent clients, {args.models:,} models × {args.versions} versions, "
            f"{args.seconds:g} s per phase after {args.warmup:g} s warm-up, {os.cpu_count()} CPUs, load average "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) at the start, shared machine\n\n")
    errors = [f"{r.backend} ×{r.workers} {r.phase}: {k} × {v}" for r in results for k, v in r.errors.items()]
    return head + render_table(headers, rows) + ("\n\nErrors:\n" + "\n".join(errors) if errors else "")


def _workers(raw: str) -> list[int]:
    try:
        values = [int(v) for v in raw.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r}: give worker counts like 1,2") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{raw!r}: give worker counts like 1,2")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds discarded at the start of each phase")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--interval", type=float, default=0.5,
                        help="seconds between requests of one client in the paced phase (0: no paced phase)")
    parser.add_argument("--workers", type=_workers, default=[1, 2], help="`serve --workers` values to run (1,2)")
    parser.add_argument("--watchers", type=int, default=1000, help="held watches in the watch phase (0: none)")
    parser.add_argument("--promotions", type=int, default=5, help="promotions timed in the watch phase")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="seconds the server's CPU is measured while the watches wait")
    parser.add_argument("--phases", type=lambda raw: set(raw.split(",")), default=set(PHASES),
                        help=f"which phases to run (default all: {','.join(PHASES)})")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles of the server")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load = os.getloadavg()
    results: list[PhaseResult] = []
    with tempfile.TemporaryDirectory(prefix="modelbot-bench-api-") as tmp:
        workdir = Path(tmp)
        results += bench_backend("SQLite", f"sqlite:///{workdir / 'bench.db'}", args, workdir)
        server_url = next((os.environ[k] for k in POSTGRES_ENV if os.environ.get(k)), None)
        if server_url and not args.skip_postgres:
            with fresh_postgres_database(server_url) as url:
                results += bench_backend("PostgreSQL", url, args, workdir)
        elif not args.skip_postgres:
            log(f"PostgreSQL skipped: set one of {', '.join(POSTGRES_ENV)}")
    print(report(results, args, load))
    end = os.getloadavg()
    print(f"\nLoad average at the end: {end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f}")
    return 0  # a missed target is a finding, printed in the table, not a crash


if __name__ == "__main__":
    sys.exit(main())
