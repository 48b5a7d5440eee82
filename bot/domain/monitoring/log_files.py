"""Reading prediction logs and labels in chunks: CSV, Parquet, JSON lines (a path or a glob) or a
SQL table — all of it, or only what is new since the last pull.

Logs are often larger than memory, so nothing here loads a whole file: CSV and JSON lines are
read in blocks of lines, Parquet row group by row group with pyarrow (imported lazily), SQL
tables through `storage.log_tables`. Each chunk comes back as a DataFrame with the file it came
from and the row number of its first row, so an error can say "logs/day3.csv: row 1,204: …".

**Incremental reads.** A `FileCursor` remembers, per file, its identity (device and inode, so
a rotated file — `app.log` renamed `app.log.1` — is recognised under its new name), size,
modification time, where the consumed data ends (`offset`: bytes for CSV and JSON lines, rows
for Parquet and gzip files) and where the next read starts (`resume` ≤ `offset`: the first row
of a window that is still open, which the next pull must see again). A file that shrank or was
rewritten (truncation, copy-truncate rotation, a new Parquet file under the same name) is read
from its start; a file that disappeared is forgotten; a new file is read whole. Incremental
reads take only complete lines: a line still being written (no newline yet) waits for the next
pull. Each row carries its resume position (`Chunk.positions`) so the caller can say where the
open windows begin.

Timestamps are ISO 8601 text (naive = UTC) or epoch seconds (int or float), or native
Parquet/SQL timestamps; anything else stops the read with the first bad row named.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput
from bot.domain.names import preview

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl"}  # .csv.gz and .jsonl.gz work too
LATEST_EPOCH = 32_503_680_000.0  # 3000-01-01: later "seconds" are almost surely milliseconds
BLOCK_BYTES = 1 << 25
"""CSV and JSON lines are parsed 32 MiB at a time (whole lines), bounding memory on any file size."""
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class Location:
    """Where a log lives: a path or glob, or a SQL table behind a SQLAlchemy URL."""

    path: str | None = None
    sql_url: str | None = None
    table: str | None = None

    def describe(self) -> str:
        if self.path is not None:
            return self.path
        return f"table {self.table}"


@dataclass(frozen=True)
class Chunk:
    frame: pd.DataFrame
    where: str  # file or table name, for errors
    first_row: int  # 1-based data row number of frame's first row in that file
    file: str | None = None  # the file's cursor key, for incremental reads
    positions: np.ndarray | None = None  # each row's resume position in that file


@dataclass
class FileCursor:
    """What was read of one file (see the module docstring). Plain JSON in `SourceStatus.cursor`."""

    key: str
    path: str
    size: int
    mtime_ns: int
    offset: int = 0
    resume: int = 0
    header: str | None = None
    rows: int = 0  # data rows before `resume` (row numbers in errors)
    ts_min: float | None = None
    ts_max: float | None = None
    head: str | None = None  # fingerprint of the file's first bytes: a rewritten file has other ones

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileCursor:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


@dataclass
class ReadPlan:
    """Which files an incremental read takes and from where; `cursors` is updated as it goes."""

    cursors: dict[str, FileCursor]
    notes: list[str] = field(default_factory=list)
    bytes_read: int = 0


# ---- whole logs ---------------------------------------------------------------------------------


def chunks(location: Location, chunk_rows: int, columns: Sequence[str] | None = None) -> Iterator[Chunk]:
    """Every chunk of every matching file (sorted by name), or of the SQL table."""
    if location.sql_url is not None:
        yield from table_chunks(location, chunk_rows, columns)
        return
    for path in files(location.path or ""):
        yield from file_chunks(path, chunk_rows)


def table_chunks(location: Location, chunk_rows: int, columns: Sequence[str] | None = None, *,
                 time_column: str | None = None, start: float | None = None, end: float | None = None
                 ) -> Iterator[Chunk]:
    """A SQL table's rows (of [start, end) on `time_column`, when given) in chunks."""
    from storage.log_tables import TableError, opened

    try:
        with opened(location.sql_url or "", location.table or "") as table:
            where, params = ("", {})
            if time_column is not None and (start is not None or end is not None):
                where, params = table.time_filter(time_column, start, end)
            wanted = list(columns) if columns is not None else list(table.columns())
            for frame, row in table.rows(wanted, chunk_rows=chunk_rows, where=where, params=params):
                yield Chunk(frame, f"table {location.table}", row)
    except TableError as exc:
        raise InvalidInput(f"{preview(str(exc), 240)}.") from None


def existing_files(pattern: str) -> list[Path]:
    """The files a path or glob names now (sorted by name; none is not an error here)."""
    expanded = os.path.expanduser(pattern)
    matches = sorted(glob.glob(expanded)) if glob.has_magic(expanded) else [expanded]
    return [Path(m) for m in matches if Path(m).is_file()]


def files(pattern: str) -> list[Path]:
    found = existing_files(pattern)
    if not found:
        expanded = os.path.expanduser(pattern)
        what = "No file matches" if glob.has_magic(expanded) else "There is no file"
        raise InvalidInput(f"{what} {pattern}.")
    return found


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1:
        suffixes = suffixes[:-1]
    kind = FORMATS.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise InvalidInput(f"{path}: name it .csv, .parquet or .jsonl so modelbot knows how to read it.")
    return kind


def file_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    kind = file_format(path)
    if kind == "parquet":
        yield from _parquet_chunks(path, chunk_rows)
        return
    if kind == "jsonl":
        yield from _jsonl_chunks(path, chunk_rows)
        return
    row = 1
    try:
        with pd.read_csv(path, chunksize=chunk_rows) as reader:
            for frame in reader:
                yield Chunk(frame, str(path), row)
                row += len(frame)
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"{path} is empty: it has no header and no rows.") from None
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not readable as CSV near row {row}: {preview(str(exc), 160)}") from None


def _json_record(line: bytes, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text, so not JSON lines.") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: line {number:,} is not JSON ({exc.msg}, column {exc.colno}).") from None
    if not isinstance(record, dict):
        raise InvalidInput(f"{path}: line {number:,} is not a JSON object.")
    return record


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """JSON lines with the standard library: exact floats, no date guessing, and the line number
    of a bad line (pandas' reader rounds floats and guesses dates from column names)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    records: list[dict[str, Any]] = []
    first = row = 0
    with opener(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            records.append(_json_record(line, path, number))
            row += 1
            if len(records) >= chunk_rows:
                yield Chunk(pd.DataFrame.from_records(records), str(path), first + 1)
                records, first = [], row
    if records:
        yield Chunk(pd.DataFrame.from_records(records), str(path), first + 1)


def _parquet_file(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise InvalidInput("Reading Parquet needs pyarrow: pip install pyarrow.") from None
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, … for a bad file
        raise InvalidInput(f"{path}: not readable as Parquet: {preview(str(exc), 160)}") from None


def _parquet_chunks(path: Path, chunk_rows: int, start_row: int = 0) -> Iterator[Chunk]:
    """Row group by row group from `start_row` on (earlier row groups are not read at all)."""
    parquet = _parquet_file(path)
    meta = parquet.metadata
    row = 0
    for group in range(meta.num_row_groups):
        size = meta.row_group(group).num_rows
        if row + size <= start_row:
            row += size
            continue
        if size <= chunk_rows:
            tables = [parquet.read_row_group(group)]
        else:
            import pyarrow as pa

            tables = (pa.Table.from_batches([b]) for b in parquet.iter_batches(batch_size=chunk_rows,
                                                                                row_groups=[group]))
        for table in tables:
            skip = max(0, start_row - row)
            frame = table.slice(skip).to_pandas()
            positions = np.arange(row + skip, row + table.num_rows, dtype=np.int64)
            yield Chunk(frame, str(path), row + skip + 1, positions=positions)
            row += table.num_rows
    if meta.num_row_groups == 0 and start_row == 0:
        yield Chunk(parquet.schema_arrow.empty_table().to_pandas(), str(path), 1, positions=np.empty(0, np.int64))


# ---- only what is new ---------------------------------------------------------------------------


def new_chunks(pattern: str, plan: ReadPlan, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of every matching file from its resume position (whole new files, changed ones from
    their start); `plan.cursors` afterwards holds every file's new size and end offset."""
    expanded = os.path.expanduser(pattern)
    matches = sorted(glob.glob(expanded)) if glob.has_magic(expanded) else [expanded]
    seen: dict[str, FileCursor] = {}
    for name in matches:
        path = Path(name)
        try:
            info = path.stat()
        except FileNotFoundError:  # removed between the glob and now
            continue
        if not path.is_file():
            continue
        key = f"{info.st_dev}:{info.st_ino}"
        old = plan.cursors.get(key)
        compressed = path.suffix.lower() == ".gz"
        kind = file_format(path)
        if old is not None and info.st_size == old.size and info.st_mtime_ns == old.mtime_ns:
            cursor = old  # unchanged: only its open windows are read again
            cursor.path = str(path)
        elif (old is not None and info.st_size >= old.offset and kind != "parquet" and not compressed
              and _head(path) == old.head):
            cursor = old  # grew: appended lines follow
            cursor.path, cursor.size, cursor.mtime_ns = str(path), info.st_size, info.st_mtime_ns
        else:
            if old is not None:
                plan.notes.append(f"{path} was rewritten or truncated: read again from its start.")
            cursor = FileCursor(key, str(path), info.st_size, info.st_mtime_ns, head=_head(path))
        seen[key] = cursor
        yield from _file_from(path, kind, compressed, cursor, plan, chunk_rows)
    plan.cursors = seen


HEAD_BYTES = 1024


def _head(path: Path) -> str:
    """A fingerprint of the first KiB (or less): an appended file keeps it, a rewritten one rarely."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(HEAD_BYTES)).hexdigest()[:16]


def _file_from(path: Path, kind: str, compressed: bool, cursor: FileCursor, plan: ReadPlan,
               chunk_rows: int) -> Iterator[Chunk]:
    if kind == "parquet":
        for chunk in _parquet_chunks(path, chunk_rows, cursor.resume):
            yield Chunk(chunk.frame, chunk.where, chunk.first_row, cursor.key, chunk.positions)
        cursor.offset = _parquet_file(path).metadata.num_rows
        return
    if compressed:  # no seeking inside gzip: rows before `resume` are decompressed and skipped
        position = 0
        for chunk in file_chunks(path, chunk_rows):
            rows = len(chunk.frame)
            skip = max(0, cursor.resume - position)
            if skip < rows:
                yield Chunk(chunk.frame.iloc[skip:].reset_index(drop=True), chunk.where, chunk.first_row + skip,
                            cursor.key, np.arange(position + skip, position + rows, dtype=np.int64))
            position += rows
        cursor.offset = position
        return
    yield from _lines_from(path, kind, cursor, plan)


def _lines_from(path: Path, kind: str, cursor: FileCursor, plan: ReadPlan) -> Iterator[Chunk]:
    """CSV or JSON lines from byte `cursor.resume` on, whole lines only, in blocks."""
    with open(path, "rb") as handle:
        start = cursor.resume
        if kind == "csv" and (start == 0 or cursor.header is None):
            header = handle.readline()
            if not header.strip():
                raise InvalidInput(f"{path} is empty: it has no header and no rows.")
            if not header.endswith(b"\n"):
                return  # the header itself is still being written
            cursor.header = header.decode("utf-8", errors="replace")
            start = max(start, len(header))
        handle.seek(start)
        row = cursor.rows + 1
        pending = b""
        while True:
            block = handle.read(BLOCK_BYTES)
            if not block:
                break
            data = pending + block
            cut = data.rfind(b"\n")
            if cut < 0:
                pending = data
                continue
            lines, pending = data[: cut + 1], data[cut + 1:]
            plan.bytes_read += len(lines)
            chunk = _parse_lines(lines, start, kind, cursor, path, row)
            start += len(lines)
            if chunk is not None:
                row += len(chunk.frame)
                yield chunk
        cursor.offset = start  # a last line without its newline is read next time


def _parse_lines(lines: bytes, start: int, kind: str, cursor: FileCursor, path: Path, row: int) -> Chunk | None:
    buffer = np.frombuffer(lines, dtype=np.uint8)
    ends = np.flatnonzero(buffer == 10)
    begins = np.concatenate(([0], ends[:-1] + 1))
    blank = _blank_lines(buffer, begins, ends)
    begins = begins[~blank]
    if len(begins) == 0:
        return None
    positions = begins.astype(np.int64) + start
    if kind == "jsonl":
        records = [_json_record(lines[b:e], path, row + i)
                   for i, (b, e) in enumerate(zip(begins, ends[~blank], strict=True))]
        return Chunk(pd.DataFrame.from_records(records), str(path), row, cursor.key, positions)
    try:
        frame = pd.read_csv(io.BytesIO((cursor.header or "").encode() + lines))
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not readable as CSV near row {row:,}: {preview(str(exc), 160)}") from None
    if len(frame) != len(begins):
        raise InvalidInput(f"{path}: a quoted field spans lines near row {row:,}; modelbot reads new rows line by "
                           "line, so keep each prediction on one line.")
    return Chunk(frame, str(path), row, cursor.key, positions)


def _blank_lines(buffer: np.ndarray, begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Lines that are empty or hold only \\r (vectorised: millions of lines per block)."""
    length = ends - begins
    only_cr = (length == 1) & (buffer[np.minimum(begins, len(buffer) - 1)] == 13)
    return (length == 0) | only_cr


# ---- values -------------------------------------------------------------------------------------


def epoch_seconds(column: pd.Series, where: str, first_row: int) -> np.ndarray:
    """Seconds since the epoch (float64) for a timestamp column; InvalidInput names the bad row."""
    missing = column.isna().to_numpy()
    if missing.any():
        raise InvalidInput(f"{where}: row {first_row + int(np.flatnonzero(missing)[0]):,}: the timestamp is empty.")
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(column):
        utc = column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
        seconds = ((utc - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    elif pd.api.types.is_bool_dtype(column):
        raise InvalidInput(f"{where}: the timestamp column holds true/false, not times.")
    elif pd.api.types.is_numeric_dtype(column):
        seconds = column.to_numpy(dtype=np.float64)
    else:
        text = column.astype(str)
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().all():
            seconds = numbers.to_numpy(dtype=np.float64)
        else:
            parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
            bad = parsed.isna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InvalidInput(
                    f"{where}: row {first_row + i:,}: '{preview(text.iloc[i], 40)}' is not an ISO 8601 timestamp "
                    "or epoch seconds."
                )
            seconds = ((parsed - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    out_of_range = (seconds < 0) | (seconds > LATEST_EPOCH) | ~np.isfinite(seconds)
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        hint = " (milliseconds? give seconds)" if seconds[i] > LATEST_EPOCH else ""
        raise InvalidInput(f"{where}: row {first_row + i:,}: timestamp {seconds[i]:g} is not a time between 1970 "
                           f"and 3000 in epoch seconds{hint}.")
    return seconds


def read_all(location: Location, chunk_rows: int = 200_000) -> pd.DataFrame:
    """A whole (small) file or table as one DataFrame: for reference samples and labels."""
    frames = [c.frame for c in chunks(location, chunk_rows)]
    if not frames or not sum(len(f) for f in frames):
        raise InvalidInput(f"{location.describe()} holds no rows.")
    return pd.concat(frames, ignore_index=True)
