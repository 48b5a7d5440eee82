"""Prediction-log pulls, part of `python -m bench.monitoring`: incremental reads and SQL pushdown.

- **Incremental pull**: a CSV log of N rows (default 10 M, one day of hourly windows, cached
  under bench/.data/) is pulled once the way the scheduler pulls it (`log_pull.collect` and
  `record_pull`, SQLite registry), then 100 k rows of the next hour are appended and it is pulled
  again. The second pull reads only the new lines; its time is reported as a share of the first
  (target ≤ 5 %).
- **Pushdown** (needs PostgreSQL: MODELBOT_BENCH_POSTGRES_URL, else MODELBOT_TEST_POSTGRES_URL):
  the same N rows in a table (loaded once with COPY into the database `modelbot_bench`, index on
  the timestamp), digested for 24 hourly windows by the database (`log_pushdown`) and by the
  pandas path reading the rows; both times, and the largest relative difference between their
  numbers.

Times are single runs (the steps take tens of seconds; the ratio is the point), wall clock in
this process.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import DATA_DIR

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
FEATURES = ("f0", "f1", "f2", "plan")
DATA_VERSION = 1
CHUNK = 1_000_000


def log(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def _frame(rng: np.random.Generator, n: int, start: float, span: float, first_id: int) -> Any:
    import pandas as pd

    label = rng.integers(0, 2, n)
    score = np.round(np.clip(0.3 * label + rng.uniform(0, 0.7, n), 0, 1), 3)
    return pd.DataFrame({
        "id": np.arange(first_id, first_id + n),
        "timestamp": np.round(start + np.sort(rng.uniform(0, span, n)), 3),
        "prediction": (score > 0.5).astype(np.int64), "label": label, "score": score,
        "latency_ms": np.round(rng.lognormal(3.0, 0.5, n), 3),
        "f0": np.round(rng.normal(0.2, 1.0, n), 5), "f1": np.round(rng.normal(5.0, 2.0, n), 5),
        "f2": np.round(rng.gamma(2.0, 2.0, n), 5),
        "plan": rng.choice(["basic", "pro", "team", "enterprise"], n, p=[0.5, 0.3, 0.15, 0.05]),
    })


def ensure_log(rows: int) -> tuple[Path, Path]:
    """The cached CSV log (one day from T0) and its 100 k-row reference."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"log-v{DATA_VERSION}-{rows}.csv"
    reference = DATA_DIR / f"log-v{DATA_VERSION}-reference.parquet"
    if not path.exists():
        log(f"writing a {rows:,}-row CSV log (cached in {DATA_DIR}) …")
        tmp = path.with_suffix(".tmp")
        day = 86_400.0
        for i, start in enumerate(range(0, rows, CHUNK)):
            n = min(CHUNK, rows - start)
            frame = _frame(np.random.default_rng([7, i]), n, T0.timestamp() + day * start / rows, day * n / rows,
                           start)
            frame.to_csv(tmp, mode="a", header=i == 0, index=False)
        tmp.replace(path)
    if not reference.exists():
        _frame(np.random.default_rng(3), 100_000, T0.timestamp() - 86_400, 86_400, 0)[list(FEATURES)].to_parquet(
            reference, index=False)
    return path, reference


def _registry(tmp: Path) -> Any:
    from bot.domain.registry import NewVersion, Registry
    from storage.db import Database, DatabaseSettings

    db = Database(DatabaseSettings(url=f"sqlite:///{tmp / 'modelbot.db'}"))
    db.upgrade()
    registry = Registry(db, clock=lambda: T0 - timedelta(days=1))
    registry.register(NewVersion(model="churn", artifact_uri="s3://bench/churn", actor="bench"))
    registry.promote("churn", "1", "production", actor="bench")
    return registry


def _pull(registry: Any, source: Any, now: datetime) -> tuple[float, Any]:
    from bot.domain.monitoring import log_pull
    from bot.domain.monitoring.recording import record_pull

    start = time.perf_counter()
    collected = log_pull.collect(registry, source, now)
    record_pull(registry, source.name, collected.samples, now=now, error="; ".join(collected.errors) or None,
                replace=collected.replace, cursor=collected.cursor)
    return time.perf_counter() - start, collected


def incremental(rows: int, appended: int) -> dict[str, Any]:
    """First pull over the whole log, then a pull after `appended` new rows."""
    from bot.domain.monitoring import log_pull
    from bot.domain.monitoring.log_files import Location
    from bot.domain.monitoring.prediction_logs import LogSpec

    base, reference = ensure_log(rows)
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as raw:
        tmp = Path(raw)
        path = tmp / "predictions.csv"
        shutil.copyfile(base, path)
        registry = _registry(tmp)
        spec = LogSpec(model="churn", environment="production", reference=str(reference), features=FEATURES,
                       chunk_rows=CHUNK)
        source = log_pull.LogSource("bench-log", Location(path=str(path)), spec)
        log(f"first pull of the {rows:,}-row log …")
        first, one = _pull(registry, source, T0 + timedelta(days=1, minutes=5))
        extra = _frame(np.random.default_rng(99), appended, (T0 + timedelta(days=1)).timestamp(), 3599.0, rows)
        extra.to_csv(path, mode="a", header=False, index=False)
        log(f"second pull after {appended:,} appended rows …")
        second, two = _pull(registry, source, T0 + timedelta(days=1, hours=1, minutes=5))
        registry.db.dispose()
    errors = one.errors + two.errors
    if errors:
        raise RuntimeError(f"pull failed: {errors}")
    return {"rows": rows, "appended": appended, "first_s": first, "second_s": second, "ratio": second / first,
            "first_samples": len(one.samples), "second_samples": len(two.samples),
            "second_predictions": next(s.value for s in two.samples if s.metric == "predictions")}


# ---- pushdown ---------------------------------------------------------------------------------------


def postgres_url() -> str | None:
    return os.environ.get("MODELBOT_BENCH_POSTGRES_URL") or os.environ.get("MODELBOT_TEST_POSTGRES_URL")


def _bench_database(url: str) -> str:
    import sqlalchemy as sa

    from storage.db import normalise_url

    admin = sa.create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = 'modelbot_bench'").first():
            conn.exec_driver_sql('CREATE DATABASE "modelbot_bench"')
    admin.dispose()
    return sa.engine.make_url(normalise_url(url)).set(database="modelbot_bench").render_as_string(hide_password=False)


def ensure_table(url: str, rows: int) -> tuple[str, str]:
    """(database URL, table) holding the log's rows, loaded once with COPY, indexed on the timestamp."""
    import psycopg
    import sqlalchemy as sa

    path, _ = ensure_log(rows)
    db_url = _bench_database(url)
    table = f"predictions_v{DATA_VERSION}_{rows}"
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        exists = conn.exec_driver_sql(f"SELECT to_regclass('{table}')").scalar()
        count = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar() if exists else 0
    engine.dispose()
    if count == rows:
        return db_url, table
    log(f"loading {rows:,} rows into PostgreSQL table {table} (once) …")
    dsn = sa.engine.make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id BIGINT, timestamp DOUBLE PRECISION, prediction INTEGER, "
                     "label INTEGER, score DOUBLE PRECISION, latency_ms DOUBLE PRECISION, f0 DOUBLE PRECISION, "
                     "f1 DOUBLE PRECISION, f2 DOUBLE PRECISION, plan TEXT)")
        with open(path, "rb") as handle, conn.cursor().copy(
                f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while block := handle.read(1 << 24):
                copy.write(block)
        conn.execute(f"CREATE INDEX ON {table} (timestamp)")
        conn.execute(f"ANALYZE {table}")
    return db_url, table


def pushdown(url: str, rows: int) -> dict[str, Any]:
    """The 24 hourly windows of the table, by the database and by the pandas path."""
    from bot.domain.monitoring.log_files import Location
    from bot.domain.monitoring.log_pushdown import summarise_table
    from bot.domain.monitoring.prediction_logs import LogSpec, reference_of, summarise

    db_url, table = ensure_table(url, rows)
    _, reference_path = ensure_log(rows)
    spec = LogSpec(model="churn", environment="production", version=1, reference=str(reference_path),
                   features=FEATURES, chunk_rows=CHUNK)
    location = Location(sql_url=db_url, table=table)
    envs = ("staging", "production")
    start, end = T0.timestamp(), (T0 + timedelta(days=1)).timestamp()
    log("digest in the database …")
    t = time.perf_counter()
    database = summarise_table(location, spec, environments=envs, start=start, end=end,
                               reference=reference_of(spec))
    db_s = time.perf_counter() - t
    log(f"digest by the pandas path, reading {rows:,} rows from PostgreSQL (slow) …")
    t = time.perf_counter()
    rows_path = summarise(location, spec, environments=envs)
    pandas_s = time.perf_counter() - t
    now = T0 + timedelta(days=2)
    ours = {w.start: w.metrics(now) for w in database.windows}
    theirs = {w.start: w.metrics(now) for w in rows_path.windows}
    worst, compared = 0.0, 0
    for key, metrics in theirs.items():
        for name, value in metrics.items():
            other = ours[key][name]
            scale = max(abs(value), abs(other), 1e-300)
            worst = max(worst, abs(other - value) / scale if value != other else 0.0)
            compared += 1
    same_keys = ours.keys() == theirs.keys() and all(ours[k].keys() == theirs[k].keys() for k in theirs)
    return {"rows": rows, "database_s": db_s, "pandas_s": pandas_s, "windows": len(ours), "compared": compared,
            "max_relative_difference": worst, "same_metrics": same_keys, "speedup": pandas_s / db_s,
            "finite": all(math.isfinite(v) for m in ours.values() for v in m.values())}
