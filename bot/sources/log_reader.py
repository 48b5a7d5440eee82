"""Reading prediction logs in chunks: CSV, Parquet, JSON lines (a path or a glob) or a SQL table.

Logs are often larger than memory, so nothing here loads a whole file: CSV and JSON
lines go through pandas' `chunksize`, Parquet row group by row group with pyarrow
(imported lazily: only Parquet needs it), SQL tables through `read_sql_query` with
`chunksize`. Each chunk comes back as a DataFrame with the file it came from and the
row number of its first row, so an error can say "logs/day3.csv: row 1,204: …".

Timestamps are ISO 8601 text (naive = UTC) or epoch seconds (int or float), or native
Parquet/SQL timestamps; anything else stops the read with the first bad row named.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bot.domain.errors import InvalidInput
from bot.domain.names import preview
from bot.redaction import redact_text, redact_url

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl"}  # .csv.gz and .jsonl.gz work too
LATEST_EPOCH = 32_503_680_000.0  # 3000-01-01: later "seconds" are almost surely milliseconds
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


def chunks(location: Location, chunk_rows: int) -> Iterator[Chunk]:
    """Every chunk of every matching file (sorted by name), or of the SQL table."""
    if location.sql_url is not None:
        yield from _sql_chunks(location.sql_url, location.table or "", chunk_rows)
        return
    for path in files(location.path or ""):
        yield from file_chunks(path, chunk_rows)


def files(pattern: str) -> list[Path]:
    expanded = os.path.expanduser(pattern)
    matches = sorted(glob.glob(expanded)) if glob.has_magic(expanded) else [expanded]
    found = [Path(m) for m in matches if Path(m).is_file()]
    if not found:
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


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """JSON lines with the standard library: exact floats, no date guessing, and the line number
    of a bad line (pandas' reader rounds floats and guesses dates from column names)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    records: list[dict[str, object]] = []
    first = 1
    row = 0
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path}: line {number:,} is not JSON ({exc.msg}, column {exc.colno}).") from None
                if not isinstance(record, dict):
                    raise InvalidInput(f"{path}: line {number:,} is not a JSON object.")
                records.append(record)
                row += 1
                if len(records) >= chunk_rows:
                    yield Chunk(pd.DataFrame.from_records(records), str(path), first)
                    records, first = [], row + 1
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text, so not JSON lines.") from None
    if records:
        yield Chunk(pd.DataFrame.from_records(records), str(path), first)


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow ships with the bench/parquet extra
        raise InvalidInput("Reading Parquet needs pyarrow: pip install pyarrow.") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, … for a bad file
        raise InvalidInput(f"{path}: not readable as Parquet: {preview(str(exc), 160)}") from None
    row = 1
    meta = parquet.metadata
    for group in range(meta.num_row_groups):
        if meta.row_group(group).num_rows <= chunk_rows:
            tables = [parquet.read_row_group(group)]
        else:
            import pyarrow as pa

            tables = (pa.Table.from_batches([b]) for b in parquet.iter_batches(batch_size=chunk_rows,
                                                                                row_groups=[group]))
        for table in tables:
            frame = table.to_pandas()
            yield Chunk(frame, str(path), row)
            row += len(frame)
    if meta.num_row_groups == 0:
        yield Chunk(parquet.schema_arrow.empty_table().to_pandas(), str(path), 1)


def _sql_chunks(url: str, table: str, chunk_rows: int) -> Iterator[Chunk]:
    import sqlalchemy as sa

    from storage.db import normalise_url

    try:
        engine = sa.create_engine(normalise_url(url))
    except Exception as exc:
        raise InvalidInput(f"sql_url is not a usable database URL: {preview(redact_text(str(exc)), 160)}") from None
    try:
        quote = engine.dialect.identifier_preparer.quote
        name = ".".join(quote(part) for part in table.split("."))
        with engine.connect() as conn:
            row = 1
            for frame in pd.read_sql_query(sa.text(f"SELECT * FROM {name}"), conn, chunksize=chunk_rows):
                yield Chunk(frame, f"table {table}", row)
                row += len(frame)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        # pandas wraps the driver's error (and the SQL text) in its own DatabaseError: say what the driver said
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ else exc
        reason = str(getattr(cause, "orig", None) or cause).splitlines()[0]
        where = f"the database at {redact_url(url)}"
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            raise InvalidInput(f"Table {table} does not exist in {where}: check table = \"…\" in this source.") from None
        raise InvalidInput(f"Cannot read table {table} from {where}: {preview(redact_text(reason), 160)}") from None
    finally:
        engine.dispose()


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
    """A whole (small) file as one DataFrame: for reference samples."""
    frames = [c.frame for c in chunks(location, chunk_rows)]
    if not frames or not sum(len(f) for f in frames):
        raise InvalidInput(f"{location.describe()} holds no rows.")
    return pd.concat(frames, ignore_index=True)
