"""Writing a pull's outcome: its samples and the source's status, in one transaction.

Digests say "no data since …" from `SourceStatus`, so the status and the samples it
describes must never disagree: either both commit or neither does. `Samples.record`
opens its own write transaction; `_JoinedRegistry` lets it join ours instead.

`SourceStatus` semantics (also in the README):
- `last_attempt_at`: every pull, successful or not;
- `last_success_at`: the last pull that recorded at least one sample, so it answers
  "data since when?" — a pull that worked but found nothing does not move it;
- `last_error`: why the last pull was incomplete (None when it was complete);
- `samples_last_pull`: how many samples the last pull recorded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from bot.domain.entities import as_utc, iso
from bot.domain.registry import Registry
from bot.domain.samples import MAX_BATCH, SampleIn, Samples
from bot.redaction import redact_text
from storage.models import MetricSample, SourceStatus

MAX_ERROR_CHARS = 2000


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


class _JoinedRegistry(Registry):
    """A Registry whose `writing()` reuses an open session instead of starting a transaction."""

    def __init__(self, registry: Registry, session: Session) -> None:
        super().__init__(registry.db, environments=registry.environments, clock=registry.clock)
        self._session = session

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        yield self._session


def record_pull(
    registry: Registry,
    source: str,
    samples: Sequence[SampleIn],
    *,
    now: datetime,
    error: str | None,
) -> int:
    """Write the samples (all or nothing, any count) and the source's status together."""
    with registry.writing() as session:
        joined = Samples(_JoinedRegistry(registry, session))
        recorded = 0
        for start in range(0, len(samples), MAX_BATCH):
            recorded += joined.record(samples[start:start + MAX_BATCH], source=source)
        _upsert_status(registry, session, source, now=now, recorded=recorded, error=error)
        return recorded


def record_samples(registry: Registry, source: str, samples: Sequence[SampleIn]) -> int:
    """Samples of any count in one transaction, without a source status (one-off loads)."""
    with registry.writing() as session:
        joined = Samples(_JoinedRegistry(registry, session))
        return sum(joined.record(samples[i:i + MAX_BATCH], source=source) for i in range(0, len(samples), MAX_BATCH))


def record_failure(registry: Registry, source: str, *, now: datetime, error: str) -> None:
    """A pull that produced nothing: only the status changes."""
    with registry.writing() as session:
        _upsert_status(registry, session, source, now=now, recorded=0, error=error)


def source_status(registry: Registry, names: Sequence[str]) -> dict[str, SourceStatus]:
    """Status rows by source name (absent: never pulled)."""
    if not names:
        return {}
    with registry.reading() as session:
        rows = session.exec(select(SourceStatus).where(SourceStatus.name.in_(list(names)))).all()  # type: ignore[attr-defined]
        return {row.name: row for row in rows}


def recorded_at(registry: Registry, source: str, at: datetime) -> bool:
    """Did this source already record samples stamped `at`? (Pulls must not duplicate a window.)"""
    with registry.reading() as session:
        found = session.exec(
            select(MetricSample.id).where(MetricSample.source == source[:64], MetricSample.at == as_utc(at)).limit(1)
        ).first()
        return found is not None


def _upsert_status(
    registry: Registry, session: Session, source: str, *, now: datetime, recorded: int, error: str | None
) -> None:
    at = as_utc(now)
    values: dict[str, Any] = {
        "name": source[:128],
        "last_attempt_at": at,
        # shown in /model status, digests and the Home: never a credential, whatever raised it
        "last_error": None if error is None else redact_text(error)[:MAX_ERROR_CHARS],
        "samples_last_pull": recorded,
    }
    update = dict(values)
    del update["name"]
    if recorded > 0:
        values["last_success_at"] = update["last_success_at"] = at
    insert = sqlite_insert if registry.db.is_sqlite else pg_insert
    session.execute(
        insert(SourceStatus).values(**values).on_conflict_do_update(index_elements=["name"], set_=update)
    )
