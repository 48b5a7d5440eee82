"""A prediction log in a PostgreSQL table, digested by the database: the numbers of the pandas
path (`prediction_logs.Digestion`) from aggregates, so rows never leave the warehouse.

What the database computes, per environment, version and window (`storage.log_tables.Pushdown`):

- row counts and labelled rows (inline labels, or the newest label of each id in a labels table
  of the same database);
- the confusion counts; binary ROC AUC from rank sums (Mann–Whitney, ties at their mean rank);
  regression sums (Σ|e|, Σe², Σ|e|/max(|y|, ε), Σ(y − ȳ)²);
- latency count, mean, max and p50/p95/p99 by `percentile_cont` (numpy's linear interpolation);
- per feature: missing values and, for numbers, min, max and values outside the reference's range;
  value counts (categories, low-cardinality numbers); Wasserstein grid counts and tail sums;
  Sturges bin counts with `width_bucket` over the bins the pandas path would use; counts at
  quantile edges.

Those counts go into the same accumulators the pandas path fills row by row, which then compute
every statistic the one way they always do — so both paths give the same numbers (tested on
PostgreSQL). What SQL does not express here is read as values, group by group: KS (counts at
every distinct reference value) fetches the feature's values; multi-class ROC AUC takes the
pandas path for the whole window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput
from bot.domain.monitoring._accumulators import FeatureAccumulator
from bot.domain.monitoring.attribution import ServingHistory
from bot.domain.monitoring.data_quality import DataQualityAccumulator
from bot.domain.monitoring.drift import DriftConfig, make_report
from bot.domain.monitoring.latency import QUANTILES, LatencyReport, throughput
from bot.domain.monitoring.log_files import Location
from bot.domain.monitoring.prediction_logs import NO_VERSION, LogSpec, LogSummary, WindowDigest, label_values
from bot.domain.monitoring.quality import ConfusionMatrix, quality_from_confusion
from bot.domain.monitoring.regression import EPSILON, RegressionAccumulator
from bot.domain.monitoring.streaming import MonitoringDigest

Group = tuple[str, int, int]


def supported(location: Location, spec: LogSpec) -> bool:
    """The database can do the work: a PostgreSQL table, and a model kind it can count."""
    url = location.sql_url or ""
    same_db = spec.labels is None or spec.labels.location.sql_url in (None, location.sql_url)
    return url.startswith(("postgresql", "postgres")) and spec.score_prefix is None and same_db


def summarise_table(
    location: Location, spec: LogSpec, *, environments: Sequence[str], start: float, end: float,
    reference: pd.DataFrame | None, serving: Callable[[str], ServingHistory] | None = None,
) -> LogSummary:
    """Every window with rows in [start, end) (epoch seconds), computed by the database."""
    from storage.log_tables import Pushdown, Scope, TableError, opened

    try:
        with opened(location.sql_url or "", location.table or "") as table:
            columns = table.columns()
            present = {role: spec.column(role) for role in ("env", "version", "model", "label", "score",
                                                            "latency_ms", "id", "prediction")
                       if spec.column(role) in columns}
            for role in spec.required:
                if spec.column(role) not in columns:
                    raise InvalidInput(f"table {location.table} has no {role} column '{spec.column(role)}'; "
                                       f"name it with columns.{role}.")
            if "env" not in present and spec.environment is None:
                raise InvalidInput("Say which environment these predictions come from (an env column, or "
                                   "environment = \"…\").")
            history = {}
            if "version" not in present and spec.version is None and serving is not None:
                for env in ([spec.environment] if spec.environment else environments):
                    starts, versions = serving(env).change_points()
                    history[env] = list(zip(starts, versions, strict=True))
            labels = spec.labels
            labels_time = None
            if labels is not None:
                with opened(labels.location.sql_url or location.sql_url or "", labels.location.table or "") as held:
                    if labels.column("timestamp") in held.columns():
                        labels_time = labels.column("timestamp")
            scope = Scope(
                time_column=spec.column("timestamp"), start=start, end=end, width=spec.window.total_seconds(),
                environments=tuple(environments), environment=spec.environment, env_column=present.get("env"),
                version_column=present.get("version"), version=spec.version, history=history,
                model_column=present.get("model"), model=spec.model,
                label_column=None if labels else present.get("label"), id_column=present.get("id"),
                labels_table=labels.location.table if labels else None,
                labels_id=labels.column("id") if labels else "id",
                labels_label=labels.column("label") if labels else "label", labels_time=labels_time,
            )
            return _Computation(Pushdown(table, scope), spec, present, reference, columns).run()
    except TableError as exc:
        raise InvalidInput(f"{exc}.") from None


class _Computation:
    """The aggregates of one table for one scope, turned into the pandas path's digests.

    Scans: one summary (counts, times, numeric features' range and data quality), one GROUPING
    SETS scan for every value count and Sturges bin (confusion, categories, low-cardinality
    numbers, binned features), and one each for AUC rank sums, latency quantiles and, when a
    method needs them, the Wasserstein grid and quantile edges."""

    def __init__(self, db: Any, spec: LogSpec, present: dict[str, str], reference: pd.DataFrame | None,
                 columns: dict[str, Any]) -> None:
        self.db = db
        self.spec = spec
        self.present = present
        self.reference = reference
        self.columns = columns
        self.config = DriftConfig(method=spec.drift_method, drop_missing=True)  # type: ignore[arg-type]
        self.counts: dict[Group, tuple[int, int, float, float]] = {}
        self.ranges: dict[str, dict[Group, tuple[int, Any, Any, int]]] = {}

    def _feature_names(self) -> list[str]:
        if self.reference is None:
            return []
        special = set(self.present.values()) | {self.spec.column("timestamp")}
        if self.spec.features is not None:
            return list(self.spec.features)
        return [c for c in self.columns if c not in special and c in self.reference.columns]

    def run(self) -> LogSummary:
        probes = {name: FeatureAccumulator(name, self.reference[name], self.config, None)  # type: ignore[index]
                  for name in self._feature_names()}
        checks = {name: DataQualityAccumulator(name, self.reference[name], probe.kind)  # type: ignore[index]
                  for name, probe in probes.items()}
        numeric = [(name, checks[name].lo, checks[name].hi) for name, p in probes.items() if p.kind == "numerical"]
        for row in self.db.summary(numeric):
            group = (row[0], int(row[1]), int(row[2]))
            self.counts[group] = (int(row[3]), int(row[4]), float(row[5]), float(row[6]))
            for i, (name, _, _) in enumerate(numeric):
                present, lo, hi, outside = row[7 + 4 * i: 11 + 4 * i]
                self.ranges.setdefault(name, {})[group] = (int(present), lo, hi, int(outside))
        groups = sorted(self.counts)
        accumulators = {name: {g: probe.fresh(self._range(name, g)) for g in groups} for name, probe in probes.items()}
        quality_checks = {name: {g: check.fresh() for g in groups} for name, check in checks.items()}
        confusion = self._counted(probes, accumulators, quality_checks)
        quality = self._quality(confusion)
        regression = self._regression()
        latency = self._latency()
        for name, probe in probes.items():
            self._other_counts(name, probe, accumulators[name])
        width = self.spec.window
        windows = []
        for group in groups:
            env, version, window = group
            rows, labelled, _, _ = self.counts[group]
            start = datetime.fromtimestamp(window * width.total_seconds(), UTC)
            notes = () if labelled else ("no labelled rows yet: quality skipped.",)
            features = [accumulators[name][group] for name in probes]
            drift = make_report([f.result() for f in features], self.config.drift_share) if features and all(
                f.n for f in features) else None
            digest = MonitoringDigest(rows, quality.get(group), latency.get(group), drift, notes,
                                      regression.get(group), tuple(quality_checks[n][group].result() for n in probes))
            windows.append(WindowDigest(env, None if version == NO_VERSION else version, start, start + width,
                                        digest, labelled))
        newest = max((c[3] for c in self.counts.values()), default=None)
        total = sum(c[0] for c in self.counts.values())
        return LogSummary(total, total, tuple(windows), None if newest is None else datetime.fromtimestamp(newest, UTC),
                          ("computed by the database",))

    def _range(self, name: str, group: Group) -> tuple[float, float, int] | None:
        found = self.ranges.get(name, {}).get(group)
        return None if found is None or found[0] == 0 else (float(found[1]), float(found[2]), found[0])

    # ---- counts in one scan

    def _counted(self, probes: dict[str, FeatureAccumulator], accs: dict[str, dict[Group, FeatureAccumulator]],
                 checks: dict[str, dict[Group, DataQualityAccumulator]]) -> dict[Group, dict[tuple[Any, Any], int]]:
        """Confusion counts, value counts and Sturges bins: one GROUPING SETS scan. Numeric data quality
        comes from the summary; categorical data quality from the value counts."""
        sets: list[tuple[str, ...]] = []
        classification = self.spec.task == "classification"
        if classification:
            sets.append(("label_value", self.present["prediction"]))
        edges: dict[str, dict[Group, list[float]]] = {}
        for name, probe in probes.items():
            if probe.kind == "categorical" or "values" in probe.needs():
                sets.append((name,))
            sturges = {g: a.edges.tolist() for g, a in accs[name].items() if a.sturges and a.edges is not None}
            if sturges:
                edges[name] = sturges
                sets.append((f"bin:{name}",))
            if probe.kind == "numerical":
                for group, (present, _, _, outside) in self.ranges.get(name, {}).items():
                    rows = self.counts[group][0]
                    checks[name][group].add_counts(rows, missing=rows - present, outside=outside)
        results = self.db.value_sets(sets, edges) if sets else []
        confusion: dict[Group, dict[tuple[Any, Any], int]] = {}
        for one, rows in zip(sets, results, strict=True):
            if one[0] == "label_value":
                for env, version, window, label, prediction, count in rows:
                    if label is not None:
                        confusion.setdefault((env, int(version), int(window)), {})[(label, prediction)] = int(count)
                continue
            name = one[0][4:] if one[0].startswith("bin:") else one[0]
            by_group: dict[Group, dict[Any, int]] = {}
            for env, version, window, value, count in rows:
                by_group.setdefault((env, int(version), int(window)), {})[value] = int(count)
            for group, counts in by_group.items():
                if group not in accs[name]:
                    continue
                acc = accs[name][group]
                present = {k: c for k, c in counts.items() if k is not None}
                if one[0].startswith("bin:"):
                    bins = np.zeros(len(acc.edges) - 1, dtype=np.int64)  # type: ignore[arg-type]
                    for bucket, count in present.items():
                        bins[min(max(int(bucket), 1), len(bins)) - 1] += count
                    acc.add_counts(int(bins.sum()) if "values" not in acc.needs() else 0, bins=bins)
                else:
                    if probes[name].kind == "categorical":
                        checks[name][group].add_counts(sum(counts.values()), missing=counts.get(None, 0),
                                                       values=present)
                    acc.add_counts(sum(present.values()), values=present)
        return confusion

    # ---- quality

    def _quality(self, cells: dict[Group, dict[tuple[Any, Any], int]]) -> dict[Group, Any]:
        if self.spec.task != "classification":
            return {}
        aucs = {}
        if "score" in self.present:
            for env, version, window, pos, neg, twice_wins in self.db.rank_sums(self.present["score"],
                                                                                 self.spec.positive_label):
                if pos and neg:
                    aucs[(env, int(version), int(window))] = float(twice_wins) / (2.0 * float(pos) * float(neg))
        out = {}
        for group, pairs in cells.items():
            truth = label_values(pd.Series([t for t, _ in pairs]))
            predicted = label_values(pd.Series([p for _, p in pairs]))
            labels = tuple(sorted(set(truth.tolist()) | set(predicted.tolist())))
            index = {label: i for i, label in enumerate(labels)}
            matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
            for t, p, count in zip(truth.tolist(), predicted.tolist(), pairs.values(), strict=True):
                matrix[index[t], index[p]] += count
            out[group] = quality_from_confusion(ConfusionMatrix(labels, matrix), self.spec.positive_label,
                                                aucs.get(group))
        return out

    def _regression(self) -> dict[Group, Any]:
        if self.spec.task != "regression":
            return {}
        out = {}
        for env, version, window, n, abs_e, sq_e, pct, m2 in self.db.regression_sums(self.present["prediction"],
                                                                                       EPSILON):
            acc = RegressionAccumulator()
            acc.n, acc.abs_error, acc.sq_error, acc.abs_pct, acc.m2_y = int(n), abs_e, sq_e, pct, m2
            out[(env, int(version), int(window))] = acc.result()
        return out

    # ---- latency

    def _latency(self) -> dict[Group, LatencyReport]:
        if "latency_ms" not in self.present:
            return {}
        out = {}
        for env, version, window, count, mean, top, levels in self.db.quantiles(
                self.present["latency_ms"], [q / 100 for q in QUANTILES]):
            group = (env, int(version), int(window))
            _, _, lo, hi = self.counts[group]
            if not count:
                continue
            p50, p95, p99 = (float(v) for v in levels)
            out[group] = LatencyReport(int(count), float(mean), p50, p95, p99, float(top), hi - lo,
                                       throughput(int(count), lo, hi))
        return out

    # ---- what a value count cannot give

    def _other_counts(self, name: str, probe: FeatureAccumulator, accs: dict[Group, FeatureAccumulator]) -> None:
        needs = probe.needs()
        counted = {g for g, a in accs.items() if a.n}
        if "grid" in needs and probe.grid is not None:
            grid = probe.grid
            cells: dict[Group, tuple[np.ndarray, float, float]] = {}
            for env, version, window, cell, count, below, above in self.db.grid(
                    name, grid.lo, grid.hi, grid.scale, grid.cells):
                group = (env, int(version), int(window))
                counts, b, a = cells.get(group, (np.zeros(grid.cells + 2, dtype=np.int64), 0.0, 0.0))
                counts[int(cell)] += int(count)
                cells[group] = (counts, b + float(below), a + float(above))
            for group, found in cells.items():
                if group in accs:
                    accs[group].add_counts(0 if group in counted else int(found[0].sum()), grid=found)
                    counted.add(group)
        if "quantile" in needs and probe.edges is not None:
            for env, version, window, *at_most in self.db.at_most(name, probe.edges.tolist()):
                group = (env, int(version), int(window))
                if group in accs:
                    n = self.ranges.get(name, {}).get(group, (0,))[0]
                    accs[group].add_counts(0 if group in counted else n, bins=np.array(at_most, dtype=np.int64))
                    counted.add(group)
        for group, acc in accs.items():
            if "rows" in acc.needs() and group not in counted:
                values = np.asarray(self.db.values(name, group), dtype=np.float64)
                if len(values):
                    acc.update(values)
