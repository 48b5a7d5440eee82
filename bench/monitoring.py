"""Monitoring benchmark: modelbot's digest on 10 M prediction rows with Evidently side by side,
every drift method against Evidently's, incremental pulls of a 10 M-row log, and the same log
digested by PostgreSQL (pushdown) against the pandas path.

    python -m bench.monitoring [--rows 10000000] [--skip-evidently] [--repeat 3]
                               [--skip-incremental] [--skip-pushdown] [--skip-agreement]

Data (generated once, cached under bench/.data/, git-ignored): a Parquet file of N
prediction rows — timestamp, 10 numeric features, label, prediction, score,
latency_ms — in row groups of 1 M, three features drifted against a 100 k-row
reference drawn from the undrifted distributions; and a 1 M-row slice (the first
rows) for the comparison.

Steps, each in a fresh process so that its peak RSS is its own (`bench._common`):
1. modelbot `summarise_parquet` on all N rows: quality (confusion matrix, P/R/F1,
   exact ROC AUC), latency p50/p95/p99 + throughput, drift of 10 features against
   the reference (Evidently's default at this size: normed Wasserstein). Targets
   ≤ 10 s and ≤ 2 GB peak RSS on the 2-core machine.
2. the same on the 1 M slice;
3. Evidently 0.7.23 `Report([DataDriftPreset(columns=features), ClassificationPreset()])`
   on the same slice and reference, in its own virtualenv (it does not import under
   pandas 3), built once as bench/.venv-evidently.

4. agreement: every drift method (Evidently's own choice, KS, Wasserstein, PSI, Jensen–Shannon)
   on the 10 features, reference against a 100 k-row sample of the slice, by modelbot and by
   Evidently's `ValueDrift(column, method)`: the largest difference per method;
5. incremental pulls and 6. PostgreSQL pushdown: see `bench/monitoring_logs.py`.

"time" is measured inside the child from before reading the data to the finished
result (imports excluded); "process" is the child's whole life (interpreter start and
imports included). Times are medians over --repeat runs; the ratio is Evidently's
time over modelbot's on the same slice. A check line compares the numbers themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import monitoring_logs
from bench._common import (
    BENCH_DIR,
    DATA_DIR,
    ensure_venv,
    fmt_ratio,
    format_bytes,
    format_seconds,
    peak_rss_of,
    print_table,
    run_json_worker,
)

FEATURES = [f"f{i}" for i in range(10)]
ROW_GROUP = 1_000_000
DATA_VERSION = 1
EVIDENTLY_VENV = BENCH_DIR / ".venv-evidently"
EVIDENTLY_REQUIREMENTS = ("evidently==0.7.23", "pandas<3", "pyarrow")
EVIDENTLY_WORKER = BENCH_DIR / "monitoring_evidently_worker.py"
TIME_TARGET_S = 10.0
PULL_RATIO_TARGET = 0.05
RSS_TARGET_BYTES = 2 * 1024**3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- data --------------------------------------------------------------------------------


def _features(rng: np.random.Generator, n: int, drifted: bool) -> dict[str, np.ndarray]:
    """Ten features of different shapes; f0 (shift), f3 (wider) and f5 (scale) drift."""
    shift = 0.25 if drifted else 0.0
    return {
        "f0": rng.normal(shift, 1.0, n),
        "f1": rng.normal(5.0, 2.0, n),
        "f2": rng.lognormal(0.0, 0.5, n),
        "f3": rng.uniform(0.0, 11.5 if drifted else 10.0, n),
        "f4": rng.gamma(2.0, 2.0, n),
        "f5": rng.normal(0.0, 1.3 if drifted else 1.0, n),
        "f6": rng.exponential(1.0, n),
        "f7": np.where(rng.random(n) < 0.3, rng.normal(-2.0, 0.5, n), rng.normal(1.0, 1.0, n)),
        "f8": rng.normal(100.0, 15.0, n),
        "f9": rng.beta(2.0, 5.0, n),
    }


def _chunk(rng: np.random.Generator, n: int, drifted: bool, t0_ms: int, span_ms: int) -> Any:
    import pyarrow as pa

    cols = _features(rng, n, drifted)
    logit = 0.9 * cols["f0"] - 0.6 * cols["f5"] + 0.02 * (cols["f8"] - 100.0) - 0.8
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-(logit + rng.normal(0, 1.0, n))))).astype(np.int64)
    score = np.round(1.0 / (1.0 + np.exp(-logit)), 4)  # 4 decimals: realistic ties for the AUC
    ts = np.sort(rng.integers(t0_ms, t0_ms + span_ms, n))
    return pa.table(
        {
            "timestamp": pa.array(ts, type=pa.timestamp("ms", tz="UTC")),
            **cols,
            "label": label,
            "prediction": (score >= 0.5).astype(np.int64),
            "score": score,
            "latency_ms": rng.lognormal(3.0, 0.5, n),
        }
    )


def _write(path: Path, rows: int, seed: int, drifted: bool) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_suffix(".tmp")
    day_ms = 86_400_000
    start_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    writer = None
    try:
        for i, start in enumerate(range(0, rows, ROW_GROUP)):
            n = min(ROW_GROUP, rows - start)
            rng = np.random.default_rng([seed, i])
            span = day_ms * n // rows
            table = _chunk(rng, n, drifted, start_ms + day_ms * start // rows, max(span, 1))
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP)
            log(f"  {path.name}: {start + n:,}/{rows:,} rows")
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)


def ensure_data(rows: int, reference_rows: int, slice_rows: int) -> dict[str, Path]:
    """Generate (once) the current file, its slice and the reference; return their paths."""
    import pyarrow.parquet as pq

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    paths = {
        "current": DATA_DIR / f"monitoring-v{DATA_VERSION}-current-{rows}.parquet",
        "reference": DATA_DIR / f"monitoring-v{DATA_VERSION}-reference-{reference_rows}.parquet",
        "slice": DATA_DIR / f"monitoring-v{DATA_VERSION}-current-{rows}-first-{slice_rows}.parquet",
    }
    if not paths["current"].exists():
        log(f"generating {rows:,} prediction rows (cached in {DATA_DIR}) …")
        _write(paths["current"], rows, seed=1, drifted=True)
    if not paths["reference"].exists():
        log(f"generating the {reference_rows:,}-row reference …")
        _write(paths["reference"], reference_rows, seed=2, drifted=False)
    if not paths["slice"].exists():
        log(f"cutting the first {slice_rows:,} rows …")
        pf = pq.ParquetFile(paths["current"])
        batches = pf.iter_batches(batch_size=min(slice_rows, ROW_GROUP))
        tmp = paths["slice"].with_suffix(".tmp")
        with pq.ParquetWriter(tmp, pf.schema_arrow) as writer:
            taken = 0
            for batch in batches:
                batch = batch.slice(0, slice_rows - taken)
                writer.write_batch(batch, row_group_size=ROW_GROUP)
                taken += batch.num_rows
                if taken >= slice_rows:
                    break
        tmp.replace(paths["slice"])
    return paths


# ---- children ----------------------------------------------------------------------------


def child_digest(current: str, reference: str) -> None:
    """Runs in a fresh process: time modelbot's whole digest, print JSON on stdout."""
    import pandas as pd

    from bot.domain.monitoring import summarise_parquet

    start = time.perf_counter()
    ref = pd.read_parquet(reference, columns=FEATURES)
    digest = summarise_parquet(current, ref, features=FEATURES)
    seconds = time.perf_counter() - start
    q, lat, drift = digest.quality, digest.latency, digest.drift
    assert q is not None and lat is not None and drift is not None
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": digest.rows,
                "accuracy": q.accuracy,
                "precision": q.precision,
                "recall": q.recall,
                "f1": q.f1,
                "roc_auc": q.roc_auc,
                "p50_ms": lat.p50_ms,
                "p95_ms": lat.p95_ms,
                "p99_ms": lat.p99_ms,
                "throughput_per_s": lat.throughput_per_s,
                "drift": {f.name: f.statistic for f in drift.features},
                "error_bounds": {f.name: f.error_bound for f in drift.features},
                "methods": {f.name: f.method for f in drift.features},
                "share_drifted": drift.share_drifted,
                "dataset_drift": drift.dataset_drift,
            }
        )
    )


def run_modelbot(current: Path, reference: Path, repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        run = peak_rss_of(
            [sys.executable, "-m", "bench.monitoring", "--child-digest", str(current), str(reference)],
            cwd=str(BENCH_DIR.parent),
        )
        runs.append((run, run.json()))
    return _summarise_runs(runs)


def run_evidently(python: Path, current: Path, reference: Path, repeat: int) -> dict[str, Any]:
    import tempfile

    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-evidently-") as tmp:
            params = Path(tmp) / "params.json"
            result = Path(tmp) / "result.json"
            params.write_text(
                json.dumps({"current": str(current), "reference": str(reference), "features": FEATURES})
            )
            run = peak_rss_of([str(python), str(EVIDENTLY_WORKER), str(params), str(result)])
            if run.returncode != 0 or not result.exists():
                raise RuntimeError(f"Evidently worker failed ({run.returncode}):\n{run.stderr[-4000:]}")
            runs.append((run, json.loads(result.read_text())))
    return _summarise_runs(runs)


def _summarise_runs(runs: list[tuple[Any, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "seconds": statistics.median(r["seconds"] for _, r in runs),
        "all_seconds": [r["seconds"] for _, r in runs],
        "wall": statistics.median(p.wall_seconds for p, _ in runs),
        "peak_rss": max(p.peak_rss_bytes for p, _ in runs),
        "result": runs[-1][1],
        "n": len(runs),
    }


# ---- report ------------------------------------------------------------------------------


def _time_cell(summary: dict[str, Any]) -> str:
    spread = ""
    if summary["n"] > 1:
        spread = f" (n={summary['n']}, {format_seconds(min(summary['all_seconds']))}–"
        spread += f"{format_seconds(max(summary['all_seconds']))})"
    return format_seconds(summary["seconds"]) + spread


AGREEMENT_METHODS: tuple[str | None, ...] = (None, "ks", "wasserstein", "psi", "jensenshannon")
AGREEMENT_ROWS = 100_000


def agreement(python: Path, current: Path, reference: Path) -> dict[str, dict[str, float]]:
    """{method: {"max_abs": …, "checks": n, "same_verdicts": 0/1}} — modelbot vs Evidently per drift method."""
    import tempfile

    import pandas as pd

    from bot.domain.monitoring import DriftConfig, feature_drift
    from bot.domain.monitoring.metric_names import P_VALUE_METHODS

    ref = pd.read_parquet(reference, columns=FEATURES)
    cur = pd.read_parquet(current, columns=FEATURES).sample(n=AGREEMENT_ROWS, random_state=0).reset_index(drop=True)
    with tempfile.TemporaryDirectory(prefix="bench-agreement-") as tmp:
        paths = {"reference": Path(tmp) / "reference.parquet", "current": Path(tmp) / "current.parquet"}
        ref.to_parquet(paths["reference"], index=False)
        cur.to_parquet(paths["current"], index=False)
        checks = [{"column": f, "method": m} for m in AGREEMENT_METHODS for f in FEATURES]
        params = {"mode": "values", "reference": str(paths["reference"]), "current": str(paths["current"]),
                  "numerical": FEATURES, "categorical": [], "checks": checks}
        theirs = run_json_worker(python, EVIDENTLY_WORKER, params)["drift"]
    out: dict[str, dict[str, float]] = {}
    for asked, found in zip(checks, theirs, strict=True):
        method = found["method"]
        config = DriftConfig(method=asked["method"] or "auto", numerical=tuple(FEATURES))  # type: ignore[arg-type]
        ours = feature_drift(ref[asked["column"]], cur[asked["column"]], asked["column"], config=config)
        value = ours.p_value if method in P_VALUE_METHODS else ours.statistic
        label = f"{method} (Evidently's choice)" if asked["method"] is None else method
        row = out.setdefault(label, {"max_abs": 0.0, "checks": 0, "same_verdicts": 1, "same_method": 1})
        row["max_abs"] = max(row["max_abs"], abs(float(value) - found["value"]))  # type: ignore[arg-type]
        row["checks"] += 1
        row["same_method"] &= int(ours.method == method)
        row["same_verdicts"] &= int(ours.drifted == (value <= found["threshold"] if method == "ks" else (
            value < found["threshold"] if method in P_VALUE_METHODS else value >= found["threshold"])))
    return out


def compare_numbers(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    """One line: the largest differences between modelbot's and Evidently's numbers."""
    quality = max(abs(ours[k] - theirs[k]) for k in ("accuracy", "precision", "recall", "f1", "roc_auc"))
    drift = max(abs(ours["drift"][f] - theirs["drift"][f]) for f in FEATURES)
    same_verdicts = ours["share_drifted"] == theirs["share_drifted"]
    return (
        f"numbers on the slice, modelbot vs Evidently: max |Δ| quality metrics {quality:.1e}, "
        f"max |Δ| normed Wasserstein {drift:.1e} (modelbot's bound {max(ours['error_bounds'].values()):.1e}), "
        f"drifted share {ours['share_drifted']:.1f} vs {theirs['share_drifted']:.1f}"
        f"{'' if same_verdicts else ' — VERDICTS DIFFER'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.monitoring", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="prediction rows (default 10,000,000)")
    parser.add_argument(
        "--reference-rows", type=int, default=100_000, help="reference rows (default 100,000)"
    )
    parser.add_argument("--slice-rows", type=int, default=1_000_000, help="rows compared with Evidently")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each modelbot step (median reported)")
    parser.add_argument("--evidently-repeat", type=int, default=1, help="runs of the Evidently step")
    parser.add_argument("--skip-evidently", action="store_true", help="no Evidently venv, row or ratio")
    parser.add_argument("--skip-agreement", action="store_true", help="no per-method comparison with Evidently")
    parser.add_argument("--skip-incremental", action="store_true", help="no incremental pull of a log")
    parser.add_argument("--skip-pushdown", action="store_true", help="no PostgreSQL pushdown comparison")
    parser.add_argument("--log-rows", type=int, default=None, help="rows of the pulled log (default --rows)")
    parser.add_argument("--append-rows", type=int, default=100_000, help="rows appended before the 2nd pull")
    parser.add_argument("--child-digest", nargs=2, metavar=("CURRENT", "REFERENCE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_digest:
        child_digest(*args.child_digest)
        return 0

    slice_rows = min(args.slice_rows, args.rows)
    paths = ensure_data(args.rows, args.reference_rows, slice_rows)
    evidently_python = None
    if not args.skip_evidently:
        evidently_python = ensure_venv(EVIDENTLY_VENV, EVIDENTLY_REQUIREMENTS, log=log)

    log(f"modelbot digest, {args.rows:,} rows × {args.repeat} …")
    full = run_modelbot(paths["current"], paths["reference"], args.repeat)
    log(f"modelbot digest, {slice_rows:,}-row slice × {args.repeat} …")
    part = run_modelbot(paths["slice"], paths["reference"], args.repeat)
    theirs = None
    if evidently_python is not None:
        log(f"Evidently 0.7.23 report, {slice_rows:,}-row slice × {args.evidently_repeat} (slow) …")
        theirs = run_evidently(evidently_python, paths["slice"], paths["reference"], args.evidently_repeat)

    # the log steps run in this process, after the children above: a child forked from a process
    # that once held gigabytes would inherit that peak in its own ru_maxrss
    log_rows = args.log_rows or args.rows
    agreed = None
    if evidently_python is not None and not args.skip_agreement:
        log("every drift method against Evidently's …")
        agreed = agreement(evidently_python, paths["slice"], paths["reference"])
    pulls = None if args.skip_incremental else monitoring_logs.incremental(log_rows, args.append_rows)
    pushed = None
    if not args.skip_pushdown:
        url = monitoring_logs.postgres_url()
        if url is None:
            log("no PostgreSQL (MODELBOT_BENCH_POSTGRES_URL or MODELBOT_TEST_POSTGRES_URL): pushdown skipped")
        else:
            pushed = monitoring_logs.pushdown(url, log_rows)

    headers = ["step", "rows", "time (in process)", "process wall", "peak RSS", "ratio"]
    met = full["seconds"] <= TIME_TARGET_S and full["peak_rss"] <= RSS_TARGET_BYTES
    rows = [
        [
            "modelbot digest: quality + latency + drift ×10",
            f"{args.rows:,}",
            _time_cell(full),
            format_seconds(full["wall"]),
            format_bytes(full["peak_rss"]),
            f"target ≤ {TIME_TARGET_S:g} s, ≤ 2 GiB: {'met' if met else 'MISSED'}",
        ],
        [
            "modelbot digest (same code), slice",
            f"{slice_rows:,}",
            _time_cell(part),
            format_seconds(part["wall"]),
            format_bytes(part["peak_rss"]),
            "1×",
        ],
    ]
    if theirs is not None:
        rows.append(
            [
                "Evidently 0.7.23 DataDriftPreset + ClassificationPreset, slice",
                f"{slice_rows:,}",
                _time_cell(theirs),
                format_seconds(theirs["wall"]),
                format_bytes(theirs["peak_rss"]),
                f"{fmt_ratio(theirs['seconds'] / part['seconds'])} modelbot's time",
            ]
        )
    print(
        f"Monitoring digest benchmark: reference {args.reference_rows:,} rows, 10 numeric features; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs."
    )
    print()
    print_table(headers, rows)
    print()
    r = full["result"]
    print(
        f"- full run: accuracy {r['accuracy']:.4f}, F1 {r['f1']:.4f}, ROC AUC {r['roc_auc']:.4f}; "
        f"latency p50/p95/p99 {r['p50_ms']:.1f}/{r['p95_ms']:.1f}/{r['p99_ms']:.1f} ms, "
        f"{r['throughput_per_s']:.0f} rows/s; drift method {sorted(set(r['methods'].values()))}, "
        f"drifted {r['share_drifted']:.0%} of features, dataset drift {r['dataset_drift']}"
    )
    if theirs is not None:
        print(f"- {compare_numbers(part['result'], theirs['result'])}")
        print(
            f"- Evidently report.run alone (data already in pandas): {format_seconds(theirs['result']['seconds_run'])}"
        )
    if agreed is not None:
        print()
        print(f"Every drift method against Evidently 0.7.23 `ValueDrift` ({len(FEATURES)} numeric features, "
              f"reference {args.reference_rows:,} rows, current {AGREEMENT_ROWS:,} rows of the slice):")
        print()
        print_table(["method", "checks", "max |modelbot − Evidently|", "same method", "same verdicts"],
                    [[m, int(r["checks"]), f"{r['max_abs']:.1e}", "yes" if r["same_method"] else "NO",
                      "yes" if r["same_verdicts"] else "NO"] for m, r in agreed.items()])
    if pulls is not None or pushed is not None:
        print()
        print("Prediction-log pulls (single runs, wall clock):")
        print()
        table = []
        if pulls is not None:
            ok = pulls["ratio"] <= PULL_RATIO_TARGET
            table += [
                ["incremental: first pull of a CSV log (reads all of it)", f"{pulls['rows']:,}",
                 format_seconds(pulls["first_s"]), ""],
                [f"incremental: pull after {pulls['appended']:,} appended rows (reads only them)",
                 f"{pulls['appended']:,} new", format_seconds(pulls["second_s"]),
                 f"{pulls['ratio'] * 100:.1f}% of the first (target ≤ {PULL_RATIO_TARGET:.0%}: "
                 f"{'met' if ok else 'MISSED'})"],
            ]
        if pushed is not None:
            table += [
                ["PostgreSQL pushdown: 24 hourly windows computed by the database", f"{pushed['rows']:,}",
                 format_seconds(pushed["database_s"]), f"{fmt_ratio(pushed['speedup'])} faster than pandas"],
                ["pandas path on the same table (modelbot reads the rows)", f"{pushed['rows']:,}",
                 format_seconds(pushed["pandas_s"]), "1×"],
            ]
        print_table(["step", "rows", "time", "ratio"], table)
        if pushed is not None:
            print()
            print(f"- pushdown vs pandas: {pushed['compared']} numbers over {pushed['windows']} windows, largest "
                  f"relative difference {pushed['max_relative_difference']:.1e}"
                  f"{'' if pushed['same_metrics'] else ' — METRIC SETS DIFFER'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
