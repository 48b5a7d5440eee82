"""`python -m bench.alerts`: one alert evaluation cycle over many rules and 10M samples.

The workload: N threshold rules (one per series: models × metrics), 10 million metric
samples spread over the last 7 days with every series reporting in the last minutes, as a
scheduler cycle would find them. Each size runs in a fresh process (its own peak RSS):
the first cycle (creates every state row) and the median of the following steady cycles.
Prometheus's rule evaluation is the alternative users know, but it evaluates PromQL over
its own TSDB, not rows in our database, so there is no same-data comparison to make;
the target is absolute: ≤ 1 s per cycle for 10,000 rules.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench._common import REPO_ROOT, format_bytes, print_table

METRICS = ("error_rate", "latency_p95_ms", "auc", "f1", "availability", "throughput", "drift_share", "recall",
           "precision", "latency_p50_ms")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def build(path: Path, rules: int, samples: int) -> None:
    """Bulk-load models, deployments, rules and samples straight into SQLite (not measured)."""
    from bot.config.settings import Settings
    from bot.services import open_services

    services = open_services(Settings(database_url=f"sqlite:///{path}"))
    services.close()
    import sqlite3

    models = max(1, rules // len(METRICS))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    created = NOW.isoformat()
    conn.executemany(
        "INSERT INTO registered_models (id, name, name_key, created_at, latest_version) VALUES (?, ?, ?, ?, 2)",
        [(m + 1, f"model-{m}", f"model-{m}", created) for m in range(models)])
    conn.executemany(
        "INSERT INTO model_versions (model_id, version, artifact_uri, metrics, params, tags, created_by, created_at,"
        " status) VALUES (?, ?, 's3://x', '{\"auc\": 0.9}', '{}', '{}', 'bench', ?, 'ready')",
        [(m + 1, v, created) for m in range(models) for v in (1, 2)])
    conn.executemany(
        "INSERT INTO deployments (model_id, environment, stable_version, previous_version, canary_weight, revision,"
        " updated_at) VALUES (?, 'production', 2, 1, 0, 1, ?)", [(m + 1, created) for m in range(models)])
    rng = np.random.default_rng(7)
    rule_rows = []
    for r in range(rules):
        model, metric = r // len(METRICS) + 1, METRICS[r % len(METRICS)]
        op = ">" if "latency" in metric or metric in ("error_rate", "drift_share") else "<"
        for_seconds = 300 if r % 5 == 0 else 0
        baseline = "previous" if r % 10 == 3 else "constant"
        threshold = -0.05 if baseline == "previous" else (0.5 if op == "<" else 0.9)
        rule_rows.append((model, metric, op, threshold, baseline, for_seconds))
    conn.executemany(
        "INSERT INTO alert_rules (model_id, environment, metric, kind, op, threshold, baseline, for_seconds,"
        " keep_firing_for_seconds, severity, target, no_data, no_data_after_seconds, anomaly_k,"
        " anomaly_window_seconds, failure_limit, enabled, origin, created_by, created_at)"
        " VALUES (?, 'production', ?, 'threshold', ?, ?, ?, ?, 0, 'warning', 'stable', 'keep', 600, 4, 604800, 3,"
        " 1, 'config', 'bench', '" + created + "')", rule_rows)
    series = len(rule_rows)
    per_series = max(1, samples // series)
    span = 7 * 86400
    chunk = 500_000
    total = 0
    base = NOW.timestamp()
    while total < samples:
        n = min(chunk, samples - total)
        idx = np.arange(total, total + n)
        s = idx % series
        k = idx // series
        # spread over 7 days, newest point of every series within the last few minutes
        ago = (k / per_series) * span + rng.uniform(0, 240, n)
        at = [datetime.fromtimestamp(base - a, UTC).isoformat(sep=" ") for a in ago]
        values = rng.uniform(0, 1, n)
        rows = [(int(si // len(METRICS) + 1), METRICS[int(si % len(METRICS))], float(v), t)
                for si, v, t in zip(s, values, at, strict=True)]
        conn.executemany("INSERT INTO metric_samples (model_id, version, environment, metric, value, at, source)"
                         " VALUES (?, 2, 'production', ?, ?, ?, 'bench')", rows)
        total += n
    conn.commit()
    conn.close()


def measure(path: Path, cycles: int) -> dict[str, object]:
    """Runs in a fresh process: returns cycle times and this process's peak RSS."""
    from bot.config.settings import Settings
    from bot.domain.alerting.engine import AlertEngine, AlertSettings
    from bot.services import open_services

    clock = {"now": NOW}
    services = open_services(Settings(database_url=f"sqlite:///{path}"))
    engine = AlertEngine(services.registry, AlertSettings(default_channel="C0ALERTS"), clock=lambda: clock["now"])
    times = []
    report = None
    for i in range(cycles):
        clock["now"] = NOW + timedelta(seconds=i)
        start = time.perf_counter()
        report = engine.evaluate()
        times.append(time.perf_counter() - start)
    services.close()
    assert report is not None
    return {"first_s": times[0], "steady_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
            "rules": report.rules, "series": report.series, "transitions": report.transitions,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="1000,10000,100000", help="comma-separated rule counts")
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.cycles)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="modelbot-bench-alerts-") as tmp:
        for count in (int(x) for x in args.rules.split(",")):
            path = Path(tmp) / f"alerts-{count}.db"
            started = time.perf_counter()
            build(path, count, args.samples)
            load_s = time.perf_counter() - started
            out = subprocess.run([sys.executable, "-m", "bench.alerts", "--measure", str(path), "--cycles",
                                  str(args.cycles)], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                                 env={**os.environ})
            result = json.loads(out.stdout.strip().splitlines()[-1])
            target = "≤ 1 s: met" if count != 10_000 else ("≤ 1 s: met" if result["steady_s"] <= 1 else "≤ 1 s: MISSED")
            rows.append([f"{count:,}", f"{args.samples:,}", f"{load_s:.0f} s", f"{result['first_s']:.3f} s",
                         f"{result['steady_s']:.3f} s", format_bytes(int(result["peak_rss"])),
                         target if count == 10_000 else ""])
            path.unlink()
    print_table(["rules", "samples", "load (not measured)", "first cycle", "steady cycle (median)", "peak RSS",
                 "target"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
