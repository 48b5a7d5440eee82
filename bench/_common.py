"""Shared helpers for modelbot's benchmarks: honest timing, peak memory, one table.

Benchmarks compare modelbot with the tool a user would otherwise pick, in the same
run and on the same data, because absolute times on shared machines drift by tens of
percent between runs while ratios hardly move (docs/benchmarks.md).

- Per-call latency: `time_calls` (warm-up discarded, ms per call) → `LatencyStats`
  (p50/p99 over many calls, with the count) — and `percentiles` for any samples.
- Whole steps: `peak_rss_of` runs a step in a fresh process and returns its wall
  time and *its own* peak RSS: the parent reaps it with ``os.wait4`` and reads that
  child's ``ru_maxrss`` (RUSAGE_CHILDREN would be the maximum over every child so
  far). `median_wall_s` repeats a command for cold-start timings.
- Alternatives in other virtualenvs (MLflow, Evidently): `ensure_venv` builds one once
  and caches it; `run_json_worker` runs a worker script there, JSON in and out.
  `JsonLinesWorker` keeps one alive and answers JSON lines, so a bench can alternate
  short blocks of both tools and let them share the machine's load.
- Output: `render_table`/`print_table` (Markdown), `fmt_ratio`, `format_seconds`,
  `format_bytes`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / ".data"


# ---- per-call timings --------------------------------------------------------------------


def time_calls(call: Callable[[int], object], calls: int, warmup: int = 0) -> list[float]:
    """Milliseconds per call of `call(i)`; the first `warmup` calls are run and discarded.

    `i` counts from 0 across warm-up and timed calls, so a call can pick different
    inputs each time (timing one cached input over and over would flatter anyone).
    """
    for i in range(warmup):
        call(i)
    out: list[float] = []
    for i in range(calls):
        start = time.perf_counter()
        call(warmup + i)
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def percentiles(samples: Sequence[float], qs: Sequence[float] = (50, 99)) -> dict[str, float]:
    """{"p50": …, "p99": …, "n": count} with numpy's linear interpolation."""
    if not samples:
        raise ValueError("no samples")
    values = np.percentile(np.asarray(samples, dtype=np.float64), list(qs))
    out = {f"p{q:g}": float(v) for q, v in zip(qs, values, strict=True)}
    out["n"] = len(samples)
    return out


@dataclass(frozen=True)
class LatencyStats:
    """p50 and p99 of many per-call timings in milliseconds, and how many there were."""

    p50_ms: float
    p99_ms: float
    n: int
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> LatencyStats:
        p = percentiles(samples_ms)
        return cls(p["p50"], p["p99"], len(samples_ms), float(np.mean(samples_ms)), float(max(samples_ms)))

    def cell(self) -> str:
        """'p50 / p99' for a table cell."""
        return f"{_ms(self.p50_ms)} / {_ms(self.p99_ms)} ms"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


# ---- processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessRun:
    """One child process: exit code, wall seconds (spawn to exit), peak RSS in bytes."""

    returncode: int
    wall_seconds: float
    peak_rss_bytes: int
    stdout: str
    stderr: str
    # user + system CPU of the child (its own rusage): on a busy shared machine this moves
    # far less than wall time, so it tells a slow program from a crowded machine
    cpu_seconds: float = 0.0

    def json(self) -> Any:
        """The last stdout line parsed as JSON (children report their numbers that way)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if self.returncode != 0 or not lines:
            raise RuntimeError(f"child failed ({self.returncode}):\n{self.stderr[-4000:]}")
        return json.loads(lines[-1])


def peak_rss_of(
    cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> ProcessRun:
    """Run `cmd` to completion; return its exit code, wall time and own peak RSS.

    stdout/stderr go to temporary files rather than pipes, so a chatty child cannot
    block on a full pipe while we sit in ``wait4``.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=err, env=None if env is None else dict(env), cwd=cwd
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: KiB on Linux, bytes on macOS
        return ProcessRun(
            proc.returncode,
            wall,
            int(usage.ru_maxrss) * scale,
            out.read(),
            err.read(),
            usage.ru_utime + usage.ru_stime,
        )


def median_wall_s(
    cmd: Sequence[str], runs: int, *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> tuple[float, list[float]]:
    """(median, all runs) wall seconds of running `cmd` `runs` times, each a fresh process."""
    walls: list[float] = []
    for _ in range(max(1, runs)):
        run = peak_rss_of(cmd, env=env, cwd=cwd)
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stderr[-4000:]}")
        walls.append(run.wall_seconds)
    return statistics.median(walls), walls


def ensure_venv(
    venv: Path, requirements: Sequence[str], *, log: Callable[[str], None] = print, python: str | None = None
) -> Path:
    """Python of a cached virtualenv at `venv` with `requirements` installed.

    A marker file records the requirements; the venv is (re)built only when it is
    missing or was built for other requirements. Installing takes minutes, so it is
    done once per machine, not per run.
    """
    marker = venv / ".bench-requirements"
    wanted = "\n".join(requirements)
    exe = venv / "bin" / "python"
    if exe.exists() and marker.exists() and marker.read_text() == wanted:
        return exe
    log(f"building {venv} with {' '.join(requirements)} (once; takes a few minutes) …")
    if not exe.exists():
        subprocess.run([python or sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(exe), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
        check=True,
    )
    marker.write_text(wanted)
    return exe


def run_json_worker(
    python: str | Path,
    worker: str | Path,
    params: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Any:
    """Run `python worker PARAMS.json RESULT.json` and return the parsed result.

    Files instead of pipes: the worker may print logs freely, and the result cannot be
    confused with them.
    """
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        params_path = Path(tmp) / "params.json"
        result_path = Path(tmp) / "result.json"
        params_path.write_text(json.dumps(dict(params)))
        proc = subprocess.run(
            [str(python), str(worker), str(params_path), str(result_path)],
            env=None if env is None else dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not result_path.exists():
            raise RuntimeError(f"{worker} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(result_path.read_text())


# ---- formatting --------------------------------------------------------------------------


def fmt_ratio(ratio: float | None) -> str:
    """'12.3×' (or '—' when there is nothing to compare)."""
    if ratio is None or ratio != ratio:  # None or NaN
        return "—"
    return f"{ratio:.1f}×" if ratio < 100 else f"{ratio:.0f}×"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def format_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    mib = n / (1 << 20)
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table as text (pastes into an issue or a closing note as is)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], file: Any = None) -> None:
    """Print `render_table`."""
    print(render_table(headers, rows), file=file or sys.stdout)


# ---- long-lived JSON-lines worker (interleaved measurements) ------------------------------


class JsonLinesWorker:
    """A worker process in another virtualenv that answers one JSON request per line.

    Why not one run per tool: on a shared machine the load changes minute by minute, so
    measuring modelbot now and the alternative five minutes later skews the ratio. A
    long-lived worker lets the bench alternate short blocks of both tools, which then see
    the same load. The worker must write protocol lines only to the descriptor it was
    started with as stdout (and send its own logging to stderr, which goes to a file here
    so a chatty library can never fill a pipe and stall).
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None) -> None:
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the worker; close()
        self._proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=None if env is None else dict(env), cwd=cwd, text=True, bufsize=1,
        )

    def read(self) -> Any:
        """The next JSON line from the worker; its stderr tail if it died instead."""
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            self._stderr.seek(0)
            raise RuntimeError(f"worker exited ({self._proc.returncode}):\n{self._stderr.read()[-4000:]}")
        return json.loads(line)

    def request(self, message: Mapping[str, Any]) -> Any:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(dict(message)) + "\n")
        self._proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        """Closing stdin is the worker's signal to exit."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> JsonLinesWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
