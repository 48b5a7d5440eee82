"""`modelbot ingest`: load a prediction log once, window by window, all or nothing.

Everything is read and computed before anything is written, and then written in one
transaction: bad input (a missing label column, an unparsable timestamp, an empty file,
an unknown model or environment) leaves the database exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain import names
from bot.domain.entities import iso
from bot.domain.errors import InvalidInput
from bot.domain.monitoring.log_files import Location
from bot.domain.monitoring.prediction_logs import LogSpec, LogSummary, summarise
from bot.domain.monitoring.recording import record_samples
from bot.domain.monitoring.samples import Samples
from bot.domain.registry import Registry

SOURCE = "ingest"


@dataclass(frozen=True)
class IngestResult:
    model: str
    location: str
    summary: LogSummary
    recorded: int
    now: datetime

    def to_dict(self) -> dict[str, Any]:
        s = self.summary
        return {
            "model": self.model,
            "source": self.location,
            "rows_read": s.rows_read,
            "rows_used": s.rows_used,
            "recorded": self.recorded,
            "windows": [w.to_dict(self.now) for w in s.windows],
            "notes": list(s.notes),
        }


def ingest(registry: Registry, location: Location, spec: LogSpec, *, now: datetime) -> IngestResult:
    model = registry.get_model(spec.model).name  # NotFound before any reading
    if spec.environment is not None:
        spec = LogSpec(**{**spec.__dict__, "environment": names.environment(spec.environment, registry.environments)})
    samples_of = Samples(registry)
    summary = summarise(location, spec, environments=registry.environments,
                        serving=lambda env: samples_of.history(model, env))
    if not summary.windows:
        newest = f" (newest row {iso(summary.newest)})" if summary.newest else ""
        skipped = f"; {' '.join(summary.notes)}" if summary.notes else ""
        raise InvalidInput(f"{location.describe()}: no rows for {model}{newest}{skipped}")
    samples = [s for window in summary.windows for s in window.samples(model, now)]
    recorded = record_samples(registry, SOURCE, samples)
    return IngestResult(model, location.describe(), summary, recorded, now)
