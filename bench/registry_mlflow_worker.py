"""MLflow side of `python -m bench.registry`; runs inside `bench/.venv-mlflow`, never in ours.

Usage: `python registry_mlflow_worker.py PARAMS.json`, then JSON lines on stdin/stdout:
the worker first answers `{"ready": …}` once the registry is loaded, then one reply per
request `{"op": NAME, "calls": N, "warmup": W}` → `{"wall_ms": […], "cpu_ms": […]}`; it
exits when stdin closes. It stays alive between requests so the bench can alternate
short blocks of MLflow and modelbot calls, which then share the machine's load (see
`bench._common.JsonLinesWorker`). Standard library plus MLflow only: it cannot import
modelbot or `bench._common` (another virtualenv). It returns raw samples so the parent
summarises both tools with the same percentile code.

Loading: MLflow creates its own schema (through the client: one registered model, one
version with two tags, one alias), and that first row of each table becomes the template
for bulk `INSERT`s of the whole data set in one SQLite transaction; the template model
is then deleted. Going through `create_model_version` would take ~4 ms × 100k ≈ 7
minutes; the rows written carry every column MLflow itself writes (copied from its own
row), so the calls measured afterwards see a registry MLflow cannot tell from one it
built. The load is not measured. No ANALYZE: neither MLflow nor modelbot runs one on
SQLite.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network calls in the timings

import mlflow  # after the telemetry switch above, which it reads at import
from mlflow.utils.search_utils import SearchUtils

BASE_MS = 1_700_000_000_000
SEED_MODEL = "template-model"


def model_name(index: int) -> str:
    """Same names as the modelbot side, so both registries hold the same data."""
    return f"model-{index:04d}"


def _template(conn: sqlite3.Connection, table: str) -> dict[str, Any]:
    conn.row_factory = sqlite3.Row
    row = conn.execute(f"SELECT * FROM {table} WHERE name = ?", (SEED_MODEL,)).fetchone()
    conn.row_factory = None
    if row is None:
        raise RuntimeError(f"MLflow wrote no template row into {table}")
    return dict(row)


def _insert(conn: sqlite3.Connection, table: str, template: dict[str, Any],
            rows: Iterable[dict[str, Any]]) -> int:
    """executemany over all of the template's columns, each row overriding some of them."""
    columns = list(template)
    quoted = ", ".join('"' + c + '"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    count = 0

    def values() -> Iterable[tuple[Any, ...]]:
        nonlocal count
        for row in rows:
            count += 1
            merged = {**template, **row}
            yield tuple(merged[c] for c in columns)

    conn.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", values())
    return count


def load(client: Any, db_path: str, models: int, versions: int) -> dict[str, int]:
    """Let MLflow create schema and one template row per table, then bulk-insert the data set."""
    client.create_registered_model(SEED_MODEL)
    client.create_model_version(SEED_MODEL, f"s3://models/{SEED_MODEL}/1", tags={"team": "t", "commit": "c"})
    client.set_registered_model_alias(SEED_MODEL, "production", "1")
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        tables = ("registered_models", "model_versions", "model_version_tags", "registered_model_aliases")
        templates = {t: _template(conn, t) for t in tables}
        conn.execute("BEGIN")
        for table in reversed(tables):
            conn.execute(f"DELETE FROM {table} WHERE name = ?", (SEED_MODEL,))

        def each_version() -> Iterable[tuple[int, int]]:
            return ((m, v) for m in range(models) for v in range(1, versions + 1))

        counts = {
            "registered_models": _insert(conn, "registered_models", templates["registered_models"], (
                {"name": model_name(m), "creation_time": BASE_MS + m, "last_updated_time": BASE_MS + m * 1000,
                 "description": None}
                for m in range(models))),
            "model_versions": _insert(conn, "model_versions", templates["model_versions"], (
                {"name": model_name(m), "version": v, "creation_time": BASE_MS + m * 1000 + v,
                 "last_updated_time": BASE_MS + m * 1000 + v, "source": f"s3://models/{model_name(m)}/{v}",
                 "storage_location": f"s3://models/{model_name(m)}/{v}", "description": None}
                for m, v in each_version())),
            "model_version_tags": _insert(conn, "model_version_tags", templates["model_version_tags"], (
                {"name": model_name(m), "version": v, "key": key, "value": value}
                for m, v in each_version()
                for key, value in (("team", f"team-{m % 17}"), ("commit", f"{m * 1000 + v:040x}")))),
            # production and staging serve the newest version, as on the modelbot side
            "registered_model_aliases": _insert(
                conn, "registered_model_aliases", templates["registered_model_aliases"],
                ({"name": model_name(m), "alias": alias, "version": versions}
                 for m in range(models) for alias in ("production", "staging"))),
        }
        conn.execute("COMMIT")
    finally:
        conn.close()
    return counts


class Operations:
    """The timed MLflow calls; one seeded random stream per operation, like the modelbot side."""

    def __init__(self, client: Any, models: int, versions: int, seed: int) -> None:
        self.client, self.models, self.versions = client, models, versions
        self.rng = {op: random.Random(f"{seed}:{op}") for op in
                    ("list_models", "list_versions_20", "list_versions_all", "show", "show_env",
                     "register", "promote")}
        self.created = 0
        self.calls: dict[str, Callable[[], object]] = {
            "search_registered_models": self.search_registered_models,
            "search_model_versions_20": self.search_model_versions_20,
            "search_model_versions_all": self.search_model_versions_all,
            "get_model_version": self.get_model_version,
            "get_model_version_by_alias": self.get_model_version_by_alias,
            "create_model_version": self.create_model_version,
            "set_registered_model_alias": self.set_registered_model_alias,
        }

    def pick(self, op: str) -> str:
        return model_name(self.rng[op].randrange(self.models))

    def search_registered_models(self) -> object:
        offset = self.rng["list_models"].randrange(max(1, self.models - 50))
        # MLflow rejects a token for offset 0: the first page has none
        token = SearchUtils.create_page_token(offset) if offset else None
        return self.client.search_registered_models(max_results=50, page_token=token)

    def search_model_versions_20(self) -> object:
        return self.client.search_model_versions(f"name='{self.pick('list_versions_20')}'", max_results=20,
                                                 order_by=["version_number DESC"])

    def search_model_versions_all(self) -> object:
        return self.client.search_model_versions(f"name='{self.pick('list_versions_all')}'")

    def get_model_version(self) -> object:
        return self.client.get_model_version(self.pick("show"), str(self.rng["show"].randint(1, self.versions)))

    def get_model_version_by_alias(self) -> object:
        return self.client.get_model_version_by_alias(self.pick("show_env"), "production")

    def create_model_version(self) -> object:
        self.created += 1
        return self.client.create_model_version(
            self.pick("register"), f"s3://models/new/{self.created}",
            tags={"team": "bench", "commit": f"{self.created:040x}"})

    def set_registered_model_alias(self) -> object:
        name = self.pick("promote")
        return self.client.set_registered_model_alias(name, "production",
                                                      str(self.rng["promote"].randint(1, self.versions)))


def timed(call: Callable[[], object], calls: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall and thread-CPU ms per call, warm-up discarded (the same protocol as the parent's)."""
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


def main() -> None:
    with open(sys.argv[1]) as handle:
        params = json.load(handle)
    # protocol on the original stdout; anything MLflow prints goes to stderr instead
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    db_path = params["db_path"]
    models, versions = int(params["models"]), int(params["versions"])
    uri = f"sqlite:///{db_path}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    start = time.perf_counter()
    rows = load(client, db_path, models, versions)
    load_s = time.perf_counter() - start
    found = len(client.search_model_versions(f"name='{model_name(min(1, models - 1))}'", max_results=1000))
    if found != versions:
        raise RuntimeError(f"loaded registry has {found} versions of a model, expected {versions}")
    ops = Operations(client, models, versions, int(params["seed"]))
    proto.write(json.dumps({"ready": True, "mlflow_version": mlflow.__version__, "load_s": load_s,
                            "rows": rows}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        wall, cpu = timed(ops.calls[request["op"]], int(request["calls"]), int(request.get("warmup", 0)))
        proto.write(json.dumps({"wall_ms": wall, "cpu_ms": cpu}) + "\n")


if __name__ == "__main__":
    main()
