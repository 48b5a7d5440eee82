"""Prediction logs → per-window quality, latency, drift and data-quality samples.

Columns (names configurable per source, or `--column ROLE=NAME` on `modelbot ingest`):
`timestamp` (ISO 8601 or epoch seconds) and `prediction` (required); `label` (required unless
labels come from elsewhere, see below); `score` (probability of the positive label, for ROC AUC
— or `score = "proba_*"`: one probability column per class, `proba_<class>`, for one-vs-rest
ROC AUC); `latency_ms`, `model`, `version`, `env`, `id` (optional); every other column is a
feature, unless `features` lists them.

Rows are cut into windows aligned to the epoch (a 1h window is 09:00–10:00 UTC) per
environment and version, streamed chunk by chunk through the monitoring maths
(`DigestAccumulator`), and each window becomes samples stamped at the window's end (or at
`now` for the window still running):

    predictions, labelled_predictions, label_coverage (their ratio);
    classification: accuracy, precision, recall, f1, error_rate (1 − accuracy), roc_auc (with
    scores and both classes), roc_auc_ovr_macro / _weighted (one score column per class);
    regression (`task = "regression"`): mae, rmse, r2, mape;
    latency_p50_ms / _p95_ms / _p99_ms, throughput_per_s (rows / window seconds);
    with a reference sample: <method>:<feature> per feature (`psi:age`; p-value tests are
    written `ks_p:age`, …), drift_share, dataset_drift (1/0), and data quality per feature
    (`missing:age`, `out_of_range:age`, `new_category:country`, `wrong_type:age`).

**Versions.** A row's version is its `version` column, else the configured one, else the
version that served its environment alone at the row's time (the deployment history,
`attribution.py`); rows from a time when a canary took traffic have no version.

**Labels.** Rows whose label is missing (ground truth not back yet) still count for latency,
throughput, drift and data quality; quality uses labelled rows only. Labels may live apart
(`labels = { path = … }` or `{ sql_url = …, table = … }`: columns `id`, `label`, optional
`timestamp`), joined to predictions by `id`; the window a label's quality belongs to is its
prediction's (see `log_pull.py` for labels that arrive after their window was recorded).

Missing feature values, and values of the wrong type, are dropped before drift tests
(Evidently's behaviour) and counted by data quality. Rows of other models (a `model` column)
or, when an environment/version is given, of other environments/versions are skipped and
counted in the notes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from bot.domain import names
from bot.domain.entities import iso
from bot.domain.errors import InvalidInput
from bot.domain.monitoring import metric_names as mn
from bot.domain.monitoring.attribution import ServingHistory
from bot.domain.monitoring.drift import DriftConfig
from bot.domain.monitoring.latency import throughput
from bot.domain.monitoring.log_files import Chunk, Location, chunks, epoch_seconds, existing_files, read_all
from bot.domain.monitoring.samples import SampleIn
from bot.domain.monitoring.streaming import DigestAccumulator, MonitoringDigest

ROLES = ("timestamp", "prediction", "label", "score", "latency_ms", "model", "version", "env", "id")
NO_VERSION = -1
LABEL = "__label__"
"""The label column as the digest sees it: the log's own, or the one joined from a labels source."""
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class LabelsSpec:
    """Where labels that arrive apart from the predictions live, and their column names."""

    location: Location
    columns: Mapping[str, str] = field(default_factory=dict)  # id, label, timestamp

    def column(self, role: str) -> str:
        return self.columns.get(role, role)


@dataclass(frozen=True)
class LogSpec:
    """How to read one model's log: which columns mean what, windows, drift and labels."""

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
    task: str = "classification"
    labels: LabelsSpec | None = None
    lateness: timedelta = timedelta(0)
    label_horizon: timedelta = timedelta(days=30)
    pushdown: bool = True  # a PostgreSQL table is digested by the database (`log_pushdown.py`)

    def column(self, role: str) -> str:
        return self.columns.get(role, role)

    @property
    def score_prefix(self) -> str | None:
        """`proba_` for `score = "proba_*"` (one probability column per class)."""
        score = self.columns.get("score", "")
        return score[:-1] if score.endswith("*") else None

    @property
    def required(self) -> tuple[str, ...]:
        if self.labels is not None:
            return ("timestamp", "prediction", "id")
        return ("timestamp", "prediction", "label")


@dataclass(frozen=True)
class WindowDigest:
    """One window of one environment and version, digested."""

    environment: str
    version: int | None
    start: datetime
    end: datetime
    digest: MonitoringDigest
    labelled_rows: int
    counts_labels: bool = True  # the log has labels (inline or joined): coverage means something

    def metrics(self, now: datetime) -> dict[str, float]:
        """The sample values of this window, by metric name (finite numbers only)."""
        d = self.digest
        out: dict[str, float | None] = {mn.PREDICTIONS: float(d.rows)}
        out.update(self.label_metrics())
        if d.latency is not None:
            out.update(latency_p50_ms=d.latency.p50_ms, latency_p95_ms=d.latency.p95_ms,
                       latency_p99_ms=d.latency.p99_ms)
        until = min(self.end, now)
        rate = throughput(d.rows, self.start.timestamp(), until.timestamp()) if until > self.start else None
        if rate is not None:
            out["throughput_per_s"] = rate
        if d.drift is not None:
            for feature in d.drift.features:
                out[mn.drift_metric(feature.name, feature.method)] = mn.drift_sample_value(
                    feature.method, feature.statistic, feature.p_value)
            out["drift_share"] = d.drift.share_drifted
            out["dataset_drift"] = 1.0 if d.drift.dataset_drift else 0.0
        for check in d.data_quality:
            out.update(check.metrics())
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}

    def label_metrics(self) -> dict[str, float | None]:
        """The numbers labels decide: quality and coverage (what a late label recomputes)."""
        d = self.digest
        out: dict[str, float | None] = {}
        if self.counts_labels:
            out[mn.LABELLED] = float(self.labelled_rows)
            out[mn.COVERAGE] = self.labelled_rows / d.rows if d.rows else None
        if d.quality is not None:
            q = d.quality
            out.update(accuracy=q.accuracy, precision=q.precision, recall=q.recall, f1=q.f1, error_rate=q.error_rate,
                       roc_auc=q.roc_auc, roc_auc_ovr_macro=q.roc_auc_ovr_macro,
                       roc_auc_ovr_weighted=q.roc_auc_ovr_weighted)
        if d.regression is not None:
            out.update(d.regression.metrics())
        return out

    def samples(self, model: str, now: datetime, *, only_labels: bool = False) -> list[SampleIn]:
        at = min(self.end, now)
        values = self.label_metrics() if only_labels else self.metrics(now)
        return [SampleIn(model, self.environment, metric, float(value), at, version=self.version)
                for metric, value in values.items() if value is not None and math.isfinite(value)]

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


# ---- one-off: a whole log ------------------------------------------------------------------------


def summarise(
    location: Location,
    spec: LogSpec,
    *,
    environments: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
    serving: Callable[[str], ServingHistory] | None = None,
) -> LogSummary:
    """Digest every window of the log with rows in [since, until); raises InvalidInput on bad data.
    `serving(environment)` gives the deployment history rows without a version are attributed by."""
    window = spec.window.total_seconds()
    digestion = Digestion(
        spec, environments, reference_of(spec), labels=labels_of(spec), serving=serving,
        windows=(None if since is None else math.floor(since.timestamp() / window),
                 None if until is None else math.ceil(until.timestamp() / window)),
        time_range=(None if since is None else since.timestamp(), None if until is None else until.timestamp()),
    )
    for chunk in chunks(location, spec.chunk_rows):
        digestion.add(chunk)
    if digestion.rows_read == 0:
        raise InvalidInput(f"{location.describe()} holds no rows.")
    return digestion.result()


def reference_of(spec: LogSpec) -> pd.DataFrame | None:
    if spec.reference is None:
        if spec.features:
            raise InvalidInput("Drift needs a reference sample: give --reference PATH (or reference = \"…\").")
        return None
    return read_all(Location(path=spec.reference))


def labels_of(spec: LogSpec) -> pd.Series | None:
    """The labels source as one Series indexed by prediction id (the last label of an id wins)."""
    if spec.labels is None:
        return None
    source = spec.labels
    if source.location.path is not None and not existing_files(source.location.path):
        return pd.Series([], dtype=object)  # no labels back yet
    frame = read_all(source.location)
    id_col, label_col = source.column("id"), source.column("label")
    absent = [c for c in (id_col, label_col) if c not in frame.columns]
    if absent:
        raise InvalidInput(f"The labels in {source.location.describe()} have no column(s) {', '.join(absent)}; "
                           "name them with labels.columns.")
    time_col = source.column("timestamp")
    if time_col in frame.columns:
        frame = frame.iloc[np.argsort(epoch_seconds(frame[time_col], source.location.describe(), 1),
                                      kind="stable")]
    frame = frame[frame[label_col].notna()]
    ids = frame[id_col].astype(str).to_numpy()
    return pd.Series(frame[label_col].to_numpy(), index=ids).groupby(level=0).last()


# ---- the digestion --------------------------------------------------------------------------------


@dataclass
class _Slot:
    quality: DigestAccumulator
    ops: DigestAccumulator | None
    labelled: int = 0
    rows: int = 0


class Digestion:
    """Accumulators per (environment, version, window); columns fixed by the first chunk.

    `windows` = (first, end) window indexes to keep (None = unbounded); rows outside are skipped
    (counted) — a pull uses it to leave recorded windows alone. `open_from` is the first window
    index still open: per file, the position of the first row at or after it is remembered
    (`resume`), so the next pull starts there. `quality_only` skips latency, drift and data
    quality (recomputing quality after late labels)."""

    def __init__(self, spec: LogSpec, environments: Sequence[str], reference: pd.DataFrame | None, *,
                 labels: pd.Series | None = None, serving: Callable[[str], ServingHistory] | None = None,
                 windows: tuple[int | None, int | None] = (None, None), open_from: int | None = None,
                 quality_only: bool = False, time_range: tuple[float | None, float | None] = (None, None),
                 early: str = "before the first window asked for") -> None:
        if spec.task not in TASKS:
            raise InvalidInput(f"task must be classification or regression, not '{names.preview(spec.task)}'.")
        self.spec = spec
        self.environments = tuple(environments)
        self.reference = None if quality_only else reference
        self.labels = labels
        self.serving = serving
        self.histories: dict[str, tuple[list[float], list[int | None]]] = {}
        self.first_window, self.end_window = windows
        self.since, self.until = time_range
        self.open_from = open_from
        self.early = early
        self.quality_only = quality_only
        self.width = spec.window.total_seconds()
        self.config = DriftConfig(method=spec.drift_method, drop_missing=True)  # type: ignore[arg-type]
        self.rows_read = self.rows_used = 0
        self.newest: float | None = None
        self.present: dict[str, str] = {}  # role -> column in the data
        self.class_scores: dict[Any, str] = {}
        self.features: list[str] = []
        self.skipped: dict[str, int] = {}
        self.notes: list[str] = []
        self.slots: dict[tuple[str, int, int], _Slot] = {}
        self.resume: dict[str, int] = {}  # file key -> position of its first row in an open window
        self.file_times: dict[str, tuple[float, float]] = {}
        self.rows_before: dict[str, int] = {}  # file key -> data rows before `resume`
        self.rows_by_file: dict[str, int] = {}
        self._quality_template: DigestAccumulator | None = None
        self._ops_template: DigestAccumulator | None = None

    # columns are resolved once, from the first chunk (every file of a glob must match)
    def _resolve(self, chunk: Chunk) -> None:
        columns = [str(c) for c in chunk.frame.columns]
        spec = self.spec
        for role in spec.required:
            name = spec.column(role)
            if name not in columns:
                flag = f"--column {role}=NAME" if role not in spec.columns else f"columns.{role}"
                raise InvalidInput(f"{chunk.where} has no {role} column '{name}' (columns: "
                                   f"{', '.join(columns[:15])}); name it with {flag}.")
        self.present = {role: spec.column(role) for role in ROLES if spec.column(role) in columns}
        prefix = spec.score_prefix
        if prefix is not None:
            self.class_scores = {_class_value(c[len(prefix):]): c for c in columns if c.startswith(prefix)}
            if len(self.class_scores) < 3:
                raise InvalidInput(f"{chunk.where}: score = \"{prefix}*\" needs one probability column per class "
                                   f"(at least 3), found {len(self.class_scores)}.")
        if spec.labels is not None:
            self.present.pop("label", None)  # labels come from the labels source
        taken = set(self.present.values()) | set(self.class_scores.values())
        if spec.features is not None:
            roles = [f for f in spec.features if f in taken]
            if roles:
                raise InvalidInput(f"{', '.join(roles)} cannot be a feature: it is the "
                                   f"{_role_of(roles[0], self.present)} column.")
            missing = [f for f in spec.features if f not in columns]
            if missing:
                raise InvalidInput(f"{chunk.where} has no feature column(s) {', '.join(missing)}.")
            self.features = list(spec.features)
        else:
            self.features = [c for c in columns if c not in taken]
        if self.reference is not None:
            absent = [f for f in self.features if f not in self.reference.columns]
            if absent and spec.features is not None:
                raise InvalidInput(f"The reference sample has no column(s) {', '.join(absent)}.")
            if absent:
                self.notes.append(f"no drift for {', '.join(absent)}: not in the reference sample.")
            self.features = [f for f in self.features if f in self.reference.columns]
        else:
            self.features = []
        if "env" not in self.present and spec.environment is None:
            raise InvalidInput("Say which environment these predictions come from: --env NAME (or an env column).")

    @property
    def counts_labels(self) -> bool:
        return self.spec.labels is not None or "label" in self.present

    def columns_needed(self) -> list[str]:
        return list(self.present.values()) + list(self.class_scores.values()) + self.features

    def add(self, chunk: Chunk) -> None:
        if not self.present:
            self._resolve(chunk)
        frame = chunk.frame
        missing = [c for c in self.columns_needed() if c not in frame.columns]
        if missing:
            raise InvalidInput(f"{chunk.where} lacks column(s) {', '.join(missing)} that earlier files have.")
        n = len(frame)
        if n == 0:
            return
        self.rows_read += n
        seconds = epoch_seconds(frame[self.present["timestamp"]], chunk.where, chunk.first_row)
        top = float(seconds.max())
        self.newest = top if self.newest is None else max(self.newest, top)
        windows = np.floor(seconds / self.width).astype(np.int64)
        if chunk.file is not None:
            self._track_file(chunk, seconds, windows)
        keep = np.ones(n, dtype=bool)
        if self.since is not None:
            keep &= seconds >= self.since
        if self.until is not None:
            keep &= seconds < self.until
        if self.first_window is not None:
            early = keep & (windows < self.first_window)
            self._skip(self.early, int(early.sum()))
            keep &= ~early
        if self.end_window is not None:
            keep &= windows < self.end_window
        keep &= self._filter_model(frame)
        envs = self._environments(frame, chunk)
        keep &= envs != ""
        versions = self._versions(frame, chunk, seconds, envs)
        if self.spec.version is not None:
            self._skip("of other versions", int((keep & (versions != self.spec.version)).sum()))
            keep &= versions == self.spec.version
        labels = self._row_labels(frame)
        if not keep.all():
            frame, seconds, envs, versions, windows = (frame[keep], seconds[keep], envs[keep], versions[keep],
                                                      windows[keep])
            labels = None if labels is None else labels[keep]
        if len(frame) == 0:
            return
        self.rows_used += len(frame)
        keys = pd.DataFrame({"e": envs, "v": versions, "w": windows})
        for key, positions in keys.groupby(["e", "v", "w"], sort=False).indices.items():
            rows = frame.iloc[positions]
            self._update((str(key[0]), int(key[1]), int(key[2])), rows, seconds[positions],
                         None if labels is None else labels[positions], chunk)

    def _track_file(self, chunk: Chunk, seconds: np.ndarray, windows: np.ndarray) -> None:
        key = chunk.file or ""
        self.rows_by_file[key] = self.rows_by_file.get(key, 0) + len(seconds)
        lo, hi = float(seconds.min()), float(seconds.max())
        old = self.file_times.get(key)
        self.file_times[key] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        if self.open_from is None or chunk.positions is None or key in self.resume:
            return
        still_open = np.flatnonzero(windows >= self.open_from)
        if len(still_open):
            first = int(still_open[0])
            self.resume[key] = int(chunk.positions[first])
            self.rows_before[key] = chunk.first_row - 1 + first

    def _row_labels(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Each row's label (NaN/None where none is back yet)."""
        if self.labels is not None:
            ids = frame[self.present["id"]].astype(str).to_numpy()
            return self.labels.reindex(ids).to_numpy()
        if "label" in self.present:
            return frame[self.present["label"]].to_numpy()
        return None

    def _update(self, key: tuple[str, int, int], rows: pd.DataFrame, seconds: np.ndarray,
                labels: np.ndarray | None, chunk: Chunk) -> None:
        slot = self.slots.get(key)
        if slot is None:
            slot = _Slot(self._quality_accumulator(), None if self.quality_only else self._ops_accumulator())
            self.slots[key] = slot
        p = self.present
        slot.rows += len(rows)
        try:
            if slot.ops is not None:
                ops_columns: dict[str, Any] = {p["timestamp"]: seconds}
                if "latency_ms" in p:
                    latency = pd.to_numeric(rows[p["latency_ms"]], errors="coerce").to_numpy(dtype=np.float64)
                    if np.isnan(latency).any():
                        raise InvalidInput(f"{p['latency_ms']} has empty or non-numeric values")
                    ops_columns[p["latency_ms"]] = latency
                for feature in self.features:
                    ops_columns[feature] = rows[feature].to_numpy()
                slot.ops.update(ops_columns)
            if labels is None:
                return
            has_label = pd.notna(labels)
            if not has_label.any():
                return
            labelled = rows[has_label]
            columns = {LABEL: label_values(pd.Series(labels[has_label])),
                       p["prediction"]: label_values(labelled[p["prediction"]])}
            if "score" in p and not self.class_scores:
                columns[p["score"]] = _scores(labelled[p["score"]], p["score"])
            for column in self.class_scores.values():
                columns[column] = _scores(labelled[column], column)
            slot.quality.update(columns)
            slot.labelled += int(has_label.sum())
        except InvalidInput as exc:
            raise InvalidInput(f"{chunk.where} (rows {chunk.first_row:,}–{chunk.first_row + len(chunk.frame) - 1:,}): "
                               f"{exc.message.rstrip('.')}.") from None

    def _quality_accumulator(self) -> DigestAccumulator:
        if self._quality_template is None:
            p = self.present
            regression = self.spec.task == "regression"
            self._quality_template = DigestAccumulator(
                None, (), label_column=LABEL, prediction_column=p["prediction"],
                score_column=None if regression or self.class_scores else p.get("score"),
                class_score_columns=None if regression else self.class_scores,
                pos_label=self.spec.positive_label, task=self.spec.task)  # type: ignore[arg-type]
        return self._quality_template.fresh()

    def _ops_accumulator(self) -> DigestAccumulator:
        """One per window, from a template: the reference is profiled once per pull, not per window."""
        if self._ops_template is None:
            self._ops_template = DigestAccumulator(
                self.reference, self.features, label_column=None, prediction_column=None,
                latency_column=self.present.get("latency_ms"), timestamp_column=self.present["timestamp"],
                config=self.config)
        return self._ops_template.fresh()

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

    def _versions(self, frame: pd.DataFrame, chunk: Chunk, seconds: np.ndarray, envs: np.ndarray) -> np.ndarray:
        if "version" in self.present:
            raw = frame[self.present["version"]]
            text = raw.astype(str).str.strip().str.lower().str.removeprefix("v")
            numbers = pd.to_numeric(text, errors="coerce")
            bad = numbers.isna() & raw.notna()
            bad |= numbers.notna() & ((numbers < 1) | (numbers % 1 != 0))
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise InvalidInput(f"{chunk.where}: row {chunk.first_row + i:,}: version "
                                   f"'{names.preview(str(raw.iloc[i]))}' is not a version number.")
            if not numbers.isna().any():
                return numbers.to_numpy(dtype=np.int64)
            attributed = self._attributed(seconds, envs)
            return np.where(numbers.isna().to_numpy(), attributed, numbers.fillna(0).to_numpy(dtype=np.int64))
        if self.spec.version is not None:
            return np.full(len(frame), self.spec.version, dtype=np.int64)
        return self._attributed(seconds, envs)

    def _attributed(self, seconds: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """The version that served each row's environment alone at its time (NO_VERSION if none)."""
        out = np.full(len(seconds), NO_VERSION, dtype=np.int64)
        if self.serving is None:
            return out
        for env in {e for e in envs if e}:
            if env not in self.histories:
                self.histories[env] = self.serving(env).change_points()
            starts, versions = self.histories[env]
            mine = envs == env
            index = np.searchsorted(np.asarray(starts[1:]), seconds[mine], side="right")
            table = np.array([NO_VERSION if v is None else v for v in versions], dtype=np.int64)
            out[mine] = table[index]
        return out

    def _skip(self, why: str, count: int) -> None:
        if count:
            self.skipped[why] = self.skipped.get(why, 0) + count

    def result(self) -> LogSummary:
        windows = []
        for (env, version, window), slot in sorted(self.slots.items()):
            start = datetime.fromtimestamp(window * self.width, UTC)
            notes: list[str] = []
            quality = regression = None
            if slot.labelled:
                q_digest = slot.quality.result()
                quality, regression = q_digest.quality, q_digest.regression
                notes += q_digest.notes
            elif self.counts_labels:
                notes.append("no labelled rows yet: quality skipped.")
            if slot.ops is not None:
                ops = slot.ops.result()
                digest = replace(ops, quality=quality, regression=regression, notes=(*ops.notes, *notes))
            else:
                digest = MonitoringDigest(slot.rows, quality, None, None, tuple(notes), regression)
            windows.append(WindowDigest(
                environment=env, version=None if version == NO_VERSION else version, start=start,
                end=start + self.spec.window, labelled_rows=slot.labelled, digest=digest,
                counts_labels=self.counts_labels,
            ))
        notes = list(self.notes) + [f"skipped {count:,} row(s) {why}." for why, count in self.skipped.items()]
        newest = None if self.newest is None else datetime.fromtimestamp(self.newest, UTC)
        return LogSummary(self.rows_read, self.rows_used, tuple(windows), newest, tuple(notes))


def label_values(column: pd.Series) -> np.ndarray:
    """Labels as written: a float column of whole numbers (ints with gaps read as float) → ints,
    so labels 1.0 and predictions 1 are the same class."""
    values = column.to_numpy()
    if values.dtype.kind == "O":
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.notna().all():
            values = numbers.to_numpy()
    if values.dtype.kind == "f" and np.isfinite(values).all() and (values % 1 == 0).all():
        return values.astype(np.int64)
    return values


def _scores(column: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        raise InvalidInput(f"{name} has empty or non-numeric values")
    return values


def _class_value(text: str) -> Any:
    """`proba_2` names class 2 (an int), `proba_cat` class "cat"."""
    return int(text) if text.lstrip("-").isdigit() else text


def _role_of(column: str, present: Mapping[str, str]) -> str:
    return next(role for role, name in present.items() if name == column)
