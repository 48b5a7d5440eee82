"""`modelbot status` and `modelbot ingest` as scripts use them: JSON keys, exit codes, one-line
errors, and nothing recorded when the input is bad."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from bot.cli.main import main
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.registry import Registry
from storage.db import Database, DatabaseSettings
from storage.models import MetricSample

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELBOT_DATABASE_URL", database_url)
    config = tmp_path / "modelbot.toml"
    config.write_text("")
    monkeypatch.setenv("MODELBOT_CONFIG", str(config))

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exited:
            code = int(exited.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    assert run("register", "churn", "--artifact", "s3://m/churn/1")[0] == 0
    assert run("promote", "churn", "1", "production", "--actor", "alice")[0] == 0
    return run


def sample_count(url: str) -> int:
    db = Database(DatabaseSettings(url=url))
    try:
        with db.read() as session:
            return int(session.execute(sa.select(sa.func.count()).select_from(MetricSample)).scalar_one())
    finally:
        db.dispose()


def log(tmp_path: Path, rows: int = 400, **changes: object) -> Path:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "ts": int(T0.timestamp()) + np.sort(rng.integers(0, 7200, rows)),
        "prediction": rng.integers(0, 2, rows), "label": rng.integers(0, 2, rows),
        "latency_ms": rng.gamma(2, 20, rows), "age": rng.normal(40, 10, rows),
    })
    for column, value in changes.items():
        if value is None:
            frame = frame.drop(columns=[column])
        else:
            frame[column] = value
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    pd.DataFrame({"age": rng.normal(45, 10, 500)}).to_csv(tmp_path / "ref.csv", index=False)
    return path


def test_ingest_prints_what_it_recorded(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    path = log(tmp_path)
    code, out, err = cli("ingest", str(path), "--model", "churn", "--env", "production", "--column", "timestamp=ts",
                         "--reference", str(tmp_path / "ref.csv"), "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert set(doc) == {"model", "source", "rows_read", "rows_used", "recorded", "windows", "notes"}
    assert doc["rows_read"] == doc["rows_used"] == 400 and len(doc["windows"]) == 2
    first = doc["windows"][0]
    assert (first["environment"], first["version"], first["start"], first["end"]) == (
        "production", None, "2026-11-02T09:00:00Z", "2026-11-02T10:00:00Z")
    assert {"accuracy", "f1", "latency_p95_ms", "psi:age", "drift_share", "dataset_drift"} <= set(first["metrics"])
    assert doc["recorded"] == sum(len(w["metrics"]) for w in doc["windows"]) == sample_count(database_url)
    code, out, _ = cli("ingest", str(path), "--model", "churn", "--env", "production", "--column", "timestamp=ts",
                       "--version", "1", "--window", "3h")  # windows align to the epoch: 09:00 starts a 3h one
    assert code == 0 and out.startswith("recorded ") and "1 window(s) from 2026-11-02 09:00 to 2026-11-02 12:00" in out


@pytest.mark.parametrize(("args", "changes", "message"), [
    (("--env", "production"), {"label": None}, "has no label column 'label'"),
    (("--env", "production"), {"ts": ["soon"] * 400}, "row 1: 'soon' is not an ISO 8601 timestamp"),
    (("--env", "moon"), {}, "There is no environment 'moon'"),
    (("--env", "production", "--features", "age,height", "--reference", "REF"), {}, "has no feature column(s) height"),
    (("--env", "production", "--features", "age"), {}, "Drift needs a reference sample"),
    (("--env", "production", "--column", "when=ts"), {}, "--column when=ts: write ROLE=NAME"),
])
def test_bad_input_is_one_line_exit_2_nothing_recorded(cli, tmp_path: Path, database_url: str,  # type: ignore[no-untyped-def]
                                                       args: tuple[str, ...], changes: dict[str, object],
                                                       message: str) -> None:
    path = log(tmp_path, **changes)
    extra = () if "--column" in args else ("--column", "timestamp=ts")
    args = tuple(str(tmp_path / "ref.csv") if a == "REF" else a for a in args)
    code, out, err = cli("ingest", str(path), "--model", "churn", *args, *extra)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1, err
    assert sample_count(database_url) == 0


def test_unknown_model_and_empty_file(cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    path = log(tmp_path)
    code, _, err = cli("ingest", str(path), "--model", "nope", "--env", "production")
    assert code == 2 and "nope" in err and err.count("\n") == 1
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = cli("ingest", str(empty), "--model", "churn", "--env", "production")
    assert (code, err) == (2, f"modelbot: {empty} is empty: it has no header and no rows.\n")
    assert sample_count(database_url) == 0


def test_status_json_and_text(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    db = Database(DatabaseSettings(url=database_url))
    try:
        Samples(Registry(db)).record([
            SampleIn("churn", "production", "accuracy", 0.8, now - timedelta(hours=30), version=1),
            SampleIn("churn", "production", "accuracy", 0.9, now - timedelta(hours=1), version=1),
        ], source="test")
    finally:
        db.dispose()
    code, out, err = cli("status", "churn", "production", "--window", "24h", "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert set(doc) == {"model", "generated_at", "window", "environments"} and doc["window"]["seconds"] == 86400
    (env,) = doc["environments"]
    assert env["metrics"]["accuracy"]["value"] == 0.9
    assert env["metrics"]["accuracy"]["change_vs_previous_window"] == pytest.approx(0.1)
    code, out, _ = cli("status", "churn", "--window", "2d")
    assert code == 0 and "churn: status over the last 2d" in out and "production: v1" in out
    code, out, _ = cli("status")
    assert code == 0 and "churn  production  v1" in out
    code, _, err = cli("status", "churn", "--window", "soon")
    assert code == 2 and "'soon' is not a duration" in err


def test_status_right_after_a_promotion_labels_each_number_with_its_version(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 13, defect 1, through the door where it was found: after promoting v2 (no v2 data yet),
    `modelbot status` showed v1's numbers as v2's "latest" and compared v1 with itself."""
    now = datetime.now(UTC)
    db = Database(DatabaseSettings(url=database_url))
    try:
        Samples(Registry(db)).record([
            SampleIn("churn", "production", "accuracy", 0.8, now - timedelta(hours=3), version=1),
            SampleIn("churn", "production", "accuracy", 0.9, now - timedelta(hours=1), version=1),
        ], source="test")
    finally:
        db.dispose()
    assert cli("register", "churn", "--artifact", "s3://m/churn/2")[0] == 0
    assert cli("promote", "churn", "2", "production", "--actor", "alice")[0] == 0
    code, out, err = cli("status", "churn", "production", "--json")
    assert (code, err) == (0, "")
    accuracy = json.loads(out)["environments"][0]["metrics"]["accuracy"]
    assert (accuracy["version"], accuracy["value"], accuracy["change_vs_previous_version"]) == (2, None, None)
    assert accuracy["previous_version"]["version"] == 1
    assert accuracy["previous_version"]["mean"] == pytest.approx(0.85)
    code, out, _ = cli("status", "churn", "production")
    assert code == 0 and "v2: no data yet" in out
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    row = next(line for line in out.splitlines() if line.startswith("accuracy"))
    assert header.split()[:5] == ["metric", "v2", "Δ24h", "v1", "before"]
    assert row.split()[:6] == ["accuracy", "no", "data", "yet", "–", "0.85"]  # v1's mean, under v1's name
