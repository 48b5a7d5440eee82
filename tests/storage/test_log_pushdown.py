"""On PostgreSQL, a prediction table digested by the database gives the numbers the pandas path
gives on the same table: quality (confusion counts, rank-sum ROC AUC, regression sums), latency
quantiles (`percentile_cont`), drift by every method (Sturges bins, Wasserstein grid, value counts,
quantile edges, and KS from fetched values) and data quality — per environment, version and window,
with versions attributed from the deployment history and labels joined from another table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from bot.domain.monitoring.attribution import Move, ServingHistory
from bot.domain.monitoring.log_files import Location
from bot.domain.monitoring.log_pushdown import summarise_table
from bot.domain.monitoring.prediction_logs import LabelsSpec, LogSpec, summarise

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ENVS = ("staging", "production")
REL = 1e-12


def predictions(rows: int = 6000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    score = np.round(np.clip(0.3 * label + rng.uniform(0, 0.7, rows), 0, 1), 2)  # ties on purpose
    age = rng.normal(44, 10, rows)
    age[::17] = np.nan
    age[5] = 400.0
    frame = pd.DataFrame({
        "id": np.arange(rows),
        "ts": pd.to_datetime(T0.timestamp() + np.sort(rng.uniform(0, 3 * 3600, rows)), unit="s", utc=True),
        "env": rng.choice(["production", "Staging", "@production"], rows),
        "prediction": (score > 0.5).astype(int), "label": label.astype(float), "score": score,
        "latency_ms": rng.gamma(2.0, 25.0, rows), "age": age,
        "plan": rng.choice(["basic", "pro", "team", "gold"], rows, p=[0.5, 0.3, 0.15, 0.05]),
        "seats": rng.integers(1, 5, rows).astype(float),
    })
    frame.loc[frame.index % 9 == 0, "label"] = np.nan  # labels not back yet
    frame.loc[3, "plan"] = None
    return frame


def reference(rows: int = 3000, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.normal(40, 10, rows), "plan": rng.choice(["basic", "pro", "team"], rows),
                         "seats": rng.integers(1, 4, rows).astype(float)})


@pytest.fixture
def table(postgres_url: str, tmp_path) -> tuple[str, pd.DataFrame, str]:  # type: ignore[no-untyped-def]
    engine = sa.create_engine(postgres_url)
    frame = predictions()
    frame.to_sql("predictions", engine, index=False)
    labels = frame[["id", "label"]].dropna().sample(frac=0.5, random_state=1)
    labels.to_sql("labels", engine, index=False)
    engine.dispose()
    ref = tmp_path / "reference.parquet"
    reference().to_parquet(ref, index=False)
    return postgres_url, frame, str(ref)


def history(env: str) -> ServingHistory:
    """v1 serves from the start; a canary of v2 at 20 % from 10:30; v2 promoted at 11:15."""
    return ServingHistory([
        Move(T0 - timedelta(days=1), "promote", None, 1),
        Move(T0 + timedelta(minutes=90), "canary_start", 1, 2, 20),
        Move(T0 + timedelta(minutes=135), "canary_promote", 1, 2),
    ])


def both_ways(url: str, spec: LogSpec) -> tuple[dict, dict]:
    location = Location(sql_url=url, table="predictions")
    pandas_path = summarise(location, spec, environments=ENVS, serving=history)
    database = summarise_table(location, spec, environments=ENVS, start=T0.timestamp(),
                               end=(T0 + timedelta(hours=3)).timestamp(), reference=_reference(spec),
                               serving=history)
    now = T0 + timedelta(days=1)
    by_window = {(w.environment, w.version, w.start): w.metrics(now) for w in pandas_path.windows}
    pushed = {(w.environment, w.version, w.start): w.metrics(now) for w in database.windows}
    return by_window, pushed


def _reference(spec: LogSpec) -> pd.DataFrame | None:
    return None if spec.reference is None else pd.read_parquet(spec.reference)


def assert_same(expected: dict, got: dict) -> None:
    assert sorted(got, key=str) == sorted(expected, key=str)
    for key, metrics in expected.items():
        assert set(got[key]) == set(metrics), key
        for name, value in metrics.items():
            assert got[key][name] == pytest.approx(value, rel=REL, abs=REL), (key, name)


@pytest.mark.parametrize("method", ["psi", "jensenshannon", "wasserstein", "ks", "chisquare", "auto"])
def test_database_numbers_equal_the_pandas_path(table: tuple[str, pd.DataFrame, str], method: str) -> None:
    url, _, ref = table
    if method == "ks":  # a reference above 10,000 rows: the asymptotic p-value, fast (the exact one is tested apart)
        reference(12_000).to_parquet(ref, index=False)
    spec = LogSpec(model="churn", reference=ref, features=("age", "plan", "seats") if method not in (
        "ks", "wasserstein") else ("age",), drift_method=method, columns={"timestamp": "ts"})
    expected, got = both_ways(url, spec)
    assert len(expected) >= 6  # two environments, three hours, v1 / mixed canary / v2
    assert {v for _, v, _ in expected} == {1, 2, None}
    assert_same(expected, got)
    some = next(iter(expected.values()))
    assert {"roc_auc", "latency_p99_ms", "missing:age", "out_of_range:age"} <= set(some)


def test_regression_in_the_database(table: tuple[str, pd.DataFrame, str]) -> None:
    url, _, _ = table
    spec = LogSpec(model="churn", task="regression", columns={"timestamp": "ts", "prediction": "score"},
                   features=())
    expected, got = both_ways(url, spec)
    assert_same(expected, got)
    assert "rmse" in next(iter(expected.values()))


def test_labels_joined_in_the_database(table: tuple[str, pd.DataFrame, str]) -> None:
    url, _, _ = table
    spec = LogSpec(model="churn", columns={"timestamp": "ts"}, features=(),
                   labels=LabelsSpec(Location(sql_url=url, table="labels")))
    expected, got = both_ways(url, spec)
    assert_same(expected, got)
    coverage = [m["label_coverage"] for m in got.values()]
    assert all(0.3 < c < 0.6 for c in coverage)


def test_a_scheduled_pull_on_postgres_is_computed_there(table: tuple[str, pd.DataFrame, str], sqlite_url: str) -> None:
    from bot.domain.monitoring import log_pull
    from bot.domain.registry import NewVersion, Registry
    from storage.db import Database, DatabaseSettings

    url, _, ref = table
    db = Database(DatabaseSettings(url=sqlite_url))
    db.upgrade()
    try:
        registry = Registry(db, clock=lambda: T0 - timedelta(days=1))
        registry.register(NewVersion(model="churn", artifact_uri="s3://m", actor="ci"))
        registry.promote("churn", "1", "production", actor="ci")
        now = T0 + timedelta(hours=3, minutes=5)
        results = {}
        for pushdown in (True, False):
            spec = LogSpec(model="churn", reference=ref, features=("age", "plan"), columns={"timestamp": "ts"},
                           pushdown=pushdown)
            source = log_pull.LogSource(f"log-{pushdown}", Location(sql_url=url, table="predictions"), spec)
            collected = log_pull.collect(registry, source, now)
            assert not collected.errors
            results[pushdown] = {(s.environment, s.version, s.metric): s.value for s in collected.samples}
            assert ("computed by the database" in collected.notes) == pushdown
        assert results[True].keys() == results[False].keys() and len(results[True]) > 20
        for key, value in results[False].items():
            assert results[True][key] == pytest.approx(value, rel=REL, abs=REL), key
    finally:
        db.dispose()
