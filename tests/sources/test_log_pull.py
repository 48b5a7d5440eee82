"""Scheduled pulls of prediction logs: only what is new (appends, rotation, truncation, lines
still being written, new Parquet files, SQL watermarks with lateness), each window recorded once,
versions attributed per row, and labels that arrive days late recompute the quality of the
windows their predictions belong to (acceptance 2). Both database backends."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import accuracy_score

from bot.blocks.status import model_status as render_status
from bot.blocks.text import render
from bot.config.sources import LabelsConfig, PredictionLogSource
from bot.domain.alerting.engine import AlertEngine
from bot.domain.alerting.rules import AlertRules, parse_rule
from bot.domain.errors import InvalidInput
from bot.domain.monitoring import status
from bot.domain.monitoring.recording import source_status
from bot.domain.monitoring.samples import Samples
from bot.domain.policy import default_policy
from bot.services import Services
from bot.sources.pull import pull_source
from tests.sources.conftest import T0, Clock

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def rows(start_hour: int, hours: int, per_hour: int = 60, seed: int = 1, first_id: int = 0) -> pd.DataFrame:
    """`per_hour` predictions in each hour from T0 + start_hour, ids counting from `first_id`."""
    rng = np.random.default_rng([seed, start_hour + 1000])
    n = hours * per_hour
    within = np.sort(rng.uniform(0, 3599, (hours, per_hour)), axis=1).round(3)  # exactly per_hour an hour
    stamps = T0.timestamp() + start_hour * 3600 + (np.arange(hours)[:, None] * 3600 + within).ravel()
    label = rng.integers(0, 2, n)
    return pd.DataFrame({"id": np.arange(first_id, first_id + n), "timestamp": stamps,
                         "prediction": np.where(rng.random(n) < 0.8, label, 1 - label), "label": label,
                         "latency_ms": rng.gamma(2.0, 20.0, n)})


def source(path: str | None = None, **kw: object) -> PredictionLogSource:
    values: dict[str, object] = dict(name="churn-log", type="prediction_log", interval=timedelta(minutes=5),
                                     model="churn", path=path, environment="production")
    values.update(kw)
    return PredictionLogSource(**values)  # type: ignore[arg-type]


def recorded(services: Services, metric: str = "predictions") -> dict[str, float]:
    points = Samples(services.registry).window("churn", "production", metric, T0 - DAY, T0 + 30 * DAY)
    return {p.at.strftime("%d %H:%M"): p.value for p in points}


def cursor_of(services: Services) -> dict:
    return source_status(services.registry, ["churn-log"])["churn-log"].cursor or {}


def pull(services: Services, clock: Clock, at: timedelta, src: PredictionLogSource):  # type: ignore[no-untyped-def]
    clock.now = T0 + at
    return pull_source(services, src)


# ---- files: only what is new ----------------------------------------------------------------------


def test_appended_lines_are_read_and_earlier_bytes_are_not(services: Services, clock: Clock,
                                                           tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    first = rows(0, 3)
    first.to_csv(log, index=False)
    assert pull(services, clock, 3 * HOUR + timedelta(minutes=2), source(str(log))).ok
    assert recorded(services) == {"02 12:00": 60}  # the first pull records the last complete window only
    size = log.stat().st_size
    assert cursor_of(services)["files"][next(iter(cursor_of(services)["files"]))]["resume"] == size
    # earlier bytes changed in place (same length): a pull that re-read the file would choke on them
    text = log.read_text().splitlines(keepends=True)
    text[100] = "x" * (len(text[100]) - 1) + "\n"
    log.write_text("".join(text))
    with open(log, "a") as handle:
        rows(3, 1).to_csv(handle, index=False, header=False)
    result = pull(services, clock, 4 * HOUR + timedelta(minutes=2), source(str(log)))
    assert result.ok, result.error
    assert recorded(services) == {"02 12:00": 60, "02 13:00": 60}
    accuracy = recorded(services, "accuracy")["02 13:00"]
    hour = rows(3, 1)
    assert accuracy == pytest.approx(accuracy_score(hour.label, hour.prediction), abs=1e-12)


def test_a_window_still_open_is_read_again_and_recorded_once_complete(services: Services, clock: Clock,
                                                                     tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    data = rows(0, 4)
    half = data[data.timestamp < (T0 + 3.5 * HOUR).timestamp()]
    log.write_text("".join(json.dumps(r) + "\n" for r in half.to_dict("records")))
    assert pull(services, clock, 3 * HOUR + timedelta(minutes=40), source(str(log))).ok
    assert recorded(services) == {"02 12:00": 60}
    rest = data[data.timestamp >= (T0 + 3.5 * HOUR).timestamp()].to_dict("records")
    with open(log, "a") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in rest[:-1]))
        handle.write(json.dumps(rest[-1])[:20])  # a line still being written
    assert pull(services, clock, 4 * HOUR + timedelta(minutes=1), source(str(log))).ok
    assert recorded(services) == {"02 12:00": 60, "02 13:00": 59}  # the half line is not read yet
    again = pull(services, clock, 4 * HOUR + timedelta(minutes=6), source(str(log)))
    assert again.ok and again.recorded == 0 and "already recorded" in again.notes[0]  # not again


def test_rotation_and_truncation(services: Services, clock: Clock, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    current = logs / "current.csv"
    rows(0, 3).to_csv(current, index=False)
    src = source(str(logs / "*.csv"))
    assert pull(services, clock, 3 * HOUR + timedelta(minutes=2), src).ok
    os.rename(current, logs / "2026-11-02.csv")  # rotated: same file, new name; a new current file
    rows(3, 1, seed=5).to_csv(current, index=False)
    assert pull(services, clock, 4 * HOUR + timedelta(minutes=2), src).ok
    assert recorded(services) == {"02 12:00": 60, "02 13:00": 60}  # the rotated file was not read twice
    # copy-truncate: the file is emptied and written again from the start
    rows(4, 1, seed=9).to_csv(current, index=False)
    result = pull(services, clock, 5 * HOUR + timedelta(minutes=2), src)
    assert result.ok and any("truncated" in n for n in result.notes)
    assert recorded(services) == {"02 12:00": 60, "02 13:00": 60, "02 14:00": 60}


def test_new_parquet_files_are_read_once(services: Services, clock: Clock, tmp_path: Path) -> None:
    rows(0, 3).to_parquet(tmp_path / "part-0.parquet", index=False)
    src = source(str(tmp_path / "*.parquet"))
    assert pull(services, clock, 3 * HOUR + timedelta(minutes=2), src).ok
    rows(3, 1).to_parquet(tmp_path / "part-1.parquet", index=False)
    result = pull(services, clock, 4 * HOUR + timedelta(minutes=2), src)
    assert result.ok and recorded(services) == {"02 12:00": 60, "02 13:00": 60}
    files = cursor_of(services)["files"].values()
    assert sorted(f["resume"] for f in files) == [60, 180]  # rows: both files consumed to their end


def test_rows_without_a_version_take_the_version_that_served_them(services: Services, clock: Clock,
                                                                  tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    rows(0, 4).to_csv(log, index=False)
    clock.now = T0 + 3.5 * HOUR
    services.registry.promote("churn", "1", "production", actor="alice")  # v2 → v1 in the middle of 12:00–13:00
    assert pull(services, clock, 4 * HOUR + timedelta(minutes=1), source(str(log))).ok
    by_version = Samples(services.registry).latest_by_version("churn", "production", metrics=["predictions"])
    data = rows(0, 4)
    hour = data[data.timestamp >= (T0 + 3 * HOUR).timestamp()]
    split = (T0 + 3.5 * HOUR).timestamp()
    assert {v: p.value for (_, v), p in by_version.items()} == {
        2: float((hour.timestamp < split).sum()), 1: float((hour.timestamp >= split).sum())}


# ---- SQL tables: a timestamp watermark with lateness --------------------------------------------------


def test_a_table_is_read_by_watermark_and_lateness(services: Services, clock: Clock, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = sa.create_engine(url)
    data = rows(0, 4)
    data[data.timestamp < (T0 + 3 * HOUR).timestamp()].to_sql("predictions", engine, index=False)
    src = source(None, sql_url=url, table="predictions", lateness=timedelta(minutes=30))
    assert pull(services, clock, 3 * HOUR + timedelta(minutes=31), src).ok
    assert recorded(services) == {"02 12:00": 60}
    later = data[data.timestamp >= (T0 + 3 * HOUR).timestamp()]
    later.iloc[:40].to_sql("predictions", engine, index=False, if_exists="append")
    # 13:00–14:00 is not complete until 14:30: rows may still come
    waiting = pull(services, clock, 4 * HOUR + timedelta(minutes=10), src)
    assert waiting.ok and waiting.recorded == 0
    later.iloc[40:].to_sql("predictions", engine, index=False, if_exists="append")  # late, within lateness
    assert pull(services, clock, 4 * HOUR + timedelta(minutes=31), src).ok
    assert recorded(services) == {"02 12:00": 60, "02 13:00": 60}
    engine.dispose()


# ---- late labels (acceptance 2) ---------------------------------------------------------------------


def test_labels_that_arrive_on_day_four_recompute_day_one(services: Services, clock: Clock, tmp_path: Path) -> None:
    logs = tmp_path / "predictions.csv"
    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    days = [rows(24 * d - 9, 24, per_hour=10, seed=d, first_id=10_000 * d) for d in range(5)]  # day d from 00:00
    for frame in days:
        frame.drop(columns=["label"]).to_csv(logs, index=False, mode="a", header=not logs.exists())
    src = source(str(logs), window=DAY, labels=LabelsConfig(path=str(labels_dir / "*.csv")))
    day = lambda d: (T0 - 9 * HOUR + d * DAY)  # noqa: E731 - midnight starting day d
    clock.now = day(2) + timedelta(minutes=5)
    assert pull_source(services, src).ok  # records day 1: no labels yet
    pd.DataFrame({"id": [-1], "label": [0]}).to_csv(labels_dir / "empty.csv", index=False)
    clock.now = day(4) + timedelta(minutes=5)
    assert pull_source(services, src).ok  # day 2 and day 3, still without labels
    before = {k: v for k, v in recorded(services, "label_coverage").items()}
    assert set(before.values()) == {0.0} and len(before) == 3
    assert recorded(services, "accuracy") == {}
    # on day 4, labels for 62 % of day 1's predictions arrive
    day1 = days[1]
    back = day1.sample(frac=0.62, random_state=0)
    back[["id", "label"]].to_csv(labels_dir / "day4.csv", index=False)
    clock.now = day(4) + timedelta(hours=6)
    result = pull_source(services, src)
    assert result.ok and any("recomputed" in n for n in result.notes), result
    accuracy = recorded(services, "accuracy")
    assert list(accuracy) == ["04 00:00"]  # stamped at the end of day 1, the window of the predictions
    assert accuracy["04 00:00"] == pytest.approx(accuracy_score(back.label, back.prediction), abs=1e-12)
    coverage = recorded(services, "label_coverage")
    assert coverage["04 00:00"] == pytest.approx(len(back) / len(day1))
    assert {k: v for k, v in coverage.items() if k != "04 00:00"} == {
        k: v for k, v in before.items() if k != "04 00:00"}  # days 2 and 3 unchanged
    # the next day's window (day 4) is recorded without day 1's labels, and nothing moved again
    clock.now = day(5) + timedelta(minutes=5)
    assert pull_source(services, src).ok
    assert recorded(services, "label_coverage")["07 00:00"] == 0.0 and list(recorded(services, "accuracy")) == [
        "04 00:00"]
    # status shows the coverage of the window the predictions belong to
    query = status.StatusQuery(now=day(2) + HOUR, window=DAY)
    env = status.model_status(services.registry, "churn", "production", query).environments[0]
    assert env.coverage is not None and env.coverage.share == pytest.approx(0.62, abs=0.005)
    text = render(render_status(status.model_status(services.registry, "churn", "production", query)).blocks).text
    assert "Labels for 62% of the last 24h's predictions" in text


def test_a_quality_rule_waits_for_enough_labels(services: Services, clock: Clock) -> None:
    from sqlmodel import select

    from bot.domain.monitoring.samples import SampleIn
    from storage.models import AlertState

    rules = AlertRules(services.registry, default_policy())
    waits = rules.add(parse_rule("churn", "production", "accuracy", op="<", threshold="0.9", min_coverage="50%"),
                      actor="alice", now=T0)
    eager = rules.add(parse_rule("churn", "production", "accuracy", op="<", threshold="0.9"), actor="alice", now=T0)
    assert waits.min_coverage == 0.5 and "≥ 50% labels" in waits.describe()
    at = T0 + HOUR

    def window(value: float, coverage: float, when: timedelta) -> list[SampleIn]:
        return [SampleIn("churn", "production", "accuracy", value, at + when, version=2),
                SampleIn("churn", "production", "label_coverage", coverage, at + when, version=2)]

    # the newest window has 10 % of its labels (accuracy 0.5); the one before, 80 % (0.95)
    Samples(services.registry).record(window(0.95, 0.8, timedelta(0)) + window(0.5, 0.1, timedelta(minutes=2)),
                                      source="log")
    clock.now = at + timedelta(minutes=3)
    AlertEngine(services.registry, clock=clock).evaluate()
    with services.registry.reading() as session:
        states = {s.rule_id: (s.state, s.last_value) for s in session.exec(select(AlertState)).all()}
    assert states[eager.id] == ("firing", 0.5)
    assert states.get(waits.id, ("inactive", None))[0] == "inactive"  # judged on the window with 80 % labels
    with pytest.raises(InvalidInput, match="quality metrics"):
        rules.add(parse_rule("churn", "production", "latency_p95_ms", op=">", threshold="100", min_coverage="50%"),
                  actor="alice", now=T0)
