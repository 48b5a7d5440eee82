"""REST API benchmark: serving-state reads and registers over real HTTP at 50 concurrent clients.

    python -m bench.api [--models 1000] [--versions 100] [--clients 50] [--seconds 30]
                        [--warmup 3] [--skip-postgres] [--profile DIR]

Why it exists: issue 7, acceptance 6. A serving layer polls
`GET /api/v1/models/{m}/environments/production` to learn what to serve, and CI registers
versions with `POST /api/v1/models/{m}/versions`; both must stay fast on a real company's
registry while many clients call at once. Targets: p99 ≤ 20 ms for the read, ≤ 50 ms for the
register, at 50 concurrent clients on the 100k-version registry.

How:

* **Data** (not measured): 1,000 models × 100 versions with their audit rows and deployments,
  bulk-loaded with SQLAlchemy core by `bench.registry.bulk_load` (the same data as the
  registry benchmark), plus one API token with every scope.
* **Server**: a separate process (`python -m bench.api serve`) running exactly what
  `modelbot serve` serves over HTTP (`bot.cli.serving.web_app`: the API mounted at /api/v1 with
  its middlewares) under the production uvicorn configuration (`bot.web.server.make_server`):
  one process, FastAPI's thread pool for the synchronous handlers. The token's rate limit is
  lifted with `MODELBOT_API_RATE_PER_SECOND` (the limiter still runs on every request).
* **Clients**: `--clients` connections with HTTP/1.1 keep-alive, each sending its next
  request as soon as the previous answer arrived (closed loop), from one asyncio event loop
  in this process: a minimal HTTP client, so the clients cost little CPU next to the server
  (these machines may have two cores). Latency is measured from writing the request to
  reading the last byte of the answer, per request; requests started during the first
  `--warmup` seconds are discarded.
* **Phases**, `--seconds` each, closed loop (the acceptance measurement): (a) every client
  reads the serving state of a random model; (b) every client registers a version of a random
  model; (c) mixed, as in production: 90 % of the clients read while 10 % register. Then
  (d) the mixed clients *paced*: each sends one request every `--interval` seconds (50 clients
  at 0.5 s: 100 requests/s, what 50 serving replicas polling twice a second send), latency
  counted from the scheduled send time. A closed loop measures the server saturated (by
  Little's law, p50 ≈ clients / throughput); the paced phase measures it at a realistic load.
  Throughput counts successful answers per second.
* **Backends**: SQLite, and PostgreSQL when `MODELBOT_BENCH_POSTGRES_URL` or
  `MODELBOT_TEST_POSTGRES_URL` names a server (a fresh database is created and dropped).
* `--profile DIR` samples the server with py-spy (`py-spy record --nonblocking --gil`) during
  each phase and prints the hottest frames, to explain a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import REPO_ROOT, percentiles, render_table
from bench.registry import POSTGRES_ENV, Config, bulk_load, fresh_postgres_database, model_name

READ_P99_TARGET_MS = 20.0
REGISTER_P99_TARGET_MS = 50.0
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


def serve(argv: list[str]) -> int:
    """Child process: what `modelbot serve` serves over HTTP, on the bench's database.

    Prints `READY <port>` once uvicorn listens, so the parent waits on a line, not a timer.
    """
    from bot.cli.serving import web_app
    from bot.config.settings import Settings
    from bot.services import open_services
    from bot.web.server import make_server

    parser = argparse.ArgumentParser(prog="python -m bench.api serve")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    services = open_services(Settings.from_env(os.environ), upgrade=False)
    server = make_server(web_app(services, None), "127.0.0.1", args.port)

    def announce() -> None:
        server.ready.wait()
        print(f"READY {server.port}" if server.started else "FAILED", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    finally:
        services.close()
    return 0


class ServerProcess:
    def __init__(self, database_url: str, policy: Path) -> None:
        env = {**os.environ, "MODELBOT_DATABASE_URL": database_url, "MODELBOT_CONFIG": str(policy),
               "MODELBOT_API_RATE_PER_SECOND": RATE_LIFTED, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.api", "serve"], cwd=REPO_ROOT, env=env,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # blocks until the child says it listens (or dies)
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the API server did not start: {line or 'no output'}")
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server so far (Linux), to tell CPU-bound from waiting."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # uvicorn: graceful stop on SIGTERM
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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
    phase: str
    kind: str
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
        return READ_P99_TARGET_MS if self.kind == "read" else REGISTER_P99_TARGET_MS


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
    asyncio.run(run())
    measured_from = t0 + warmup
    cpu_after, own_after = server.cpu_seconds(), time.process_time()
    elapsed = time.perf_counter() - t0
    server_cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / elapsed
    client_cpu = (own_after - own_before) / elapsed
    out = []
    for kind in sorted({s.kind for s in samples}):
        kept = [s for s in samples if s.kind == kind and s.started >= measured_from]
        errs = Counter({k: v for k, v in errors.items() if k.startswith(kind)})
        out.append(PhaseResult(backend, phase, kind, seconds, kept, errs, server_cpu, client_cpu))
    return out


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
    server = ServerProcess(database_url, policy)
    log(f"{name}: API server pid {server.pid} on port {server.port}")
    models = args.models
    reads: list[Callable[[random.Random], Request]] = [lambda r: read_request(r, models)] * args.clients
    writes: list[Callable[[random.Random], Request]] = [lambda r: register_request(r, models)] * args.clients
    writers = max(1, args.clients // 10)
    mixed = writes[:writers] + reads[: args.clients - writers]
    results: list[PhaseResult] = []
    try:
        _check_answers(server, token, models, args.versions)
        paced = f"paced mixed ({1 / args.interval:g}/s each)" if args.interval else None
        phases = [("reads", reads, None), ("registers", writes, None), ("mixed", mixed, None)]
        if paced:
            phases.append((paced, mixed, args.interval))
        for phase, mix, interval in phases:
            log(f"{name}: phase {phase}, {len(mix)} clients, {args.warmup:g} s warm-up + {args.seconds:g} s …")
            with profiled(server, args.profile, f"{name.lower()}-{phase.split()[0]}", args.warmup + args.seconds):
                results += run_phase(name, phase, server, token, mix, args.seconds, args.warmup, args.seed, interval)
    finally:
        server.stop()
    return results


def _check_answers(server: ServerProcess, token: str, models: int, versions: int) -> None:
    """Fail before timing if the server does not answer what the bench expects."""

    async def check() -> None:
        conn = HttpConnection("127.0.0.1", server.port, token)
        status, body = await conn.send(read_request(random.Random(1), models))
        state = json.loads(body)
        assert status == 200 and state["stable"] == versions and state["previous"] == versions - 1, (status, body)
        status, body = await conn.send(register_request(random.Random(2), models))
        assert status == 201 and json.loads(body)["version"] == versions + 1, (status, body)
        await conn.close()

    asyncio.run(check())


# ---- report ------------------------------------------------------------------------------------


def report(results: list[PhaseResult], args: argparse.Namespace) -> str:
    rows = []
    for r in results:
        ok = r.ok
        failed = len(r.samples) - len(ok) + sum(v for k, v in r.errors.items() if "HTTP" not in k)
        if not ok:
            rows.append([r.backend, r.phase, r.kind, 0, failed, "–", "–", "–", "–", f"≤ {r.target_ms:g} ms", "missed"])
            continue
        p = percentiles(ok, (50, 99))
        cpu = "–" if r.server_cpu is None else f"{r.server_cpu * 100:.0f} %"
        cpu += "" if r.client_cpu is None else f" / {r.client_cpu * 100:.0f} %"
        verdict = "met" if p["p99"] <= r.target_ms and not failed else "missed"
        rows.append([r.backend, r.phase, r.kind, f"{len(ok):,}", failed, f"{len(ok) / r.seconds:,.0f}/s",
                     f"{p['p50']:.1f}", f"{p['p99']:.1f}", f"{max(ok):.1f}", f"≤ {r.target_ms:g} ms", verdict, cpu])
    headers = ["backend", "phase", "request", "ok", "failed", "throughput", "p50 ms", "p99 ms", "max ms",
               "p99 target", "target", "CPU server / clients"]
    rows = [row + ["–"] * (len(headers) - len(row)) for row in rows]
    head = (f"API at {args.clients} concurrent clients, {args.models:,} models × {args.versions} versions, "
            f"{args.seconds:g} s per phase after {args.warmup:g} s warm-up, {os.cpu_count()} CPUs\n\n")
    errors = [f"{r.backend} {r.phase}: {k} × {v}" for r in results for k, v in r.errors.items()]
    return head + render_table(headers, rows) + ("\n\nErrors:\n" + "\n".join(errors) if errors else "")


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
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles of the server")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    args = parse_args(argv)
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
    print(report(results, args))
    return 0  # a missed target is a finding, printed in the table, not a crash


if __name__ == "__main__":
    sys.exit(main())
