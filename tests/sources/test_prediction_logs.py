"""Prediction logs: CSV, Parquet, JSON lines and SQL tables; epoch and ISO timestamps; chunked
reads equal one-shot reads; per-window numbers equal scikit-learn and numpy on the same rows;
bad input is one clear error and records nothing; an empty window shows as "no data since …"."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from bot.config.sources import PredictionLogSource
from bot.domain.entities import as_utc
from bot.domain.errors import InvalidInput
from bot.domain.monitoring import psi, status
from bot.domain.monitoring.log_files import Location
from bot.domain.monitoring.prediction_logs import LogSpec, summarise
from bot.domain.monitoring.recording import source_status
from bot.domain.monitoring.samples import Samples
from bot.services import Services
from bot.sources.pull import pull_source
from tests.sources.conftest import T0, Clock

ENVS = ("staging", "production")
HOUR = timedelta(hours=1)


def predictions(rows: int = 3000, seed: int = 7, hours: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    score = np.clip(0.35 * label + rng.uniform(0, 0.65, rows), 0, 1)
    return pd.DataFrame({
        "timestamp": int(T0.timestamp()) + np.sort(rng.integers(0, hours * 3600, rows)),
        "prediction": (score > 0.5).astype(int),
        "label": label,
        "score": score,
        "latency_ms": rng.gamma(2.0, 25.0, rows),
        "age": rng.normal(42, 9, rows),
        "country": rng.choice(["de", "fr", "us"], rows, p=[0.2, 0.3, 0.5]),
    })


def reference(rows: int = 2000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.normal(40, 10, rows),
                         "country": rng.choice(["de", "fr", "us"], rows, p=[0.4, 0.3, 0.3])})


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False, row_group_size=700)
    else:  # the standard library writes floats exactly (pandas' to_json rounds to 10 digits)
        records = frame.to_dict("records")
        path.write_text("".join(json.dumps(r, default=lambda v: v.item()) + "\n" for r in records))
    return path


def spec(tmp_path: Path, **kw: object) -> LogSpec:
    ref = write(reference(), tmp_path / "reference.csv")
    values: dict[str, object] = {"model": "churn", "environment": "production", "reference": str(ref)}
    values.update(kw)
    return LogSpec(**values)  # type: ignore[arg-type]


def metrics_by_window(location: Location, log_spec: LogSpec) -> dict[datetime, dict[str, float]]:
    summary = summarise(location, log_spec, environments=ENVS)
    now = T0 + timedelta(days=1)
    return {w.start: w.metrics(now) for w in summary.windows}


def test_numbers_equal_sklearn_and_numpy_per_window(tmp_path: Path) -> None:
    frame = predictions()
    got = metrics_by_window(Location(path=str(write(frame, tmp_path / "log.csv"))), spec(tmp_path))
    assert sorted(got) == [T0, T0 + HOUR, T0 + 2 * HOUR]
    ref = reference()
    for start, metrics in got.items():
        rows = frame[(frame.timestamp >= start.timestamp()) & (frame.timestamp < (start + HOUR).timestamp())]
        y, p = rows.label, rows.prediction
        assert metrics["predictions"] == len(rows)
        assert metrics["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
        assert metrics["precision"] == pytest.approx(precision_score(y, p), abs=1e-12)
        assert metrics["recall"] == pytest.approx(recall_score(y, p), abs=1e-12)
        assert metrics["f1"] == pytest.approx(f1_score(y, p), abs=1e-12)
        assert metrics["error_rate"] == pytest.approx(1 - accuracy_score(y, p), abs=1e-12)
        assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, rows.score), abs=1e-12)
        assert metrics["latency_p95_ms"] == pytest.approx(np.percentile(rows.latency_ms, 95), abs=1e-9)
        assert metrics["throughput_per_s"] == pytest.approx(len(rows) / 3600)
        assert metrics["psi:age"] == pytest.approx(psi(ref.age, rows.age), abs=1e-12)
        assert metrics["psi:country"] == pytest.approx(psi(ref.country, rows.country), abs=1e-12)
        assert metrics["drift_share"] in (0.0, 0.5, 1.0) and metrics["dataset_drift"] in (0.0, 1.0)


def test_formats_and_timestamp_styles_agree(tmp_path: Path) -> None:
    frame = predictions()
    iso = frame.copy()
    stamps = pd.to_datetime(frame.timestamp, unit="s", utc=True)
    # half the rows in UTC with Z, half with a +02:00 offset: the same instants
    iso["timestamp"] = [
        (t.tz_convert("Europe/Berlin").isoformat() if i % 2 else t.strftime("%Y-%m-%dT%H:%M:%SZ"))
        for i, t in enumerate(stamps)
    ]
    native = frame.copy()
    native["timestamp"] = stamps
    expected = metrics_by_window(Location(path=str(write(frame, tmp_path / "a.csv"))), spec(tmp_path))
    for name, data in [("b.parquet", frame), ("c.jsonl", frame), ("d.csv", iso), ("e.jsonl", iso),
                       ("f.parquet", native)]:
        got = metrics_by_window(Location(path=str(write(data, tmp_path / name))), spec(tmp_path))
        assert got == expected, name


def test_chunked_reading_equals_one_shot(tmp_path: Path) -> None:
    frame = predictions(rows=2500)
    for name in ("log.csv", "log.jsonl", "log.parquet"):
        location = Location(path=str(write(frame, tmp_path / name)))
        whole = metrics_by_window(location, spec(tmp_path, chunk_rows=1_000_000))
        assert metrics_by_window(location, spec(tmp_path, chunk_rows=37)) == whole, name
        assert metrics_by_window(location, spec(tmp_path, chunk_rows=500)) == whole, name


def test_a_glob_reads_every_file_in_order(tmp_path: Path) -> None:
    frame = predictions()
    one = metrics_by_window(Location(path=str(write(frame, tmp_path / "all.csv"))), spec(tmp_path))
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, start in enumerate(range(0, len(frame), 1000)):
        write(frame.iloc[start:start + 1000], parts / f"day{i}.csv")
    assert metrics_by_window(Location(path=str(parts / "*.csv")), spec(tmp_path)) == one


def test_a_sql_table(tmp_path: Path) -> None:
    frame = predictions()
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    engine = sa.create_engine(url)
    frame.to_sql("predictions", engine, index=False)
    engine.dispose()
    from_sql = metrics_by_window(Location(sql_url=url, table="predictions"), spec(tmp_path, chunk_rows=400))
    assert from_sql == metrics_by_window(Location(path=str(write(frame, tmp_path / "x.csv"))), spec(tmp_path))


def test_unlabelled_rows_count_for_latency_and_drift_not_quality(tmp_path: Path) -> None:
    frame = predictions(hours=1)
    frame.loc[frame.index % 3 == 0, "label"] = np.nan  # ground truth not back yet
    summary = summarise(Location(path=str(write(frame, tmp_path / "log.csv"))), spec(tmp_path), environments=ENVS)
    (window,) = summary.windows
    labelled = frame.dropna(subset=["label"])
    assert window.digest.rows == len(frame) and window.labelled_rows == len(labelled)
    assert window.metrics(T0 + HOUR)["accuracy"] == pytest.approx(
        accuracy_score(labelled.label.astype(int), labelled.prediction))


def test_columns_env_version_and_model_from_the_data(tmp_path: Path) -> None:
    frame = predictions(rows=1200, hours=1).rename(columns={"timestamp": "ts", "label": "y"})
    frame["env"] = np.where(frame.index % 2, "production", "Staging")
    frame["version"] = np.where(frame.index % 4 < 2, "v1", "2")
    frame["model"] = np.where(frame.index % 10 == 0, "other", "churn")
    log_spec = spec(tmp_path, environment=None, columns={"timestamp": "ts", "label": "y"}, features=("age",))
    summary = summarise(Location(path=str(write(frame, tmp_path / "log.csv"))), log_spec, environments=ENVS)
    assert sorted((w.environment, w.version) for w in summary.windows) == [
        ("production", 1), ("production", 2), ("staging", 1), ("staging", 2)]
    assert summary.rows_used == 1080 and "skipped 120 row(s) of other models." in summary.notes
    assert all(set(w.metrics(T0 + HOUR)) >= {"psi:age", "accuracy"} for w in summary.windows)
    assert not any("psi:country" in w.metrics(T0 + HOUR) for w in summary.windows)


@pytest.mark.parametrize(("change", "error"), [
    (lambda f: f.drop(columns=["label"]), "has no label column 'label'"),
    (lambda f: f.assign(timestamp=["2026-11-02T09:00:00Z"] * 5 + ["yesterday"] + [
        "2026-11-02T09:00:00Z"] * (len(f) - 6)), "row 6: 'yesterday' is not an ISO 8601 timestamp"),
    (lambda f: f.assign(timestamp=f.timestamp * 1000), "(milliseconds? give seconds)"),
    (lambda f: f.assign(env="moon"), "env 'moon' is not an environment"),
    (lambda f: f.assign(version="latest"), "row 1: version 'latest' is not a version number"),
    (lambda f: f.assign(prediction=np.where(f.index == 3, np.nan, f.prediction)), "prediction has missing values"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, change, error: str) -> None:  # type: ignore[no-untyped-def]
    frame = change(predictions(rows=50))
    path = write(frame, tmp_path / "bad.csv")
    environment = None if "env" in frame.columns else "production"
    with pytest.raises(InvalidInput, match=re.escape(error)):
        summarise(Location(path=str(path)), spec(tmp_path, environment=environment), environments=ENVS)


def test_without_environment_it_asks_for_one(tmp_path: Path) -> None:
    path = write(predictions(rows=50), tmp_path / "log.csv")
    with pytest.raises(InvalidInput, match="Say which environment these predictions come from: --env NAME"):
        summarise(Location(path=str(path)), spec(tmp_path, environment=None), environments=ENVS)


def test_empty_files(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("timestamp,prediction,label\n")
    (tmp_path / "empty.jsonl").write_text("")
    for name, error in [("empty.csv", "is empty"), ("header.csv", "holds no rows"), ("empty.jsonl", "holds no rows"),
                        ("nothing-*.csv", "No file matches"), ("absent.csv", "There is no file")]:
        with pytest.raises(InvalidInput, match=error):
            summarise(Location(path=str(tmp_path / name)), spec(tmp_path), environments=ENVS)


# ---- scheduled pulls: the database on both backends -------------------------------------------------


def log_source(path: Path, tmp_path: Path, **kw: object) -> PredictionLogSource:
    ref = write(reference(), tmp_path / "reference.parquet")
    values: dict[str, object] = dict(name="churn-log", type="prediction_log", interval=timedelta(minutes=5),
                                     model="churn", path=str(path), environment="production", reference=str(ref))
    values.update(kw)
    return PredictionLogSource(**values)  # type: ignore[arg-type]


def test_a_pull_records_the_last_complete_window_once(services: Services, clock: Clock, tmp_path: Path) -> None:
    frame = predictions()
    source = log_source(write(frame, tmp_path / "log.parquet"), tmp_path)
    clock.now = T0 + 2 * HOUR + timedelta(minutes=7)  # 11:07 → the 10:00–11:00 window
    result = pull_source(services, source)
    assert result.ok, result.error
    assert {s.at for s in result.samples} == {T0 + 2 * HOUR}
    latest = Samples(services.registry).latest("churn", "production")
    hour = frame[(frame.timestamp >= (T0 + HOUR).timestamp()) & (frame.timestamp < (T0 + 2 * HOUR).timestamp())]
    assert latest["predictions"].value == len(hour)
    assert latest["accuracy"].value == pytest.approx(accuracy_score(hour.label, hour.prediction), abs=1e-12)
    assert latest["accuracy"].version == 2  # no version column: v2 served alone then (deployment history)
    clock.now += timedelta(minutes=5)  # same window again: nothing new, nothing duplicated, not an error
    again = pull_source(services, source)
    assert again.ok and again.recorded == 0 and "already recorded" in again.notes[0]
    assert len(Samples(services.registry).window("churn", "production", "accuracy", T0, T0 + 3 * HOUR)) == 1
    status_row = source_status(services.registry, ["churn-log"])["churn-log"]
    assert status_row.last_error is None and as_utc(status_row.last_success_at) == T0 + 2 * HOUR + timedelta(minutes=7)


def test_an_empty_window_says_no_data_since(services: Services, clock: Clock, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    frame = predictions(hours=1)  # rows 09:00–10:00 only
    source = log_source(write(frame, tmp_path / "log.csv"), tmp_path)
    clock.now = T0 + HOUR + timedelta(minutes=1)
    assert pull_source(services, source).ok
    clock.now = T0 + 2 * HOUR + timedelta(minutes=1)  # 10:00–11:00 is empty
    with caplog.at_level(logging.WARNING, logger="modelbot.sources"):
        result = pull_source(services, source)
    newest = datetime.fromtimestamp(int(frame.timestamp.max()), UTC).isoformat().replace("+00:00", "Z")
    assert not result.ok and result.error == (
        f"no prediction rows between 2026-11-02T10:00:00Z and 2026-11-02T11:00:00Z; no data since {newest}.")
    assert [r.getMessage() for r in caplog.records] == [f"source churn-log (prediction_log): {result.error}"]
    query = status.StatusQuery(now=clock.now, sources=[status.SourceRef("churn-log", "prediction_log")])
    env = status.model_status(services.registry, "churn", "production", query).environments[0]
    assert env.sources[0].last_success_at == T0 + HOUR + timedelta(minutes=1) and not env.sources[0].healthy
    assert ("source churn-log: no data since 2026-11-02T10:01:00Z: " + result.error) in env.notes


def test_a_log_without_labels_records_nothing(services: Services, clock: Clock, tmp_path: Path) -> None:
    path = write(predictions().drop(columns=["label"]), tmp_path / "log.csv")
    clock.now = T0 + 2 * HOUR
    result = pull_source(services, log_source(path, tmp_path))
    assert not result.ok and "has no label column 'label'" in (result.error or "")
    assert Samples(services.registry).latest("churn", "production") == {}
    assert source_status(services.registry, ["churn-log"])["churn-log"].last_error == result.error


def test_a_corrupt_file_is_an_error_not_a_crash(services: Services, clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    clock.now = T0 + 2 * HOUR
    result = pull_source(services, log_source(path, tmp_path))
    assert not result.ok and result.error is not None and result.error.startswith(f"{path}: not readable as Parquet")


# ---- more model kinds and data quality per window ----------------------------------------------------


def test_a_regression_log_gives_sklearns_regression_metrics(tmp_path: Path) -> None:
    from sklearn.metrics import (
        mean_absolute_error,
        mean_absolute_percentage_error,
        r2_score,
        root_mean_squared_error,
    )

    rng = np.random.default_rng(4)
    n = 1500
    y = rng.gamma(3.0, 40.0, n)
    frame = pd.DataFrame({"timestamp": int(T0.timestamp()) + np.sort(rng.integers(0, 2 * 3600, n)),
                          "label": y, "prediction": y + rng.normal(0, 15, n)})
    got = metrics_by_window(Location(path=str(write(frame, tmp_path / "ltv.csv"))),
                            LogSpec(model="ltv", environment="production", task="regression"))
    for start, metrics in got.items():
        rows = frame[(frame.timestamp >= start.timestamp()) & (frame.timestamp < (start + HOUR).timestamp())]
        assert metrics["mae"] == pytest.approx(mean_absolute_error(rows.label, rows.prediction), rel=1e-9)
        assert metrics["rmse"] == pytest.approx(root_mean_squared_error(rows.label, rows.prediction), rel=1e-9)
        assert metrics["r2"] == pytest.approx(r2_score(rows.label, rows.prediction), rel=1e-9)
        assert metrics["mape"] == pytest.approx(mean_absolute_percentage_error(rows.label, rows.prediction), rel=1e-9)
        assert "accuracy" not in metrics and metrics["label_coverage"] == 1.0


def test_a_multiclass_log_gives_one_vs_rest_auc(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    n = 1200
    raw = rng.gamma(1.0, 1.0, (n, 3))
    proba = raw / raw.sum(axis=1, keepdims=True)
    label = np.array([rng.choice(3, p=p) for p in proba])
    frame = pd.DataFrame({"timestamp": int(T0.timestamp()) + np.sort(rng.integers(0, 3600, n)),
                          "label": label, "prediction": proba.argmax(axis=1),
                          **{f"proba_{c}": proba[:, c] for c in range(3)}})
    got = metrics_by_window(Location(path=str(write(frame, tmp_path / "log.parquet"))),
                            LogSpec(model="churn", environment="production", columns={"score": "proba_*"}))
    (metrics,) = got.values()
    for average in ("macro", "weighted"):
        want = roc_auc_score(frame.label, proba, multi_class="ovr", average=average)
        assert metrics[f"roc_auc_ovr_{average}"] == pytest.approx(want, abs=1e-12)
    assert "proba_0:" not in " ".join(metrics) and "roc_auc" not in metrics


def test_data_quality_per_feature_and_window(tmp_path: Path) -> None:
    frame = predictions()
    frame.loc[::10, "age"] = np.nan  # 10 % missing
    frame.loc[5, "age"] = 500.0  # out of the reference's range
    frame.loc[::25, "country"] = "jp"  # never seen in the reference
    got = metrics_by_window(Location(path=str(write(frame, tmp_path / "log.csv"))), spec(tmp_path))
    first = got[T0]
    rows = frame[frame.timestamp < (T0 + HOUR).timestamp()]
    ref = reference()
    assert first["missing:age"] == pytest.approx(rows.age.isna().mean())
    present = rows.age.dropna()
    assert first["out_of_range:age"] == pytest.approx((~present.between(ref.age.min(), ref.age.max())).mean())
    assert first["new_category:country"] == pytest.approx((rows.country == "jp").mean())
    assert first["wrong_type:age"] == 0.0 and first["missing:country"] == 0.0
    assert first["psi:age"] == pytest.approx(psi(ref.age, present), abs=1e-12)  # missing values left out of drift
