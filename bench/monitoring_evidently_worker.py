"""Evidently side of `python -m bench.monitoring`; runs in bench/.venv-evidently, never in ours.

Usage: `python monitoring_evidently_worker.py PARAMS.json RESULT.json`. Evidently 0.7.23
does not import under pandas 3, so it lives in its own virtualenv with pandas < 3 and
gets the data as the same Parquet files modelbot reads. Two modes:

- the default times what a user would run — read both files into pandas, wrap them as
  Evidently datasets, run ``Report([DataDriftPreset(columns=…), ClassificationPreset()])``
  — and returns the time plus the numbers, so the parent can check that both tools agree;
- ``"mode": "values"`` runs one ``ValueDrift(column, method)`` per requested check (method
  None = Evidently's own choice) and the data-quality counts (``MissingValueCount``,
  ``OutRangeValueCount`` over the reference's min–max, ``OutListValueCount`` over its
  values) and returns each value with the method Evidently used: the agreement test
  (tests/domain/monitoring/test_evidently_agreement.py) and the bench compare them with
  modelbot's, method by method.
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


def values(params: dict[str, Any]) -> dict[str, Any]:
    from evidently.legacy.calculations.stattests import (
        chi_stat_test,
        jensenshannon_stat_test,
        ks_stat_test,
        psi_stat_test,
        wasserstein_stat_test,
        z_stat_test,
    )
    from evidently.metrics import MissingValueCount, OutListValueCount, OutRangeValueCount, ValueDrift

    tests = (ks_stat_test, chi_stat_test, z_stat_test, wasserstein_stat_test, jensenshannon_stat_test, psi_stat_test)
    method_of = {t.display_name: t.name for t in tests} | {t.name: t.name for t in tests}
    current = pd.read_parquet(params["current"])
    reference = pd.read_parquet(params["reference"])
    definition = DataDefinition(numerical_columns=params["numerical"], categorical_columns=params["categorical"])
    metrics: list[Any] = [ValueDrift(column=c["column"], method=c["method"]) for c in params["checks"]]
    for column in params["numerical"]:
        low, high = reference[column].min(), reference[column].max()
        metrics += [MissingValueCount(column=column), OutRangeValueCount(column=column, left=low, right=high)]
    for column in params["categorical"]:
        listed = sorted(reference[column].dropna().unique().tolist())
        metrics += [MissingValueCount(column=column), OutListValueCount(column=column, values=listed)]
    snapshot = Report(metrics).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    drift, quality = [], {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        kind = config["type"].rsplit(":", 1)[-1]
        if kind == "ValueDrift":
            drift.append({"column": config["column"], "method": method_of[config["method"]],
                          "threshold": config["threshold"], "value": float(metric["value"])})
        else:
            name = {"MissingValueCount": "missing", "OutRangeValueCount": "out_of_range",
                    "OutListValueCount": "new_category"}[kind]
            quality[f"{name}:{config['column']}"] = float(metric["value"]["share"])
    return {"drift": drift, "quality": quality}


def main() -> None:
    params_path, result_path = sys.argv[1], sys.argv[2]
    with open(params_path) as handle:
        params = json.load(handle)
    if params.get("mode") == "values":
        result: Any = [values(job) for job in params["jobs"]] if "jobs" in params else values(params)
    else:
        result = run(params)
    with open(result_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
