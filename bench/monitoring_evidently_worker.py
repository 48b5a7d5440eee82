"""Evidently side of `python -m bench.monitoring`; runs in bench/.venv-evidently, never in ours.

Usage: `python monitoring_evidently_worker.py PARAMS.json RESULT.json`. Evidently 0.7.23
does not import under pandas 3, so it lives in its own virtualenv with pandas < 3 and
gets the data as the same Parquet files modelbot reads. It times what a user would
run — read both files into pandas, wrap them as Evidently datasets, run
``Report([DataDriftPreset(columns=…), ClassificationPreset()])`` — and returns the
time plus the numbers, so the parent can check that both tools agree.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.presets import ClassificationPreset, DataDriftPreset


def run(params: dict[str, Any]) -> dict[str, Any]:
    features = list(params["features"])
    start = time.perf_counter()
    current = pd.read_parquet(params["current"])
    reference = pd.read_parquet(params["reference"])
    definition = DataDefinition(
        numerical_columns=[*features, "score", "latency_ms"],
        categorical_columns=["label", "prediction"],
        classification=[
            BinaryClassification(target="label", prediction_labels="prediction", prediction_probas="score")
        ],
    )
    run_start = time.perf_counter()
    report = Report([DataDriftPreset(columns=features), ClassificationPreset()])
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    values = snapshot.dict()["metrics"]
    seconds = time.perf_counter() - start
    seconds_run = time.perf_counter() - run_start

    out: dict[str, Any] = {"seconds": seconds, "seconds_run": seconds_run, "rows": len(current), "drift": {}}
    names = {
        "Accuracy": "accuracy",
        "Precision": "precision",
        "Recall": "recall",
        "F1Score": "f1",
        "RocAuc": "roc_auc",
    }
    for metric in values:
        kind = metric["config"]["type"].rsplit(":", 1)[-1]
        if kind in names:
            out[names[kind]] = float(metric["value"])
        elif kind == "ValueDrift":
            out["drift"][metric["config"]["column"]] = float(metric["value"])
        elif kind == "DriftedColumnsCount":
            out["share_drifted"] = float(metric["value"]["share"])
    return out


def main() -> None:
    params_path, result_path = sys.argv[1], sys.argv[2]
    with open(params_path) as handle:
        params = json.load(handle)
    result = run(params)
    with open(result_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
