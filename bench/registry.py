"""Registry benchmark: modelbot (SQLite, PostgreSQL) against MLflow's registry, same data, same run.

    python -m bench.registry [--models 1000] [--versions 100] [--calls 1000] [--rounds 10]
                             [--skip-mlflow] [--skip-postgres] [--cold-runs 10] [--keep]

Why it exists: issue 2, acceptance 5. The registry must stay fast at a real company's size
(thousands of models, hundreds of versions each), and "fast" only means something next to
what a team would otherwise run, so MLflow's registry gets the same data shape in the same
run and the table prints the ratio.

What is measured, and what is not:

* **Loading is not measured.** 1,000 models × 100 versions (3 metrics, 3 params, 2 tags
  each), one `register` audit row per version and two environments per model (production
  on v100 with v99 as previous, staging on v100, with their promote audit rows) are
  bulk-inserted with SQLAlchemy core `INSERT`s into the `storage.models` tables inside one
  transaction, after Alembic created the schema. Registering 100k versions through the API
  would take minutes and tell nothing about a read at that size. On PostgreSQL the bench
  then runs `ANALYZE`, standing in for the autovacuum a long-lived server would have done;
  SQLite gets no statistics because modelbot never creates them.
* **Measured** through the real domain API (`bot.domain.registry.Registry`,
  `bot.domain.compare.compare`), one call at a time on random models, after warm-up calls:
  list models (page of 50 at a random offset), list versions (newest 20, and all 100),
  show a version, show `@production`, compare two versions, register a new version,
  promote. p50/p99 over `--calls` calls each; reads run before writes.
* **MLflow 3.17.2** runs in its own cached virtualenv `bench/.venv-mlflow` (it must not be
  a product dependency, and 3.18 does not install here): `bench/registry_mlflow_worker.py`
  lets MLflow create its schema, bulk-inserts the same shape into MLflow's own tables
  (see that file) and times `MlflowClient` calls in-process on a `sqlite:///` file.
* **Interleaved**: these machines are shared and their load changes minute by minute, so
  each operation is timed in `--rounds` short blocks that alternate SQLite, PostgreSQL and
  MLflow (order rotating), instead of one tool after the other; all three see the same
  load. Per-call thread CPU time is recorded too, and the CPU-time ratio is printed next to
  the wall-time ratio: it moves much less with other people's load.
* **Cold start**: median wall (and CPU) time of whole `modelbot` processes against the bench's
  SQLite file — `--help`, `show MODEL 1`, `list`, `history MODEL`, `compare MODEL 1 2` and
  `status MODEL`, the read verbs a pipeline or a person at a terminal runs — alternating with
  `import mlflow` + one `get_model_version` in MLflow's venv. `--cold-only` measures just these
  (no per-call tables), e.g. `--cold-only --models 50 --versions 10 --skip-postgres`.

Targets (issue 2, issue 12): every read ≤ 5 ms p99 and promote ≤ 20 ms p99 on SQLite; each
operation at least 5× faster than MLflow's equivalent (ratio = MLflow p50 / modelbot SQLite p50);
each cold read verb ≤ 400 ms, and cold `status` within 20 % of cold `show`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from bench._common import (
    BENCH_DIR,
    JsonLinesWorker,
    LatencyStats,
    ensure_venv,
    fmt_ratio,
    peak_rss_of,
    render_table,
)
from bot.domain.compare import compare
from bot.domain.registry import NewVersion, Registry
from storage.db import Database, DatabaseSettings, normalise_url
from storage.models import AuditEvent, Deployment, ModelVersion, RegisteredModel
from storage.queries import registry as queries

MLFLOW_REQUIREMENTS = ("mlflow==3.17.2",)  # 3.18.0's mlflow-skinny is not on the index here
MLFLOW_VENV = Path(os.environ.get("MODELBOT_MLFLOW_VENV") or BENCH_DIR / ".venv-mlflow")
MLFLOW_WORKER = BENCH_DIR / "registry_mlflow_worker.py"
POSTGRES_ENV = ("MODELBOT_BENCH_POSTGRES_URL", "MODELBOT_TEST_POSTGRES_URL")
READ_P99_TARGET_MS = 5.0
PROMOTE_P99_TARGET_MS = 20.0
RATIO_TARGET = 5.0
COLD_START_TARGET_S = 0.400
STATUS_VS_SHOW_TARGET = 1.20
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
ENVIRONMENTS = ("production", "staging")


@dataclass(frozen=True)
class Operation:
    """One row of the table: our operation, its MLflow counterpart and the target it must meet."""

    key: str
    label: str
    mlflow_key: str | None
    mlflow_label: str
    p99_target_ms: float | None


OPERATIONS = (
    Operation("list_models", "list models (page of 50)", "search_registered_models",
              "search_registered_models (max 50, page token)", READ_P99_TARGET_MS),
    Operation("list_versions_20", "list versions (newest 20)", "search_model_versions_20",
              "search_model_versions name='m' (max 20, version DESC)", READ_P99_TARGET_MS),
    Operation("list_versions_all", "list versions (all {versions})", "search_model_versions_all",
              "search_model_versions name='m' (defaults: all {versions})", READ_P99_TARGET_MS),
    Operation("show", "show a version", "get_model_version", "get_model_version", READ_P99_TARGET_MS),
    Operation("show_env", "show @production", "get_model_version_by_alias",
              "get_model_version_by_alias", READ_P99_TARGET_MS),
    Operation("compare", "compare 2 versions", None, "— (no registry equivalent)", READ_P99_TARGET_MS),
    Operation("register", "register a version (3 metrics, 3 params, 2 tags)", "create_model_version",
              "create_model_version (2 tags)", None),
    Operation("promote", "promote to production", "set_registered_model_alias",
              "set_registered_model_alias", PROMOTE_P99_TARGET_MS),
)


@dataclass(frozen=True)
class Config:
    models: int
    versions: int
    calls: int
    warmup: int
    rounds: int
    seed: int
    cold_runs: int


@dataclass
class Samples:
    """Per-call wall and thread-CPU milliseconds of one operation on one backend."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def extend(self, wall: list[float], cpu: list[float]) -> None:
        self.wall_ms.extend(wall)
        self.cpu_ms.extend(cpu)


@dataclass
class BackendResult:
    """What one backend produced; `note` explains a column that was not run."""

    name: str
    load_s: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    samples: dict[str, Samples] = field(default_factory=dict)
    note: str | None = None

    def stats(self, key: str | None) -> LatencyStats | None:
        found = self.samples.get(key) if key else None
        return LatencyStats.of(found.wall_ms) if found and found.wall_ms else None

    def cpu_p50(self, key: str | None) -> float | None:
        found = self.samples.get(key) if key else None
        return statistics.median(found.cpu_ms) if found and found.cpu_ms else None


class Backend(Protocol):
    """Something that times `calls` calls of an operation and returns (wall ms, CPU ms)."""

    result: BackendResult

    def run(self, key: str, calls: int, warmup: int) -> tuple[list[float], list[float]]: ...


def model_name(index: int) -> str:
    """Same names as the MLflow worker, so both registries hold the same data."""
    return f"model-{index:04d}"


def log(message: str) -> None:
    """Progress goes to stderr so stdout carries only the report."""
    print(f"[bench.registry {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- loading (not measured) ----------------------------------------------------------------


def bulk_load(db: Database, cfg: Config) -> tuple[float, dict[str, int]]:
    """Fill an upgraded, empty modelbot database with the bench's data in one transaction.

    Core `INSERT`s on the ORM tables (not `Registry.register`): the rows are the ones the
    domain writes — same columns, JSON shapes, audit rows and deployment revisions — at
    bulk speed, because what the bench measures is reading and writing at this size, not
    how long it takes to get there. Ids come from the database (no explicit ids), so
    PostgreSQL's sequences stay right for the `register` calls measured afterwards.
    """
    start = time.perf_counter()
    models_t = RegisteredModel.__table__  # type: ignore[attr-defined]
    versions_t = ModelVersion.__table__  # type: ignore[attr-defined]
    deployments_t = Deployment.__table__  # type: ignore[attr-defined]
    audit_t = AuditEvent.__table__  # type: ignore[attr-defined]
    v_last = cfg.versions
    with db.engine.begin() as conn:
        conn.execute(models_t.insert(), [
            {"name": model_name(m), "name_key": model_name(m), "description": f"bench model {m}",
             "owner": f"team-{m % 17}", "created_at": BASE_TIME + timedelta(hours=m), "latest_version": v_last}
            for m in range(cfg.models)
        ])
        ids = dict(conn.execute(sa.select(models_t.c.name_key, models_t.c.id)).all())
        chunk = max(1, 20_000 // max(1, cfg.versions))  # models per executemany: bounded memory
        for first in range(0, cfg.models, chunk):
            batch = range(first, min(cfg.models, first + chunk))
            conn.execute(versions_t.insert(), [
                _version_row(ids[model_name(m)], m, v) for m in batch for v in range(1, v_last + 1)
            ])
            conn.execute(audit_t.insert(), [
                {"at": BASE_TIME + timedelta(hours=m, minutes=v), "actor": "ci-bot", "model_id": ids[model_name(m)],
                 "environment": None, "action": "register", "from_version": None, "to_version": v,
                 "revision": None, "reason": None, "request_id": None}
                for m in batch for v in range(1, v_last + 1)
            ])
        # production: promote v(n-1) then vN (so `previous` is set); staging: promote vN
        moves: list[tuple[int, str, int | None, int, int]] = []
        for m in range(cfg.models):
            if v_last > 1:
                moves.append((m, "production", None, v_last - 1, 1))
                moves.append((m, "production", v_last - 1, v_last, 2))
            else:
                moves.append((m, "production", None, v_last, 1))
            moves.append((m, "staging", None, v_last, 1))
        conn.execute(audit_t.insert(), [
            {"at": BASE_TIME + timedelta(days=400, minutes=rev), "actor": "carol", "model_id": ids[model_name(m)],
             "environment": env, "action": "promote", "from_version": old, "to_version": new, "revision": rev,
             "reason": None, "request_id": f"load-{m}-{env}-{rev}"}
            for m, env, old, new, rev in moves
        ])
        conn.execute(deployments_t.insert(), [
            {"model_id": ids[model_name(m)], "environment": env, "stable_version": v_last,
             "previous_version": (v_last - 1 if env == "production" and v_last > 1 else None),
             "canary_version": None, "canary_weight": 0, "revision": (2 if env == "production" and v_last > 1 else 1),
             "updated_at": BASE_TIME + timedelta(days=400)}
            for m in range(cfg.models) for env in ENVIRONMENTS
        ])
    if not db.is_sqlite:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    with db.read() as session:
        counts = queries.row_counts(session)
    return time.perf_counter() - start, counts


def _version_row(model_id: int, m: int, v: int) -> dict[str, Any]:
    return {
        "model_id": model_id, "version": v, "artifact_uri": f"s3://models/{model_name(m)}/{v}",
        "run_id": f"{m:06d}{v:06d}", "source": f"{m * 1000 + v:040x}", "dataset_fingerprint": f"sha256:{m}-{v // 10}",
        "description": None,
        "metrics": {"auc": 0.80 + (v % 17) / 100, "loss": 0.50 - (v % 13) / 100, "f1": 0.70 + (v % 11) / 100},
        "params": {"lr": str(0.001 * (1 + v % 5)), "depth": str(4 + v % 6), "optimizer": "adam"},
        "tags": {"team": f"team-{m % 17}", "commit": f"{m * 1000 + v:040x}"},
        "created_by": "ci-bot", "created_at": BASE_TIME + timedelta(hours=m, minutes=v), "status": "ready",
    }


# ---- modelbot backends ----------------------------------------------------------------------


def timed(call: Callable[[], object], calls: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall and thread-CPU ms per call, warm-up discarded (the MLflow worker does the same).

    Thread CPU covers all of SQLite's work (it runs in this thread); on PostgreSQL it is
    the client's share only.
    """
    for _ in range(warmup):
        call()
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(calls):
        w0, c0 = time.perf_counter(), time.thread_time()
        call()
        c1, w1 = time.thread_time(), time.perf_counter()
        wall.append((w1 - w0) * 1000.0)
        cpu.append((c1 - c0) * 1000.0)
    return wall, cpu


class ModelbotBackend:
    """The domain API on one database; one seeded random stream per operation.

    The seeds are the same for SQLite and PostgreSQL (and the MLflow worker), so each sees
    the same sequence of models and versions.
    """

    def __init__(self, name: str, db: Database, cfg: Config, load_s: float, rows: dict[str, int]) -> None:
        self.db, self.cfg = db, cfg
        self.registry = Registry(db)
        self.result = BackendResult(name, load_s, rows)
        self.rng = {op.key: random.Random(f"{cfg.seed}:{op.key}") for op in OPERATIONS}
        self.stable = dict.fromkeys((model_name(m) for m in range(cfg.models)), cfg.versions)
        self.registered = 0
        self.calls: dict[str, Callable[[], object]] = {
            "list_models": self.list_models, "list_versions_20": self.list_versions_20,
            "list_versions_all": self.list_versions_all, "show": self.show, "show_env": self.show_env,
            "compare": self.compare, "register": self.register, "promote": self.promote,
        }
        _sanity_check(self.registry, cfg)

    def run(self, key: str, calls: int, warmup: int) -> tuple[list[float], list[float]]:
        return timed(self.calls[key], calls, warmup)

    def pick(self, op: str) -> str:
        return model_name(self.rng[op].randrange(self.cfg.models))

    def list_models(self) -> object:
        return self.registry.list_models(offset=self.rng["list_models"].randrange(max(1, self.cfg.models - 50)),
                                         limit=50)

    def list_versions_20(self) -> object:
        return self.registry.list_versions(self.pick("list_versions_20"), limit=20)

    def list_versions_all(self) -> object:
        return self.registry.list_versions(self.pick("list_versions_all"), limit=min(self.cfg.versions, 500))

    def show(self) -> object:
        return self.registry.show(self.pick("show"), str(self.rng["show"].randint(1, self.cfg.versions)))

    def show_env(self) -> object:
        return self.registry.show(self.pick("show_env"), "@production")

    def compare(self) -> object:
        r = self.rng["compare"]
        a, b = r.sample(range(1, self.cfg.versions + 1), 2) if self.cfg.versions > 1 else (1, 1)
        return compare(self.registry.versions(self.pick("compare"), [str(a), str(b)]))

    def register(self) -> object:
        self.registered += 1
        i = self.registered
        return self.registry.register(NewVersion(
            model=self.pick("register"), artifact_uri=f"s3://models/new/{i}", actor="bench",
            metrics={"auc": 0.9, "loss": 0.3, "f1": 0.8}, params={"lr": "0.01", "depth": "6", "optimizer": "adam"},
            tags={"team": "bench", "commit": f"{i:040x}"},
        ))

    def promote(self) -> object:
        """A version other than the one serving, so every call really moves the pointer."""
        name = self.pick("promote")
        target = self.rng["promote"].randint(1, self.cfg.versions)
        if target == self.stable[name]:
            target = target % self.cfg.versions + 1
        moved = self.registry.promote(name, str(target), "production", actor="bench")
        self.stable[name] = target
        return moved


def _sanity_check(registry: Registry, cfg: Config) -> None:
    """Fail before timing if the loaded data is not what the domain expects to read."""
    name = model_name(min(1, cfg.models - 1))
    page = registry.list_versions(name, limit=20)
    assert page.total == cfg.versions and page.items[0].version == cfg.versions, page
    shown = registry.show(name, "@production")
    assert shown.version == cfg.versions and "production" in shown.serving, shown
    assert registry.list_models(limit=50).total == cfg.models
    if cfg.versions > 1:
        assert registry.environment_state(name, "production").previous == cfg.versions - 1
        assert len(compare(registry.versions(name, ["1", "2"])).metrics) == 3


def open_sqlite(cfg: Config, path: Path, stack: contextlib.ExitStack) -> ModelbotBackend:
    db = Database(DatabaseSettings(url=f"sqlite:///{path}"))
    stack.callback(db.dispose)
    db.upgrade()
    log(f"SQLite {path}: bulk-loading {cfg.models} × {cfg.versions} (not measured) …")
    load_s, rows = bulk_load(db, cfg)
    log(f"  loaded in {load_s:.1f} s: {rows}")
    return ModelbotBackend("SQLite", db, cfg, load_s, rows)


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new database on the server (the role may CREATE DATABASE), dropped afterwards."""
    admin = sa.create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    name = f"modelbot_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(normalise_url(server_url)).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def open_postgres(cfg: Config, server_url: str, stack: contextlib.ExitStack) -> ModelbotBackend:
    url = stack.enter_context(fresh_postgres_database(server_url))
    db = Database(DatabaseSettings(url=url))
    stack.callback(db.dispose)  # runs before the DROP DATABASE registered above
    db.upgrade()
    log(f"PostgreSQL {db.engine.url.database}: bulk-loading (not measured) …")
    load_s, rows = bulk_load(db, cfg)
    log(f"  loaded in {load_s:.1f} s: {rows}")
    return ModelbotBackend("PostgreSQL", db, cfg, load_s, rows)


# ---- MLflow -------------------------------------------------------------------------------


class MlflowBackend:
    """The worker in MLflow's venv, loaded once and then asked for blocks of calls."""

    def __init__(self, cfg: Config, db_path: Path, stack: contextlib.ExitStack) -> None:
        self.python = ensure_venv(MLFLOW_VENV, MLFLOW_REQUIREMENTS, log=log)
        self.db_path = db_path
        params = db_path.with_suffix(".params.json")
        params.write_text(json.dumps({
            "db_path": str(db_path), "models": cfg.models, "versions": cfg.versions, "seed": cfg.seed}))
        log(f"MLflow {db_path}: schema by MLflow, bulk-loading its tables (not measured) …")
        self.worker = stack.enter_context(JsonLinesWorker(
            [str(self.python), str(MLFLOW_WORKER), str(params)],
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}))
        ready = self.worker.read()
        self.result = BackendResult(f"MLflow {ready['mlflow_version']}", ready["load_s"], ready["rows"])
        log(f"  loaded in {ready['load_s']:.1f} s: {ready['rows']}")

    def run(self, key: str, calls: int, warmup: int) -> tuple[list[float], list[float]]:
        reply = self.worker.request({"op": key, "calls": calls, "warmup": warmup})
        return reply["wall_ms"], reply["cpu_ms"]


# ---- interleaved measurement ----------------------------------------------------------------


def measure(cfg: Config, participants: list[tuple[Backend, str | None]], op: Operation) -> None:
    """Time one operation on every backend in alternating blocks, so all see the same load."""
    active = [(b, k) for b, k in participants if k is not None]
    for backend, key in active:
        backend.run(key, 0, cfg.warmup)  # type: ignore[arg-type]
        backend.result.samples[key] = Samples()  # type: ignore[index]
    rounds = max(1, min(cfg.rounds, cfg.calls))
    done = 0
    for r in range(rounds):
        block = (cfg.calls * (r + 1)) // rounds - done
        done += block
        order = active[r % len(active):] + active[: r % len(active)]
        for backend, key in order:
            backend.result.samples[key].extend(*backend.run(key, block, 0))  # type: ignore[index, arg-type]
    log(f"  {op.key:<18} " + "  ".join(
        f"{b.result.name}: {b.result.stats(k).cell()}" for b, k in active  # type: ignore[union-attr]
    ))


# ---- cold start ---------------------------------------------------------------------------


def modelbot_argv() -> list[str]:
    """The installed console script next to this interpreter, as a pipeline would call it."""
    script = Path(sys.executable).parent / "modelbot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


@dataclass
class ColdStart:
    """Per-process wall and CPU seconds; the first (page-cache warming) run is not kept."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median_wall_s(self) -> float:
        return statistics.median(self.wall_s) if self.wall_s else math.nan

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_s) if self.cpu_s else math.nan


def cold_commands(cfg: Config) -> dict[str, list[str]]:
    """The modelbot read verbs timed from a cold start (the order of the report)."""
    name = model_name(min(1, cfg.models - 1))
    return {"--help": ["--help"], "show": ["show", name, "1"], "list": ["list"], "history": ["history", name],
            "compare": ["compare", name, "1", str(min(2, cfg.versions))], "status": ["status", name]}


def cold_starts(cfg: Config, sqlite_path: Path, mlflow_python: Path | None,
                mlflow_db: Path | None, workdir: Path) -> dict[str, ColdStart]:
    """Alternate the modelbot commands and the MLflow process; a failing command is reported, not fatal.

    CPU (the child's own user + system time) is kept beside wall time because these
    machines are shared: wall time rises with other people's load, CPU time much less.
    """
    name = model_name(min(1, cfg.models - 1))
    env = {**os.environ, "MODELBOT_DATABASE_URL": f"sqlite:///{sqlite_path}"}
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        key: ([*modelbot_argv(), *args], env) for key, args in cold_commands(cfg).items()}
    if mlflow_python is not None and mlflow_db is not None:
        uri = f"sqlite:///{mlflow_db}"
        code = (f"import mlflow; c = mlflow.MlflowClient(tracking_uri={uri!r}, registry_uri={uri!r}); "
                f"print(c.get_model_version({name!r}, '1').source)")
        commands["mlflow"] = ([str(mlflow_python), "-c", code], {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    out = {key: ColdStart() for key in commands}
    for i in range(cfg.cold_runs + 1):
        for key, (argv, cmd_env) in commands.items():
            if out[key].error:
                continue
            run = peak_rss_of(argv, env=cmd_env, cwd=workdir)
            if run.returncode != 0:
                last = (run.stderr.strip().splitlines() or ["no stderr"])[-1]
                out[key].error = f"exit {run.returncode}: {last[:300]}"
            elif i:
                out[key].wall_s.append(run.wall_seconds)
                out[key].cpu_s.append(run.cpu_seconds)
    for key, cold in out.items():
        log(f"cold {key}: median {_ms(cold.median_wall_s)} wall, {_ms(cold.median_cpu_s)} CPU {cold.error or ''}")
    return out


def cold_report(cfg: Config, cold: dict[str, ColdStart]) -> tuple[list[str], bool]:
    """A table of the cold read verbs beside MLflow's cold process; returns (lines, targets met)."""
    ml = cold.get("mlflow")
    mlflow_ok = ml is not None and not ml.error and ml.wall_s
    show = cold.get("show")
    rows, all_met = [], True
    for key, args in cold_commands(cfg).items():
        mb = cold.get(key)
        if mb is None:
            continue
        if mb.error:
            all_met = False
            rows.append([f"modelbot {' '.join(args)}", f"FAILED ({mb.error})", "", "", "", ""])
            continue
        checks = [f"≤ {COLD_START_TARGET_S * 1000:.0f} ms {_verdict(mb.median_wall_s <= COLD_START_TARGET_S)}"]
        all_met &= mb.median_wall_s <= COLD_START_TARGET_S
        if key == "status" and show is not None and not show.error:
            ratio = mb.median_wall_s / show.median_wall_s
            ok = ratio <= STATUS_VS_SHOW_TARGET
            all_met &= ok
            checks.append(f"{ratio:.2f}× show (≤ {STATUS_VS_SHOW_TARGET:.2f}×) {_verdict(ok)}")
        rows.append([f"modelbot {' '.join(args)}", _ms(mb.median_wall_s), _ms(mb.median_cpu_s),
                     f"{_ms(min(mb.wall_s))} – {_ms(max(mb.wall_s))}",
                     fmt_ratio(ml.median_wall_s / mb.median_wall_s) if mlflow_ok else "—", "; ".join(checks)])
    if ml is not None:
        rows.append(["MLflow: import mlflow + get_model_version",
                     f"FAILED ({ml.error})" if ml.error else _ms(ml.median_wall_s),
                     "" if ml.error else _ms(ml.median_cpu_s),
                     "" if ml.error else f"{_ms(min(ml.wall_s))} – {_ms(max(ml.wall_s))}", "", ""])
    runs = len(show.wall_s) if show is not None else cfg.cold_runs
    headers = ["cold process", "median wall", "median CPU", "wall min – max",
               "MLflow's wall / this", "targets"]
    return [f"Cold starts ({runs} runs each after one warming run, alternating):", "",
            render_table(headers, rows)], all_met


# ---- report -------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(cfg: Config, sqlite: BackendResult, postgres: BackendResult, mlflow: BackendResult,
           cold: dict[str, ColdStart], load: tuple[float, float]) -> tuple[str, bool]:
    """The one table the issue asks for, plus load and cold-start lines; returns (text, all met)."""
    rows: list[list[str]] = []
    all_met = True
    for op in OPERATIONS:
        ours = sqlite.stats(op.key)
        if ours is None:
            continue
        pg = postgres.stats(op.key)
        theirs = mlflow.stats(op.mlflow_key)
        ratio = theirs.p50_ms / ours.p50_ms if theirs else None
        our_cpu, their_cpu = sqlite.cpu_p50(op.key), mlflow.cpu_p50(op.mlflow_key)
        cpu_ratio = their_cpu / our_cpu if our_cpu and their_cpu else None
        checks: list[str] = []
        if op.p99_target_ms is not None:
            ok = ours.p99_ms <= op.p99_target_ms
            all_met &= ok
            checks.append(f"p99 ≤ {op.p99_target_ms:g} ms {_verdict(ok)}")
        if ratio is not None:
            ok = ratio >= RATIO_TARGET
            all_met &= ok
            checks.append(f"≥ {RATIO_TARGET:g}× {_verdict(ok)}")
        rows.append([
            op.label.format(versions=cfg.versions),
            ours.cell(),
            pg.cell() if pg else "—",
            op.mlflow_label.format(versions=cfg.versions),
            theirs.cell() if theirs else "—",
            fmt_ratio(ratio),
            fmt_ratio(cpu_ratio),
            "; ".join(checks) or "—",
        ])
    headers = ["operation", "modelbot SQLite p50 / p99", "modelbot PostgreSQL p50 / p99", "MLflow operation",
               "MLflow p50 / p99", "ratio (MLflow p50 / SQLite p50)", "same ratio, CPU time",
               "targets (SQLite)"]
    lines = [
        f"Registry benchmark: {cfg.models:,} models × {cfg.versions} versions "
        f"({cfg.models * cfg.versions:,} versions) per registry; {cfg.calls} timed calls per operation and "
        f"backend after {cfg.warmup} warm-up calls, in {cfg.rounds} interleaved rounds; random models; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, 1-min load average {load[0]:.1f} at start and "
        f"{load[1]:.1f} at end (other work on the machine inflates p99 and wall times).",
        "",
        render_table(headers, rows),
        "",
    ]
    for backend in (sqlite, postgres, mlflow):
        if backend.note:
            lines.append(f"- {backend.name}: {backend.note}")
        else:
            lines.append(f"- {backend.name}: bulk load (not measured) {backend.load_s:.1f} s, rows {backend.rows}")
    cold_lines, cold_met = cold_report(cfg, cold)
    all_met &= cold_met
    lines += ["", *cold_lines, ""]
    lines.append(f"- all targets met: {'yes' if all_met else 'NO'}")
    return "\n".join(lines), all_met


# ---- entry point --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.registry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000, help="registered models (default 1000)")
    parser.add_argument("--versions", type=int, default=100, help="versions per model (default 100)")
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per operation and backend")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls before each operation")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved blocks per operation")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--cold-runs", type=int, default=10, help="processes per cold-start median")
    parser.add_argument("--skip-mlflow", action="store_true", help="no MLflow venv, column, or ratio")
    parser.add_argument("--skip-postgres", action="store_true", help="no PostgreSQL column")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files (path printed) for profiling")
    parser.add_argument("--cold-only", action="store_true", help="only the cold-start table (skip the per-call timings)")
    args = parser.parse_args(argv)
    if min(args.models, args.versions, args.calls, args.rounds, args.cold_runs) < 1 or args.warmup < 0:
        parser.error("--models, --versions, --calls, --rounds and --cold-runs must be ≥ 1 (--warmup ≥ 0)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config(args.models, args.versions, args.calls, args.warmup, args.rounds, args.seed, args.cold_runs)
    load_start = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="modelbot-bench-registry-"))
    try:
        with contextlib.ExitStack() as stack:
            sqlite = open_sqlite(cfg, workdir / "modelbot.db", stack)
            pg_url = next((os.environ[v] for v in POSTGRES_ENV if os.environ.get(v)), None)
            postgres: ModelbotBackend | None = None
            pg_note = None
            if args.skip_postgres:
                pg_note = "skipped (--skip-postgres)"
            elif not pg_url:
                pg_note = f"not run: set {POSTGRES_ENV[0]} to a server URL"
            else:
                postgres = open_postgres(cfg, pg_url, stack)
            mlflow = None if args.skip_mlflow else MlflowBackend(cfg, workdir / "mlflow.db", stack)

            log(f"timing {cfg.calls} calls per operation and backend in {cfg.rounds} interleaved rounds …")
            for op in () if args.cold_only else OPERATIONS:
                if op.key == "promote" and cfg.versions < 2:
                    continue  # nothing to promote to
                participants: list[tuple[Backend, str | None]] = [(sqlite, op.key)]
                if postgres is not None:
                    participants.append((postgres, op.key))
                if mlflow is not None:
                    participants.append((mlflow, op.mlflow_key))
                measure(cfg, participants, op)
            pg_result = postgres.result if postgres else BackendResult("PostgreSQL", note=pg_note)
            ml_result = mlflow.result if mlflow else BackendResult("MLflow", note="skipped (--skip-mlflow)")
            mlflow_python = mlflow.python if mlflow else None
        # databases closed (PostgreSQL dropped, MLflow worker gone) before the cold processes
        cold = cold_starts(cfg, workdir / "modelbot.db", mlflow_python,
                           workdir / "mlflow.db" if mlflow_python else None, workdir)
        text, _ = report(cfg, sqlite.result, pg_result, ml_result, cold, (load_start, os.getloadavg()[0]))
        print(text)
        if args.keep:
            print(f"\n(kept: {workdir})")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
