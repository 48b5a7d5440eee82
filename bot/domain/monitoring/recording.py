"""Writing a pull's outcome: its samples and the source's status, in one transaction.

Digests say "no data since …" from `SourceStatus`, so the status and the samples it
describes must never disagree: either both commit or neither does (`Samples.record` joins
our transaction). A prediction log's read position (`cursor`) commits with them too, so a
crash between reading and recording reads the same rows again instead of losing them.

`SourceStatus` semantics (also in the README):
- `last_attempt_at`: every pull, successful or not;
- `last_success_at`: the last pull that recorded at least one sample, so it answers
  "data since when?" — a pull that worked but found nothing does not move it;
- `last_error`: why the last pull was incomplete (None when it was complete);
- `samples_last_pull`: how many samples the last pull recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.domain.entities import as_utc, iso
from bot.domain.monitoring.samples import MAX_BATCH, SampleIn, Samples
from bot.domain.registry import Registry
from bot.redaction import redact_text
from storage.models import SourceStatus
from storage.queries import samples as q

if TYPE_CHECKING:
    from sqlmodel import Session

MAX_ERROR_CHARS = 2000


@dataclass
class Collected:
    """What one pull of a source gathered: samples, per-part errors (one failing query does not
    void the others) and notes (skipped values, down targets) for the log and the pull result.
    A prediction log adds `replace` (recomputed windows: late labels) and its `cursor`."""

    samples: list[SampleIn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # True when there was nothing new to fetch (not an outage: no "no data" error)
    up_to_date: bool = False
    replace: list[SampleIn] = field(default_factory=list)
    cursor: dict[str, Any] | None = None


@dataclass(frozen=True)
class PullResult:
    """What one pull did. `ok` is False when anything went wrong (`error` says what); `recorded`
    counts samples written (they may be > 0 even when not ok: the queries that worked)."""

    source: str
    type: str
    at: datetime
    ok: bool
    recorded: int
    samples: tuple[SampleIn, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "type": self.type,
            "at": iso(self.at),
            "ok": self.ok,
            "recorded": self.recorded,
            "error": self.error,
            "notes": list(self.notes),
            "samples": [
                {"model": s.model, "environment": s.environment, "version": s.version, "metric": s.metric,
                 "value": s.value, "at": iso(s.at)}
                for s in self.samples
            ],
        }


def record_pull(
    registry: Registry,
    source: str,
    samples: Sequence[SampleIn],
    *,
    now: datetime,
    error: str | None,
    replace: Sequence[SampleIn] = (),
    cursor: Mapping[str, Any] | None = None,
) -> int:
    """Write the samples (all or nothing, any count), the source's status and, for a prediction
    log, where its next read starts (`cursor`) together. `replace` are recomputed windows: they
    take the place of what this source recorded for them before (late labels)."""
    with registry.writing() as session:
        samples_of = Samples(registry)
        recorded = sum(samples_of.record(samples[i:i + MAX_BATCH], source=source, session=session)
                       for i in range(0, len(samples), MAX_BATCH))
        recorded += samples_of.replace_windows(replace, source=source, session=session) if replace else 0
        _upsert_status(session, source, now=now, recorded=recorded, error=error, cursor=cursor)
        return recorded


def record_samples(registry: Registry, source: str, samples: Sequence[SampleIn]) -> int:
    """Samples of any count in one transaction, without a source status (one-off loads)."""
    with registry.writing() as session:
        samples_of = Samples(registry)
        return sum(samples_of.record(samples[i:i + MAX_BATCH], source=source, session=session)
                   for i in range(0, len(samples), MAX_BATCH))


def record_failure(registry: Registry, source: str, *, now: datetime, error: str) -> None:
    """A pull that produced nothing: only the status changes."""
    with registry.writing() as session:
        _upsert_status(session, source, now=now, recorded=0, error=error)


def source_status(registry: Registry, names: Sequence[str]) -> dict[str, SourceStatus]:
    """Status rows by source name (absent: never pulled)."""
    with registry.reading() as session:
        return q.source_status(session, names)


def recorded_at(registry: Registry, source: str, at: datetime) -> bool:
    """Did this source already record samples stamped `at`? (Pulls must not duplicate a window.)"""
    with registry.reading() as session:
        return q.source_recorded_at(session, source[:64], as_utc(at))


def _upsert_status(
    session: Session, source: str, *, now: datetime, recorded: int, error: str | None,
    cursor: Mapping[str, Any] | None = None,
) -> None:
    at = as_utc(now)
    values: dict[str, Any] = {
        "name": source[:128],
        "last_attempt_at": at,
        # shown in /model status, digests and the Home: never a credential, whatever raised it
        "last_error": None if error is None else redact_text(error)[:MAX_ERROR_CHARS],
        "samples_last_pull": recorded,
    }
    if cursor is not None:
        values["cursor"] = dict(cursor)
    update = dict(values)
    del update["name"]
    if recorded > 0:
        values["last_success_at"] = update["last_success_at"] = at
    q.upsert_source_status(session, values, update)
