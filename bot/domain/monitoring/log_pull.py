"""A scheduled pull of a prediction log: only what is new, each window recorded once when it is
complete, and quality recomputed when labels arrive late.

**Windows.** A window is complete when its end plus the source's `lateness` has passed; a pull
records every complete window it has not recorded yet (the first pull: only the last complete
one — history is `modelbot ingest`'s job), and remembers how far it got (`emitted_until`).
Rows that arrive for a window already recorded are counted and skipped (raise `lateness` to
wait for them).

**Only what is new.** Files are read from where the last pull stopped (`log_files.FileCursor`:
rotation and truncation handled), except the rows of windows still open, which the next pull
reads again — a window's numbers always come from all its rows, and nothing is accumulated
across pulls that a crash could lose. A SQL table is read by its timestamp: the rows of the
complete windows not yet recorded, `WHERE ts >= … AND ts < …`; on PostgreSQL the database
computes the numbers itself (`log_pushdown.py`).

**Late labels.** With labels kept apart (`labels = {…}`), every pull checks whether they changed
(files: size and modification time; a table: its row count and newest timestamp). If they did,
the predictions of the recorded windows within `label_horizon` (default 30 days) are joined
with the labels again, and every window whose count of labelled predictions changed gets its
quality and coverage recomputed and recorded in place of the old numbers — at the window the
predictions belong to, not the window the labels arrived in. The cursor keeps each recent
window's (predictions, labelled) counts to tell.

The cursor is plain JSON in `SourceStatus.cursor`, written in the same transaction as the
samples it produced (`recording.record_pull`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bot.domain.entities import iso
from bot.domain.errors import InvalidInput
from bot.domain.monitoring import log_files, log_pushdown
from bot.domain.monitoring.attribution import ServingHistory
from bot.domain.monitoring.log_files import FileCursor, Location, ReadPlan
from bot.domain.monitoring.prediction_logs import (
    Digestion,
    LabelsSpec,
    LogSpec,
    LogSummary,
    WindowDigest,
    labels_of,
    reference_of,
)
from bot.domain.monitoring.recording import Collected, source_status
from bot.domain.monitoring.samples import Samples
from bot.domain.registry import Registry

CURSOR_VERSION = 1


@dataclass(frozen=True)
class LogSource:
    """A configured prediction log: its name (the source's), where it lives and how to read it."""

    name: str
    location: Location
    spec: LogSpec


@dataclass
class LogCursor:
    """How far a source's pulls got; see the module docstring."""

    location: str
    emitted_until: int | None = None  # first window index not yet recorded
    newest: float | None = None
    files: dict[str, FileCursor] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, list[float]] = field(default_factory=dict)  # "env|version|window" -> [rows, labelled]

    def to_json(self) -> dict[str, Any]:
        return {"version": CURSOR_VERSION, "location": self.location, "emitted_until": self.emitted_until,
                "newest": self.newest, "files": {k: f.to_json() for k, f in self.files.items()},
                "labels": self.labels, "coverage": self.coverage}

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None, location: str) -> LogCursor:
        """A fresh cursor when there is none, or when it describes another log (the path changed)."""
        if not raw or raw.get("version") != CURSOR_VERSION or raw.get("location") != location:
            return cls(location)
        return cls(location, raw.get("emitted_until"), raw.get("newest"),
                   {k: FileCursor.from_json(v) for k, v in (raw.get("files") or {}).items()},
                   dict(raw.get("labels") or {}), {k: list(v) for k, v in (raw.get("coverage") or {}).items()})


def collect(registry: Registry, source: LogSource, now: datetime) -> Collected:
    """One pull: record the complete windows not recorded yet, recompute windows whose labels came."""
    spec = source.spec
    model = registry.get_model(spec.model).name
    row = source_status(registry, [source.name]).get(source.name)
    cursor = LogCursor.from_json(row.cursor if row else None, _describe(source.location))
    width = spec.window.total_seconds()
    done = math.floor((now - spec.lateness).timestamp() / width)  # windows before this one are complete
    first_pull = cursor.emitted_until is None
    start = done - 1 if first_pull else int(cursor.emitted_until)  # type: ignore[arg-type]
    samples_of = Samples(registry)
    serving: Callable[[str], ServingHistory] = lambda env: samples_of.history(model, env)  # noqa: E731
    out = Collected()
    in_database = spec.pushdown and log_pushdown.supported(source.location, spec)
    signature = None if spec.labels is None else _labels_signature(spec.labels)
    # labels in files are read whole: only when a window is to be recorded or they changed
    wanted = spec.labels is not None and not in_database and (start < done or signature != cursor.labels)
    labels = labels_of(spec) if wanted else None
    digestion = Digestion(spec, registry.environments, reference_of(spec), labels=labels, serving=serving,
                          windows=(start, done), open_from=done,
                          early=("older than the last complete window (first pull)" if first_pull
                                 else "of windows already recorded (arrived after their window's lateness)"))
    if in_database:
        summary = log_pushdown.summarise_table(source.location, spec, environments=registry.environments,
                                               start=start * width, end=max(start, done) * width,
                                               reference=digestion.reference, serving=serving)
        newest = None if summary.newest is None else summary.newest.timestamp()
    else:
        for chunk in _new_chunks(source, cursor, spec, start * width, done * width, out):
            digestion.add(chunk)
        _advance_files(cursor, digestion)
        summary, newest = digestion.result(), digestion.newest
    if newest is not None:
        cursor.newest = max(cursor.newest or newest, newest)
    out.notes.extend(summary.notes)
    if first_pull and digestion.skipped:
        out.notes.append("first pull: only the last complete window is recorded; load older rows with "
                         "`modelbot ingest`.")
    if start >= done:
        out.notes.append(f"the window {_hhmm(done * width - width)}–{_hhmm(done * width)} is already recorded; "
                         "nothing new is complete.")
        out.up_to_date = True
    elif not summary.windows:
        since = f"; no data since {iso(_at(cursor.newest))}" if cursor.newest is not None else ""
        out.errors.append(f"no prediction rows between {iso(_at(start * width))} and {iso(_at(done * width))}{since}.")
    for window in summary.windows:
        out.samples.extend(window.samples(model, now))
        out.notes.extend(f"{window.environment} {_hhmm(window.start.timestamp())}: {n}" for n in window.digest.notes)
        _remember(cursor, window)
    cursor.emitted_until = max(start, done)
    if spec.labels is not None:
        _late_labels(source, cursor, signature, labels, model, now, serving, registry, out, in_database)
    horizon = math.floor((now - spec.label_horizon).timestamp() / width)
    cursor.coverage = {k: v for k, v in cursor.coverage.items() if int(k.rsplit("|", 1)[1]) >= horizon}
    out.cursor = cursor.to_json()
    return out


# ---- reading --------------------------------------------------------------------------------------


def _new_chunks(source: LogSource, cursor: LogCursor, spec: LogSpec, start: float, end: float,
                out: Collected) -> Iterator[log_files.Chunk]:
    location = source.location
    if location.sql_url is not None:
        yield from log_files.table_chunks(location, spec.chunk_rows, time_column=spec.column("timestamp"),
                                          start=start, end=end)
        return
    plan = ReadPlan(cursor.files)
    yield from log_files.new_chunks(location.path or "", plan, spec.chunk_rows)
    if not plan.cursors:
        raise InvalidInput(f"No file matches {location.path}.")
    out.notes.extend(plan.notes)
    cursor.files = plan.cursors


def _advance_files(cursor: LogCursor, digestion: Digestion) -> None:
    """Each file's next read starts at its first row of a window still open (or its end)."""
    for key, file in cursor.files.items():
        if key in digestion.resume:
            file.resume, file.rows = digestion.resume[key], digestion.rows_before[key]
        elif file.offset != file.resume:
            file.rows += digestion.rows_by_file.get(key, 0)
            file.resume = file.offset
        seen = digestion.file_times.get(key)
        if seen is not None:
            file.ts_min = seen[0] if file.ts_min is None else min(file.ts_min, seen[0])
            file.ts_max = seen[1] if file.ts_max is None else max(file.ts_max, seen[1])


# ---- late labels ----------------------------------------------------------------------------------


def _late_labels(source: LogSource, cursor: LogCursor, signature: dict[str, Any] | None, labels: pd.Series | None,
                 model: str, now: datetime,
                 serving: Callable[[str], ServingHistory], registry: Registry, out: Collected,
                 in_database: bool) -> None:
    spec = source.spec
    if signature is None or signature == cursor.labels:
        return
    cursor.labels = signature
    width = spec.window.total_seconds()
    first = math.floor((now - spec.label_horizon).timestamp() / width)
    end = int(cursor.emitted_until or 0)
    if first >= end:
        return
    if in_database:
        summary = log_pushdown.summarise_table(source.location, spec, environments=registry.environments,
                                               start=first * width, end=end * width, reference=None,
                                               serving=serving)
    else:
        digestion = Digestion(spec, registry.environments, None, labels=labels, serving=serving,
                              windows=(first, end), quality_only=True)
        for chunk in _horizon_chunks(source, cursor, first * width, end * width):
            digestion.add(chunk)
        summary = digestion.result()
    changed = 0
    for window in summary.windows:
        key = _key(window)
        before = cursor.coverage.get(key)
        if before is None or before[1] == window.labelled_rows:
            continue  # not recorded by this source (history), or no new label for it
        out.replace.extend(window.samples(model, now, only_labels=True))
        cursor.coverage[key] = [before[0], float(window.labelled_rows)]
        changed += 1
    if changed:
        out.notes.append(f"labels arrived for {changed} recorded window(s): their quality was recomputed.")


def _horizon_chunks(source: LogSource, cursor: LogCursor, start: float, end: float) -> Iterator[log_files.Chunk]:
    """The predictions of [start, end): files whose rows fall in that span, or the table's rows."""
    location = source.location
    if location.sql_url is not None:
        yield from log_files.table_chunks(location, source.spec.chunk_rows,
                                          time_column=source.spec.column("timestamp"), start=start, end=end)
        return
    for file in sorted(cursor.files.values(), key=lambda f: f.path):
        if file.ts_min is None or file.ts_max is None or file.ts_max < start or file.ts_min >= end:
            continue
        if os.path.exists(file.path):
            yield from log_files.file_chunks(Path(file.path), source.spec.chunk_rows)


def _labels_signature(labels: LabelsSpec) -> dict[str, Any]:
    """What tells that labels changed: each file's size and modification time, or the table's
    row count and newest timestamp."""
    location = labels.location
    if location.sql_url is not None:
        from storage.log_tables import TableError, opened

        try:
            with opened(location.sql_url, location.table or "") as table:
                time_col = labels.column("timestamp")
                newest = (f"MAX({table.q(time_col)})" if time_col in table.columns() else "NULL")
                count, top = table.fetch(f"SELECT COUNT(*), {newest} FROM {table.quoted}")[0]
        except TableError as exc:
            raise InvalidInput(f"labels: {exc}.") from None
        return {"count": int(count), "newest": str(top)}
    out = {}
    for path in log_files.existing_files(location.path or ""):
        info = path.stat()
        out[str(path)] = [info.st_size, info.st_mtime_ns]
    return {"files": out}


# ---- helpers --------------------------------------------------------------------------------------


def _remember(cursor: LogCursor, window: WindowDigest) -> None:
    cursor.coverage[_key(window)] = [float(window.digest.rows), float(window.labelled_rows)]


def _key(window: WindowDigest) -> str:
    width = (window.end - window.start).total_seconds()
    return f"{window.environment}|{window.version or ''}|{int(window.start.timestamp() // width)}"


def _describe(location: Location) -> str:
    return location.path if location.path is not None else f"{location.sql_url}#{location.table}"


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _hhmm(seconds: float) -> str:
    return f"{_at(seconds):%Y-%m-%d %H:%M}"


__all__ = ["LogCursor", "LogSource", "LogSummary", "collect"]
