"""Every drift method, and the data-quality shares, equal Evidently 0.7.23's on the same data.

Evidently runs in its own virtualenv (it does not import under pandas 3): the bench's,
created by `bash tests/support/evidently_env.sh` (bench/.venv-evidently, or
MODELBOT_EVIDENTLY_VENV). The data go to it as Parquet; `bench/monitoring_evidently_worker.py`
runs one `ValueDrift(column, method)` per check — method None is Evidently's own choice, which
must also be ours — and its data-quality counts. Without the virtualenv the test skips with
that reason; with MODELBOT_REQUIRE_EVIDENTLY set (CI) it fails instead.

Two data sets: a reference of 600 rows (Evidently picks KS / χ² / z-test there) and one of
3,000 (Wasserstein / Jensen–Shannon), each with a continuous feature (with missing and
infinite values, which both tools drop), a 12-valued and a 4-valued numeric one, a
categorical one with a category the reference never saw, and a binary one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bot.domain.monitoring import DriftConfig, data_quality_report, feature_drift
from bot.domain.monitoring.metric_names import P_VALUE_METHODS

REPO = Path(__file__).resolve().parents[3]
WORKER = REPO / "bench" / "monitoring_evidently_worker.py"
NUMERICAL = ["cont", "disc", "few"]
CATEGORICAL = ["cat", "bin"]
METHODS = {"cont": [None, "ks", "wasserstein", "psi", "jensenshannon"],
           "disc": [None, "ks", "wasserstein", "psi", "jensenshannon"],
           "few": [None, "ks", "wasserstein", "psi", "jensenshannon"],
           "cat": [None, "chisquare", "psi", "jensenshannon"],
           "bin": [None, "chisquare", "z", "psi", "jensenshannon"]}


def evidently_python() -> Path:
    """The Evidently virtualenv's python, or skip (fail in CI) saying how to create it."""
    venv = Path(os.environ.get("MODELBOT_EVIDENTLY_VENV") or REPO / "bench" / ".venv-evidently")
    python = venv / "bin" / "python"
    if python.exists() and list((venv / "lib").glob("python3*/site-packages/evidently")):
        return python
    reason = (f"no Evidently virtualenv at {venv}: run `bash tests/support/evidently_env.sh` "
              "(installs evidently==0.7.23 with pandas<3) to compare drift with Evidently")
    if os.environ.get("MODELBOT_REQUIRE_EVIDENTLY"):
        pytest.fail(f"MODELBOT_REQUIRE_EVIDENTLY is set, but there is {reason}")
    pytest.skip(reason)


def frames(reference_rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(n: int, drifted: bool) -> pd.DataFrame:
        cont = rng.normal(0.25 if drifted else 0.0, 1.1 if drifted else 1.0, n)
        if drifted:
            cont[:5], cont[5] = np.nan, np.inf
        cats = ["a", "b", "c", "d", "e"] if drifted else ["a", "b", "c", "d"]
        weights = [0.3, 0.3, 0.2, 0.15, 0.05] if drifted else [0.4, 0.3, 0.2, 0.1]
        return pd.DataFrame({
            "cont": cont,
            "disc": rng.integers(0, 12 if not drifted else 10, n).astype(np.float64),
            "few": rng.choice([0.0, 1.0, 2.0, 3.0], n, p=[0.4, 0.3, 0.2, 0.1] if drifted else [0.25] * 4),
            "cat": rng.choice(cats, n, p=weights),
            "bin": rng.choice(["no", "yes"], n, p=[0.6, 0.4] if drifted else [0.7, 0.3]),
        })

    return frame(reference_rows, False), frame(reference_rows * 4 // 5, True)


REFERENCE_ROWS = (600, 3000)


@pytest.fixture(scope="module")
def evidently_results(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """Both data sets through Evidently in one worker process (importing Evidently takes seconds)."""
    python = evidently_python()
    tmp = tmp_path_factory.mktemp("evidently")
    jobs = []
    for rows in REFERENCE_ROWS:
        reference, current = frames(rows, seed=rows)
        reference.to_parquet(tmp / f"reference-{rows}.parquet")
        current.to_parquet(tmp / f"current-{rows}.parquet")
        jobs.append({"reference": str(tmp / f"reference-{rows}.parquet"),
                     "current": str(tmp / f"current-{rows}.parquet"), "numerical": NUMERICAL,
                     "categorical": CATEGORICAL,
                     "checks": [{"column": c, "method": m} for c, methods in METHODS.items() for m in methods]})
    (tmp / "params.json").write_text(json.dumps({"mode": "values", "jobs": jobs}))
    proc = subprocess.run([str(python), str(WORKER), str(tmp / "params.json"), str(tmp / "result.json")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return dict(zip(REFERENCE_ROWS, json.loads((tmp / "result.json").read_text()), strict=True))


@pytest.mark.parametrize("reference_rows", REFERENCE_ROWS)
def test_every_drift_method_equals_evidently(reference_rows: int, evidently_results: dict[int, dict[str, Any]]
                                             ) -> None:
    reference, current = frames(reference_rows, seed=reference_rows)
    theirs = evidently_results[reference_rows]
    config = {"numerical": tuple(NUMERICAL), "categorical": tuple(CATEGORICAL), "drop_missing": True}
    compared = []
    asked_for = [(c, m) for c, methods in METHODS.items() for m in methods]  # the worker answers in this order
    for (column, asked), check in zip(asked_for, theirs["drift"], strict=True):
        method = check["method"]  # Evidently's own choice when we asked for none
        assert check["column"] == column and asked in (None, method)
        ours = feature_drift(reference[column], current[column], column,
                             config=DriftConfig(method=asked or "auto", **config))  # type: ignore[arg-type]
        assert ours.method == method, f"{column}: Evidently chose {method}, we chose {ours.method}"
        value = ours.p_value if method in P_VALUE_METHODS else ours.statistic
        assert value == pytest.approx(check["value"], rel=1e-9, abs=1e-12), (column, method, value, check["value"])
        assert ours.threshold == check["threshold"]
        compared.append((column, asked or "auto", method))
    assert len(compared) == sum(len(m) for m in METHODS.values())
    assert {method for _, _, method in compared} == {"ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"}

    ours_quality = {name: share for q in data_quality_report(reference, current, NUMERICAL + CATEGORICAL)
                    for name, share in q.metrics().items() if not name.startswith("wrong_type:")}
    assert ours_quality == pytest.approx(theirs["quality"], abs=1e-12)
