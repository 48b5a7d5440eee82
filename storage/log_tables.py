"""Prediction logs and labels kept in a SQL table of the user's own database (not modelbot's).

Two ways to read one:

- `rows`: the rows of a time range, in chunks, as DataFrames (the pandas path; any dialect);
  the range is a `WHERE` on the timestamp column, so a pull reads only what its watermark
  says is new;
- `aggregate`: the database does the counting (PostgreSQL): counts, sums, value counts and
  histogram bins grouped by window, environment and version, and latency quantiles with
  `percentile_cont`, so a billion-row table never leaves the warehouse. The statements are
  built from a `Pushdown` plan that the domain (`bot.domain.monitoring.log_pushdown`) draws
  up; this module knows SQL, not what the numbers mean.

Identifiers come from the source configuration and are quoted by the dialect; values are
bound parameters.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from bot.redaction import redact_text, redact_url
from storage.db import normalise_url


class TableError(Exception):
    """The table cannot be read: wrong URL, no such table or column, a failing query."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "datetime", "number", "text", "bool"


class LogTable:
    """One table (`schema.table` allowed) behind a SQLAlchemy URL; `close()` when done."""

    def __init__(self, url: str, table: str) -> None:
        self.table_name = table
        self.where = f"the database at {redact_url(url)}"  # for errors: sql_url may carry a password
        try:
            self.engine = sa.create_engine(normalise_url(url))
        except Exception as exc:
            raise TableError(f"sql_url is not a usable database URL: {redact_text(str(exc))}") from None
        quote = self.engine.dialect.identifier_preparer.quote
        self.quoted = ".".join(quote(part) for part in table.split("."))
        self._quote = quote
        self._columns: dict[str, Column] | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def q(self, column: str) -> str:
        return self._quote(column)

    def columns(self) -> dict[str, Column]:
        if self._columns is None:
            schema, _, name = self.table_name.rpartition(".")
            try:
                found = sa.inspect(self.engine).get_columns(name, schema=schema or None)
            except sa.exc.NoSuchTableError:
                raise TableError(self._missing()) from None
            except sa.exc.SQLAlchemyError as exc:
                raise TableError(f"cannot read table {self.table_name}: {_reason(exc)}") from None
            if not found:
                raise TableError(self._missing())
            self._columns = {c["name"]: Column(c["name"], _kind(c["type"])) for c in found}
        return self._columns

    def _missing(self) -> str:
        return f'there is no table {self.table_name} in {self.where}: check table = "…" in this source'

    def _time_bound(self, column: str, seconds: float) -> Any:
        kind = self.columns()[column].kind
        if kind == "datetime":
            return datetime.fromtimestamp(seconds, UTC)
        if kind == "number":
            return seconds
        raise TableError(f"the timestamp column {column} holds text: store times as a timestamp or epoch seconds "
                         "so modelbot can read only what is new")

    def time_filter(self, column: str, start: float | None, end: float | None) -> tuple[str, dict[str, Any]]:
        """`ts >= :start AND ts < :end` in the column's own type (or "" for no bound)."""
        parts, params = [], {}
        if start is not None:
            parts.append(f"{self.q(column)} >= :t_start")
            params["t_start"] = self._time_bound(column, start)
        if end is not None:
            parts.append(f"{self.q(column)} < :t_end")
            params["t_end"] = self._time_bound(column, end)
        return " AND ".join(parts), params

    def can_filter_time(self, column: str) -> bool:
        return self.columns()[column].kind in ("datetime", "number")

    def rows(
        self, columns: Sequence[str], *, chunk_rows: int, where: str = "", params: Mapping[str, Any] | None = None,
    ) -> Iterator[tuple[pd.DataFrame, int]]:
        """(DataFrame, 1-based number of its first row) chunks of the selected columns."""
        missing = [c for c in columns if c not in self.columns()]
        if missing:
            raise TableError(f"table {self.table_name} has no column(s) {', '.join(missing)}")
        listed = ", ".join(self.q(c) for c in columns)
        sql = f"SELECT {listed} FROM {self.quoted}" + (f" WHERE {where}" if where else "")
        try:
            with self.engine.connect() as conn:
                row = 1
                for frame in pd.read_sql_query(sa.text(sql), conn, params=dict(params or {}), chunksize=chunk_rows):
                    yield frame, row
                    row += len(frame)
        except sa.exc.SQLAlchemyError as exc:
            raise TableError(f"cannot read table {self.table_name}: {_reason(exc)}") from None

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.text(sql), dict(params or {})).scalar()
        except sa.exc.SQLAlchemyError as exc:
            raise TableError(f"cannot read table {self.table_name}: {_reason(exc)}") from None

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            with self.engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), dict(params or {}))]
        except sa.exc.SQLAlchemyError as exc:
            raise TableError(f"cannot read table {self.table_name}: {_reason(exc)}") from None

    def epoch(self, column: str, prefix: str = "") -> str:
        """SQL for a column's epoch seconds (PostgreSQL); `prefix` qualifies it ("r.")."""
        if self.columns()[column].kind == "datetime":
            return f"EXTRACT(EPOCH FROM {prefix}{self.q(column)})"
        return f"CAST({prefix}{self.q(column)} AS DOUBLE PRECISION)"


@contextlib.contextmanager
def opened(url: str, table: str) -> Iterator[LogTable]:
    handle = LogTable(url, table)
    try:
        yield handle
    finally:
        handle.close()


# ---- pushdown (PostgreSQL) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which rows an aggregate reads and how it groups them: by environment, version and window.

    - the rows of [start, end) on `time_column` (epoch seconds), of `model` when `model_column`
      is set, of `environments` (and of `environment` only, when set);
    - environment: `env_column` normalised as the pandas path does (trimmed, lower case, no
      leading @), or the constant `environment`;
    - version: `version_column` (an integer, or text like "v3"), or the constant `version`, or
      from `history` ({environment: [(start epoch, version or None), …]}: who served alone when),
      -1 meaning none;
    - window: floor(epoch seconds / width);
    - labels: `label_column` of the row, or the newest label of its id in `labels_table`
      (same database; columns `labels_id`, `labels_label`, optional `labels_time`).
    """

    time_column: str
    start: float
    end: float
    width: float
    environments: tuple[str, ...]
    environment: str | None = None
    env_column: str | None = None
    version_column: str | None = None
    version: int | None = None
    history: Mapping[str, Sequence[tuple[float, int | None]]] = field(default_factory=dict)
    model_column: str | None = None
    model: str = ""
    label_column: str | None = None
    id_column: str | None = None
    labels_table: str | None = None
    labels_id: str = "id"
    labels_label: str = "label"
    labels_time: str | None = None


class Pushdown:
    """Aggregates of one table under one `Scope`; every method returns rows that start with the
    group key (environment, version, window). PostgreSQL only."""

    GROUP = ("g_env", "g_version", "g_window")

    def __init__(self, table: LogTable, scope: Scope) -> None:
        if table.dialect != "postgresql":
            raise TableError(f"computing in the database needs PostgreSQL, not {table.dialect}")
        self.t = table
        self.scope = scope
        self.params: dict[str, Any] = {}

    def _param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def _env(self) -> str:
        s = self.scope
        if s.env_column is None:
            return self._param(s.environment)
        return f"LTRIM(LOWER(TRIM(CAST({self.t.q(s.env_column)} AS TEXT))), '@')"

    def _version(self, epoch: str, env: str) -> str:
        s = self.scope
        if s.version_column is not None:
            text = f"LTRIM(LOWER(TRIM(CAST({self.t.q(s.version_column)} AS TEXT))), 'v')"
            return f"COALESCE(CAST(NULLIF({text}, '') AS INTEGER), -1)"
        if s.version is not None:
            return str(int(s.version))
        branches = []
        for name, changes in s.history.items():
            steps = " ".join(f"WHEN {epoch} >= {self._param(float(at))} THEN {-1 if v is None else int(v)}"
                             for at, v in sorted(changes, reverse=True) if math.isfinite(at))
            first = next((v for at, v in sorted(changes) if not math.isfinite(at)), None)
            inner = f"CASE {steps} ELSE {-1 if first is None else int(first)} END" if steps else str(
                -1 if first is None else int(first))
            branches.append(f"WHEN {env} = {self._param(name)} THEN {inner}")
        return f"(CASE {' '.join(branches)} ELSE -1 END)" if branches else "-1"

    def _rows(self, columns: Sequence[str], where: str = "") -> str:
        """A subquery of the scope's rows: group keys plus `columns` (and `label_value`)."""
        s, t = self.scope, self.t
        epoch = t.epoch(s.time_column, f"{t.quoted}.")
        env = self._env()
        filters = [f"{t.q(s.time_column)} >= {self._param(t._time_bound(s.time_column, s.start))}",
                   f"{t.q(s.time_column)} < {self._param(t._time_bound(s.time_column, s.end))}",
                   f"{env} IN ({', '.join(self._param(e) for e in s.environments)})"]
        if s.environment is not None:
            filters.append(f"{env} = {self._param(s.environment)}")
        if s.model_column is not None:
            filters.append(f"LOWER(TRIM(CAST({t.q(s.model_column)} AS TEXT))) = {self._param(s.model.lower())}")
        label = "NULL"
        source = t.quoted
        if s.labels_table is not None and s.id_column is not None:
            q = t.q
            order = f"{q(s.labels_time)} DESC" if s.labels_time else q(s.labels_id)
            labels = ".".join(q(p) for p in s.labels_table.split("."))
            source = (f"{t.quoted} LEFT JOIN (SELECT DISTINCT ON (CAST({q(s.labels_id)} AS TEXT)) "
                      f"CAST({q(s.labels_id)} AS TEXT) AS l_id, {q(s.labels_label)} AS l_label FROM {labels} "
                      f"WHERE {q(s.labels_label)} IS NOT NULL ORDER BY CAST({q(s.labels_id)} AS TEXT), {order}) l "
                      f"ON CAST({t.quoted}.{q(s.id_column)} AS TEXT) = l.l_id")
            label = "l.l_label"
        elif s.label_column is not None:
            label = t.q(s.label_column)
        picked = "".join(f", {t.quoted}.{t.q(c)} AS {t.q(c)}" for c in columns)
        extra = f" AND ({where})" if where else ""
        return (f"SELECT {env} AS g_env, {self._version(epoch, env)} AS g_version, "
                f"CAST(FLOOR({epoch} / {self._param(float(s.width))}) AS BIGINT) AS g_window, "
                f"{label} AS label_value{picked} FROM {source} WHERE {' AND '.join(filters)}{extra}")

    def _window(self, window: int) -> str:
        """The time range of one window, so a per-window query reads only its rows (by the index)."""
        s, t = self.scope, self.t
        column = f"{t.quoted}.{t.q(s.time_column)}"
        low = self._param(t._time_bound(s.time_column, window * s.width))
        high = self._param(t._time_bound(s.time_column, (window + 1) * s.width))
        return f"{column} >= {low} AND {column} < {high}"

    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self.t.fetch(sql, self.params)
        finally:
            self.params = {}

    def summary(self, numeric: Sequence[tuple[str, float, float]]) -> list[tuple[Any, ...]]:
        """One scan: (group…, rows, labelled rows, min epoch, max epoch, then per numeric column: values,
        min, max, values outside [low, high])."""
        column = self.scope.time_column
        epoch = self.t.epoch(column, "r.")
        parts = [f"COUNT(*), COUNT(label_value), MIN({epoch}), MAX({epoch})"]
        for name, low, high in numeric:
            q = f"r.{self.t.q(name)}"
            lo, hi = self._param(low), self._param(high)
            parts.append(f"COUNT({q}), MIN({q}), MAX({q}), COUNT(*) FILTER (WHERE {q} < {lo} OR {q} > {hi})")
        picked = [column, *(n for n, _, _ in numeric if n != column)]
        return self._fetch(f"SELECT g_env, g_version, g_window, {', '.join(parts)} FROM ({self._rows(picked)}) r "
                           f"GROUP BY 1, 2, 3")

    def value_sets(self, sets: Sequence[tuple[str, ...]], edges: Mapping[str, Mapping[tuple[str, int, int],
                                                                                      Sequence[float]]]
                   ) -> list[list[tuple[Any, ...]]]:
        """Counts of several groupings: per set, (group…, values…, count) — one hashed GROUP BY each
        (PostgreSQL sorts for GROUPING SETS, which costs more than scanning again).

        A set names columns, `label_value`, or `bin:COLUMN` — the Sturges bucket of the column under its
        group's own edges (`edges[COLUMN][group]`), `width_bucket(x, edges)`: how many edges are ≤ x,
        so bucket k holds [edges[k−1], edges[k]) as numpy's histogram does (its closed last bin gets
        k = len(edges)). Missing values count as a NULL value."""
        return [self._value_set(one, edges) for one in sets]

    def _value_set(self, items: tuple[str, ...], edges: Mapping[str, Mapping[tuple[str, int, int], Sequence[float]]]
                   ) -> list[tuple[Any, ...]]:
        binned = [i[4:] for i in items if i.startswith("bin:")]
        columns = [i for i in items if not i.startswith("bin:") and i != "label_value"] + binned
        join = ""
        if binned:
            groups = sorted({g for name in binned for g in edges[name]})
            rows = ", ".join(
                f"({self._param(env)}, {self._param(version)}, {self._param(window)}, "
                + ", ".join(f"CAST({self._param(list(edges[n].get((env, version, window)) or [0.0]))} "
                            f"AS DOUBLE PRECISION[])" for n in binned) + ")"
                for env, version, window in groups)
            names = ", ".join(f"e_{i}" for i in range(len(binned)))
            join = (f" LEFT JOIN (VALUES {rows}) AS g(b_env, b_version, b_window, {names}) ON g.b_env = r.g_env "
                    f"AND g.b_version = r.g_version AND g.b_window = r.g_window")
        listed = ", ".join(self._expression(i, binned) for i in items)
        return self._fetch(f"SELECT r.g_env, r.g_version, r.g_window, {listed}, COUNT(*) "
                           f"FROM ({self._rows(columns)}) r{join} GROUP BY 1, 2, 3, {listed}")

    def _expression(self, item: str, binned: Sequence[str] = ()) -> str:
        if item == "label_value":
            return "r.label_value"
        if item.startswith("bin:"):
            name = item[4:]
            return f"width_bucket(CAST(r.{self.t.q(name)} AS DOUBLE PRECISION), g.e_{list(binned).index(name)})"
        return f"r.{self.t.q(item)}"

    def rank_sums(self, score: str, positive: Any) -> list[tuple[Any, ...]]:
        """(group…, positives, negatives, wins) over labelled rows, wins = Σ over positives of the
        negatives scored below plus half those tied — the Mann–Whitney form of ROC AUC, exact. Rows are
        first counted per distinct score, so ties cost nothing and the sort is over distinct scores."""
        q = self.t.q(score)
        pos = self._param(positive)
        counted = (f"SELECT g_env, g_version, g_window, {q} AS s, COUNT(*) FILTER (WHERE label_value = {pos}) AS p, "
                   f"COUNT(*) FILTER (WHERE label_value <> {pos}) AS n FROM ({self._rows([score])}) x "
                   f"WHERE label_value IS NOT NULL GROUP BY 1, 2, 3, 4")
        ordered = (f"SELECT g_env, g_version, g_window, p, n, SUM(n) OVER (PARTITION BY g_env, g_version, g_window "
                   f"ORDER BY s) - n AS below FROM ({counted}) a")
        return self._fetch(f"SELECT g_env, g_version, g_window, SUM(p), SUM(n), "
                           f"SUM(2 * p * below + p * n) FROM ({ordered}) b GROUP BY 1, 2, 3")

    def regression_sums(self, prediction: str, epsilon: float) -> list[tuple[Any, ...]]:
        """(group…, n, Σ|e|, Σe², Σ|e|/max(|y|, ε), Σ(y − ȳ)²) over labelled rows."""
        p = self.t.q(prediction)
        inner = (f"SELECT g_env, g_version, g_window, CAST(label_value AS DOUBLE PRECISION) AS y, "
                 f"CAST(label_value AS DOUBLE PRECISION) - CAST({p} AS DOUBLE PRECISION) AS e, "
                 f"AVG(CAST(label_value AS DOUBLE PRECISION)) OVER (PARTITION BY g_env, g_version, g_window) AS m "
                 f"FROM ({self._rows([prediction])}) x WHERE label_value IS NOT NULL")
        eps = self._param(epsilon)
        return self._fetch(f"SELECT g_env, g_version, g_window, COUNT(*), SUM(ABS(e)), SUM(e * e), "
                           f"SUM(ABS(e) / GREATEST(ABS(y), {eps})), SUM((y - m) * (y - m)) FROM ({inner}) z "
                           f"GROUP BY 1, 2, 3")

    def quantiles(self, column: str, qs: Sequence[float]) -> list[tuple[Any, ...]]:
        """(group…, count, mean, max, [quantiles]) with `percentile_cont`: numpy's linear interpolation."""
        q = self.t.q(column)
        levels = self._param(list(qs))
        return self._fetch(f"SELECT g_env, g_version, g_window, COUNT({q}), AVG({q}), MAX({q}), "
                           f"percentile_cont(CAST({levels} AS DOUBLE PRECISION[])) WITHIN GROUP (ORDER BY {q}) "
                           f"FROM ({self._rows([column])}) r GROUP BY 1, 2, 3")

    def grid(self, column: str, low: float, high: float, scale: float, cells: int) -> list[tuple[Any, ...]]:
        """(group…, cell, count, Σ(low − x) below, Σ(x − high) above) on the streaming Wasserstein grid:
        cell = trunc(clip((x − low)·scale + 1, 0, cells + 1)), the arithmetic numpy does."""
        q = f"CAST({self.t.q(column)} AS DOUBLE PRECISION)"
        lo, hi = self._param(low), self._param(high)
        cell = (f"CAST(FLOOR(LEAST(GREATEST(({q} - {lo}) * {self._param(scale)} + 1.0, 0.0), "
                f"{self._param(float(cells + 1))})) AS INTEGER)")
        return self._fetch(f"SELECT g_env, g_version, g_window, {cell}, COUNT(*), "
                           f"COALESCE(SUM({lo} - {q}) FILTER (WHERE {q} < {lo}), 0), "
                           f"COALESCE(SUM({q} - {hi}) FILTER (WHERE {q} > {hi}), 0) "
                           f"FROM ({self._rows([column], f'{self.t.q(column)} IS NOT NULL')}) r GROUP BY 1, 2, 3, 4")

    def at_most(self, column: str, edges: Sequence[float]) -> list[tuple[Any, ...]]:
        """(group…, count ≤ edge₁, count ≤ edge₂, …) for quantile edges."""
        q = self.t.q(column)
        counts = ", ".join(f"COUNT(*) FILTER (WHERE {q} <= {self._param(float(e))})" for e in edges)
        return self._fetch(f"SELECT g_env, g_version, g_window, {counts} FROM "
                           f"({self._rows([column], f'{q} IS NOT NULL')}) r GROUP BY 1, 2, 3")

    def values(self, column: str, group: tuple[str, int, int]) -> list[Any]:
        """The non-missing values of one group (for what SQL cannot count: KS)."""
        q = self.t.q(column)
        env, version, window = group
        inner = self._rows([column], f"{q} IS NOT NULL AND {self._window(window)}")
        return [r[0] for r in self._fetch(
            f"SELECT {q} FROM ({inner}) r WHERE g_env = {self._param(env)} AND g_version = {self._param(version)} "
            f"AND g_window = {self._param(window)}")]


def _kind(sql_type: Any) -> str:
    if isinstance(sql_type, sa.Boolean):
        return "bool"
    if isinstance(sql_type, (sa.DateTime, sa.Date)):
        return "datetime"
    if isinstance(sql_type, (sa.Integer, sa.Numeric, sa.Float)):
        return "number"
    return "text"


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    text = redact_text(str(getattr(exc, "orig", exc))).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
