"""Prediction logs with ground truth → per-window quality, latency and drift samples.

Columns (names configurable per source, or `--column ROLE=NAME` on `modelbot ingest`):
`timestamp` (ISO 8601 or epoch seconds), `prediction`, `label` (required); `score`
(probability of the positive label, for ROC AUC), `latency_ms`, `model`, `version`,
`env` (optional); every other column is a feature, unless `features` lists them.

Rows are cut into windows aligned to the epoch (a 1h window is 09:00–10:00 UTC) per
environment and version, streamed chunk by chunk through the monitoring maths
(`bot.domain.monitoring.DigestAccumulator`), and each window becomes samples stamped
at the window's end (or at `now` for the window still running):

    predictions, accuracy, precision, recall, f1, error_rate (1 − accuracy),
    roc_auc (with scores and both classes), latency_p50_ms / _p95_ms / _p99_ms,
    throughput_per_s (rows / window seconds), and with a reference sample:
    <method>:<feature> per feature (psi:age by default; p-value tests are written
    ks_p:<feature>, chisquare_p:<feature>, z_p:<feature>), drift_share, dataset_drift (1/0).

Rows whose label is missing (ground truth not back yet) still count for latency,
throughput and drift; quality uses labelled rows only. Missing feature values are
dropped before drift tests (Evidently's behaviour). Rows of other models (a `model`
column) or, when an environment/version is given, of other environments/versions are
skipped and counted in the notes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from bot.config.sources import PredictionLogSource
from bot.domain import names
from bot.domain.entities import iso
from bot.domain.errors import InvalidInput
from bot.domain.monitoring import DigestAccumulator, DriftConfig, MonitoringDigest, throughput
from bot.domain.registry import Registry
from bot.domain.samples import SampleIn
from bot.sources import log_reader
from bot.sources.common import Collected
from bot.sources.log_reader import Chunk, Location
from bot.sources.recording import recorded_at

ROLES = ("timestamp", "prediction", "label", "score", "latency_ms", "model", "version", "env")
REQUIRED = ("timestamp", "prediction", "label")
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
_BAD_METRIC_CHARS = re.compile(r"[^A-Za-z0-9_.:/-]")
NO_VERSION = -1


@dataclass(frozen=True)
class LogSpec:
    """How to read one model's log: which columns mean what, window length, drift settings."""

    model: str
    environment: str | None = None
    version: int | None = None
    features: tuple[str, ...] | None = None
    reference: str | None = None
    window: timedelta = timedelta(hours=1)
    columns: Mapping[str, str] = field(default_factory=dict)
    chunk_rows: int = 100_000
    drift_method: str = "psi"
    positive_label: Any = 1

    def column(self, role: str) -> str:
        return self.columns.get(role, role)

    @classmethod
    def of(cls, source: PredictionLogSource) -> LogSpec:
        return cls(model=source.model, environment=source.environment, version=source.version,
                   features=source.features, reference=source.reference, window=source.window,
                   columns=dict(source.columns), chunk_rows=source.chunk_rows, drift_method=source.drift_method,
                   positive_label=source.positive_label)


@dataclass(frozen=True)
class WindowDigest:
    """One window of one environment and version, digested."""

    environment: str
    version: int | None
    start: datetime
    end: datetime
    digest: MonitoringDigest
    labelled_rows: int

    def metrics(self, now: datetime) -> dict[str, float]:
        """The sample values of this window, by metric name (finite numbers only)."""
        d = self.digest
        out: dict[str, float] = {"predictions": float(d.rows)}
        if d.quality is not None:
            q = d.quality
            out.update(accuracy=q.accuracy, precision=q.precision, recall=q.recall, f1=q.f1,
                       error_rate=q.error_rate)
            if q.roc_auc is not None:
                out["roc_auc"] = q.roc_auc
        if d.latency is not None:
            out.update(latency_p50_ms=d.latency.p50_ms, latency_p95_ms=d.latency.p95_ms,
                       latency_p99_ms=d.latency.p99_ms)
        until = min(self.end, now)
        rate = throughput(d.rows, self.start.timestamp(), until.timestamp()) if until > self.start else None
        if rate is not None:
            out["throughput_per_s"] = rate
        if d.drift is not None:
            for feature in d.drift.features:
                name, value = feature_metric(feature.name, feature.method, feature.statistic, feature.p_value)
                if value is not None:
                    out[name] = value
            out["drift_share"] = d.drift.share_drifted
            out["dataset_drift"] = 1.0 if d.drift.dataset_drift else 0.0
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}

    def samples(self, model: str, now: datetime) -> list[SampleIn]:
        at = min(self.end, now)
        return [SampleIn(model, self.environment, metric, value, at, version=self.version)
                for metric, value in self.metrics(now).items()]

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {"environment": self.environment, "version": self.version, "start": iso(self.start),
                "end": iso(self.end), "rows": self.digest.rows, "labelled_rows": self.labelled_rows,
                "metrics": self.metrics(now), "notes": list(self.digest.notes)}


@dataclass(frozen=True)
class LogSummary:
    rows_read: int
    rows_used: int
    windows: tuple[WindowDigest, ...]
    newest: datetime | None  # newest timestamp seen anywhere in the log (also outside the range)
    notes: tuple[str, ...] = ()


def feature_metric(feature: str, method: str, statistic: float, p_value: float | None) -> tuple[str, float | None]:
    """`psi:age` = 0.03; for p-value tests the p-value: `ks_p:age` = 0.41 (lower = more drift)."""
    safe = _BAD_METRIC_CHARS.sub("_", feature)
    if method in P_VALUE_METHODS:
        prefix, value = f"{method}_p:", p_value
    else:
        prefix, value = f"{method}:", statistic
    return (prefix + safe)[:128], value


# ---- the summary ------------------------------------------------------------------------------


def summarise(
    location: Location,
    spec: LogSpec,
    *,
    environments: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
) -> LogSummary:
    """Digest every window of the log with rows in [since, until); raises InvalidInput on bad data."""
    reference = _reference(spec)
    state = _State(spec, environments, reference, since, until)
    for chunk in log_reader.chunks(location, spec.chunk_rows):
        state.add(chunk)
    if state.rows_read == 0:
        raise InvalidInput(f"{location.describe()} holds no rows.")
    return state.result()


def _reference(spec: LogSpec) -> pd.DataFrame | None:
    if spec.reference is None:
        if spec.features:
            raise InvalidInput("Drift needs a reference sample: give --reference PATH (or reference = \"…\").")
        return None
    return log_reader.read_all(Location(path=spec.reference))


class _State:
    """Accumulators per (environment, version, window); columns fixed by the first chunk."""

    def __init__(self, spec: LogSpec, environments: Sequence[str], reference: pd.DataFrame | None,
                 since: datetime | None, until: datetime | None) -> None:
        self.spec = spec
        self.environments = tuple(environments)
        self.reference = reference
        self.since = None if since is None else since.timestamp()
        self.until = None if until is None else until.timestamp()
        self.width = spec.window.total_seconds()
        self.config = DriftConfig(method=spec.drift_method, js_binning="quantile",  # type: ignore[arg-type]
                                  drop_missing=True)
        self.rows_read = self.rows_used = 0
        self.newest: float | None = None
        self.present: dict[str, str] = {}  # role -> column in the data
        self.features: list[str] = []
        self.skipped: dict[str, int] = {}
        self.notes: list[str] = []
        self.accumulators: dict[tuple[str, int, int], tuple[DigestAccumulator, DigestAccumulator, list[int]]] = {}

    # columns are resolved once, from the first chunk (every file of a glob must match)
    def _resolve(self, chunk: Chunk) -> None:
        columns = [str(c) for c in chunk.frame.columns]
        for role in REQUIRED:
            name = self.spec.column(role)
            if name not in columns:
                flag = f"--column {role}=NAME" if role not in self.spec.columns else f"columns.{role}"
                raise InvalidInput(f"{chunk.where} has no {role} column '{name}' (columns: "
                                   f"{', '.join(columns[:15])}); name it with {flag}.")
        self.present = {role: self.spec.column(role) for role in ROLES if self.spec.column(role) in columns}
        taken = set(self.present.values())
        if self.spec.features is not None:
            roles = [f for f in self.spec.features if f in taken]
            if roles:
                raise InvalidInput(f"{', '.join(roles)} cannot be a feature: it is the {_role_of(roles[0], self.present)} "
                                   "column.")
            missing = [f for f in self.spec.features if f not in columns]
            if missing:
                raise InvalidInput(f"{chunk.where} has no feature column(s) {', '.join(missing)}.")
            self.features = list(self.spec.features)
        else:
            self.features = [c for c in columns if c not in taken]
        if self.reference is not None:
            absent = [f for f in self.features if f not in self.reference.columns]
            if absent and self.spec.features is not None:
                raise InvalidInput(f"The reference sample has no column(s) {', '.join(absent)}.")
            if absent:
                self.notes.append(f"no drift for {', '.join(absent)}: not in the reference sample.")
            self.features = [f for f in self.features if f in self.reference.columns]
        else:
            self.features = []
        if "env" not in self.present and self.spec.environment is None:
            raise InvalidInput("Say which environment these predictions come from: --env NAME (or an env column).")

    def add(self, chunk: Chunk) -> None:
        if not self.present:
            self._resolve(chunk)
        frame = chunk.frame
        missing = [c for c in (*self.present.values(), *self.features) if c not in frame.columns]
        if missing:
            raise InvalidInput(f"{chunk.where} lacks column(s) {', '.join(missing)} that earlier files have.")
        n = len(frame)
        if n == 0:
            return
        self.rows_read += n
        seconds = log_reader.epoch_seconds(frame[self.present["timestamp"]], chunk.where, chunk.first_row)
        top = float(seconds.max())
        self.newest = top if self.newest is None else max(self.newest, top)
        keep = np.ones(n, dtype=bool)
        if self.since is not None:
            keep &= seconds >= self.since
        if self.until is not None:
            keep &= seconds < self.until
        keep &= self._filter_model(frame)
        envs = self._environments(frame, chunk)
        keep &= envs != ""
        versions = self._versions(frame, chunk)
        if self.spec.version is not None:
            self._skip("of other versions", int((keep & (versions != self.spec.version)).sum()))
            keep &= versions == self.spec.version
        if not keep.all():
            frame, seconds, envs, versions = frame[keep], seconds[keep], envs[keep], versions[keep]
        if len(frame) == 0:
            return
        self.rows_used += len(frame)
        windows = np.floor(seconds / self.width).astype(np.int64)
        keys = pd.DataFrame({"e": envs, "v": versions, "w": windows})
        for key, positions in keys.groupby(["e", "v", "w"], sort=False).indices.items():
            self._update(tuple(key), frame.iloc[positions], seconds[positions], chunk)

    def _update(self, key: tuple[Any, ...], rows: pd.DataFrame, seconds: np.ndarray, chunk: Chunk) -> None:
        env, version, window = str(key[0]), int(key[1]), int(key[2])
        slot = self.accumulators.get((env, version, window))
        if slot is None:
            slot = (self._quality_accumulator(), self._ops_accumulator(), [0])
            self.accumulators[(env, version, window)] = slot
        quality, ops, labelled = slot
        p = self.present
        try:
            ops_columns: dict[str, Any] = {p["timestamp"]: seconds}
            if "latency_ms" in p:
                latency = pd.to_numeric(rows[p["latency_ms"]], errors="coerce").to_numpy(dtype=np.float64)
                if np.isnan(latency).any():
                    raise InvalidInput(f"{p['latency_ms']} has empty or non-numeric values")
                ops_columns[p["latency_ms"]] = latency
            for feature in self.features:
                ops_columns[feature] = rows[feature].to_numpy()
            ops.update(ops_columns)
            has_label = rows[p["label"]].notna().to_numpy()
            if has_label.any():
                labelled_rows = rows[has_label]
                columns = {p["label"]: _labels(labelled_rows[p["label"]]),
                           p["prediction"]: _labels(labelled_rows[p["prediction"]])}
                if "score" in p:
                    columns[p["score"]] = pd.to_numeric(labelled_rows[p["score"]], errors="coerce").to_numpy(
                        dtype=np.float64)
                quality.update(columns)
                labelled[0] += int(has_label.sum())
        except InvalidInput as exc:
            raise InvalidInput(f"{chunk.where} (rows {chunk.first_row:,}–{chunk.first_row + len(chunk.frame) - 1:,}): "
                               f"{exc.message.rstrip('.')}.") from None

    def _quality_accumulator(self) -> DigestAccumulator:
        p = self.present
        return DigestAccumulator(None, (), label_column=p["label"], prediction_column=p["prediction"],
                                 score_column=p.get("score"),
                                 pos_label=self.spec.positive_label)

    def _ops_accumulator(self) -> DigestAccumulator:
        return DigestAccumulator(self.reference, self.features, label_column=None, prediction_column=None,
                                 latency_column=self.present.get("latency_ms"),
                                 timestamp_column=self.present["timestamp"], config=self.config)

    def _filter_model(self, frame: pd.DataFrame) -> np.ndarray:
        if "model" not in self.present:
            return np.ones(len(frame), dtype=bool)
        mine = (frame[self.present["model"]].astype(str).str.strip().str.lower() == self.spec.model.lower()).to_numpy()
        self._skip("of other models", int((~mine).sum()))
        return mine

    def _environments(self, frame: pd.DataFrame, chunk: Chunk) -> np.ndarray:
        wanted = self.spec.environment
        if "env" not in self.present:
            return np.full(len(frame), wanted, dtype=object)
        raw = frame[self.present["env"]]
        values = raw.astype(str).str.strip().str.lower().str.lstrip("@").to_numpy(dtype=object)
        values[raw.isna().to_numpy()] = ""
        unknown = sorted({v for v in set(values) if v and v not in self.environments})
        if unknown:
            raise InvalidInput(f"{chunk.where}: env '{names.preview(unknown[0])}' is not an environment; use one of "
                               f"{', '.join(self.environments)}.")
        if (values == "").any():
            self._skip("without an environment", int((values == "").sum()))
        if wanted is not None:
            other = (values != wanted) & (values != "")
            self._skip("of other environments", int(other.sum()))
            values = np.where(other, "", values)
        return values

    def _versions(self, frame: pd.DataFrame, chunk: Chunk) -> np.ndarray:
        if "version" not in self.present:
            default = self.spec.version if self.spec.version is not None else NO_VERSION
            return np.full(len(frame), default, dtype=np.int64)
        raw = frame[self.present["version"]]
        text = raw.astype(str).str.strip().str.lower().str.removeprefix("v")
        numbers = pd.to_numeric(text, errors="coerce")
        bad = numbers.isna() & raw.notna()
        bad |= numbers.notna() & ((numbers < 1) | (numbers % 1 != 0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidInput(f"{chunk.where}: row {chunk.first_row + i:,}: version "
                               f"'{names.preview(str(raw.iloc[i]))}' is not a version number.")
        return numbers.fillna(NO_VERSION).to_numpy(dtype=np.int64)

    def _skip(self, why: str, count: int) -> None:
        if count:
            self.skipped[why] = self.skipped.get(why, 0) + count

    def result(self) -> LogSummary:
        windows = []
        for (env, version, window), (quality, ops, labelled) in sorted(self.accumulators.items()):
            start = datetime.fromtimestamp(window * self.width, UTC)
            digest = ops.result()
            notes = list(digest.notes)
            q = None
            if labelled[0]:
                q_digest = quality.result()
                q = q_digest.quality
                notes += q_digest.notes
            else:
                notes.append("no labelled rows yet: quality skipped.")
            windows.append(WindowDigest(
                environment=env, version=None if version == NO_VERSION else version, start=start,
                end=start + self.spec.window, labelled_rows=labelled[0],
                digest=MonitoringDigest(digest.rows, q, digest.latency, digest.drift, tuple(notes)),
            ))
        notes = list(self.notes) + [f"skipped {count:,} row(s) {why}." for why, count in self.skipped.items()]
        newest = None if self.newest is None else datetime.fromtimestamp(self.newest, UTC)
        return LogSummary(self.rows_read, self.rows_used, tuple(windows), newest, tuple(notes))


def _labels(column: pd.Series) -> np.ndarray:
    """Labels as written: a float column of whole numbers (ints with gaps read as float) → ints,
    so labels 1.0 and predictions 1 are the same class."""
    values = column.to_numpy()
    if values.dtype.kind == "f" and np.isfinite(values).all() and (values % 1 == 0).all():
        return values.astype(np.int64)
    return values


def _role_of(column: str, present: Mapping[str, str]) -> str:
    return next(role for role, name in present.items() if name == column)


# ---- scheduled pulls and one-off loads ----------------------------------------------------------


def location_of(source: PredictionLogSource) -> Location:
    return Location(path=source.path, sql_url=source.sql_url, table=source.table)


def last_complete_window(now: datetime, window: timedelta) -> tuple[datetime, datetime]:
    width = window.total_seconds()
    end = datetime.fromtimestamp(math.floor(now.timestamp() / width) * width, UTC)
    return end - window, end


def collect(registry: Registry, source: PredictionLogSource, now: datetime) -> Collected:
    """The last complete window, once: a window this source already recorded is not read again."""
    start, end = last_complete_window(now, source.window)
    out = Collected()
    if recorded_at(registry, source.name, end):
        out.notes.append(f"the window {_hhmm(start)}–{_hhmm(end)} is already recorded.")
        out.up_to_date = True
        return out
    registry.get_model(source.model)
    summary = summarise(location_of(source), LogSpec.of(source), environments=registry.environments,
                        since=start, until=end)
    out.notes.extend(summary.notes)
    if not summary.windows:
        newest = f"; no data since {iso(summary.newest)}" if summary.newest else ""
        out.errors.append(f"no prediction rows between {iso(start)} and {iso(end)}{newest}.")
        return out
    for window in summary.windows:
        out.samples.extend(window.samples(source.model, now))
        out.notes.extend(f"{window.environment} {_hhmm(window.start)}: {n}" for n in window.digest.notes)
    return out


def _hhmm(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M}"
