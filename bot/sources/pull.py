"""`pull_source`: the one entry point the scheduler calls, once per source per interval.

It never raises. Whatever happens — the source is down, answers 500, stalls, sends
malformed JSON, a log lacks its label column, the window is empty, the database is
locked — the outcome is a `PullResult`, one log line says what went wrong in words an
operator can act on, and the scheduler moves on to the next job. Samples and the
source's status are written in one transaction (see `recording.py`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.config.sources import AnySource, JsonSource, PredictionLogSource, ProbeSource, PrometheusSource
from bot.domain.entities import as_utc
from bot.domain.errors import ModelbotError
from bot.domain.monitoring import log_pull
from bot.domain.monitoring.log_files import Location
from bot.domain.monitoring.prediction_logs import LabelsSpec, LogSpec
from bot.domain.monitoring.recording import PullResult, record_failure, record_pull
from bot.sources import json_endpoint, probes, prometheus
from bot.sources.common import Collected
from bot.sources.http import SourceError
from storage.db import DatabaseBusy, DatabaseUnreachable

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("modelbot.sources")


def pull_source(services: Services, source: AnySource, now: datetime | None = None) -> PullResult:
    """Pull one source now: collect, record samples + status together, log one line. Never raises."""
    now = as_utc(now or services.clock())
    registry = services.registry
    try:
        collected = _collect(services, source, now)
    except SourceError as exc:
        return _failed(services, source, now, exc.message)
    except ModelbotError as exc:  # bad data, unknown model/environment, …
        return _failed(services, source, now, exc.message)
    except (DatabaseBusy, DatabaseUnreachable) as exc:
        return _failed(services, source, now, str(exc))
    except Exception as exc:  # a bug must not stop the scheduler; say so plainly
        log.error("source %s: unexpected %s: %s", source.name, type(exc).__name__, exc,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        return _failed(services, source, now, f"unexpected {type(exc).__name__}: {exc}", logged=True)

    error = "; ".join(collected.errors) or None
    if not collected.samples and error is None and not collected.up_to_date:
        error = "no data: " + ("; ".join(collected.notes) or "the source returned nothing.")
    try:
        recorded = record_pull(registry, source.name, collected.samples, now=now, error=error,
                               replace=collected.replace, cursor=collected.cursor)
    except (ModelbotError, DatabaseBusy, DatabaseUnreachable) as exc:
        message = getattr(exc, "message", None) or str(exc)
        return _failed(services, source, now, f"could not record samples: {message}")
    except Exception as exc:
        log.error("source %s: unexpected %s while recording: %s", source.name, type(exc).__name__, exc,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        return PullResult(source.name, source.type, now, False, 0, (), f"unexpected {type(exc).__name__}: {exc}")
    result = PullResult(source.name, source.type, now, error is None, recorded, tuple(collected.samples), error,
                        tuple(collected.notes))
    if error is not None:
        log.warning("source %s (%s): %s", source.name, source.type, error)
    else:
        log.info("source %s (%s): recorded %d sample(s)%s", source.name, source.type, recorded,
                 f"; {'; '.join(collected.notes)}" if collected.notes else "")
    return result


def _collect(services: Services, source: AnySource, now: datetime) -> Collected:
    registry = services.registry
    if isinstance(source, PrometheusSource):
        return prometheus.collect(registry, source, now)
    if isinstance(source, JsonSource):
        return json_endpoint.collect(registry, source, now)
    if isinstance(source, ProbeSource):
        collected = probes.collect(registry, source, now)
        for note in collected.notes:
            log.warning("source %s (probe): %s", source.name, note)
        return collected
    if isinstance(source, PredictionLogSource):
        return log_pull.collect(registry, log_source(source), now)
    raise TypeError(f"unknown source type {type(source).__name__}")


def _failed(services: Services, source: AnySource, now: datetime, error: str, *, logged: bool = False) -> PullResult:
    if not logged:
        log.warning("source %s (%s): %s", source.name, source.type, error)
    try:
        record_failure(services.registry, source.name, now=now, error=error)
    except Exception as exc:  # the database itself is down: the log line above is all we can do
        log.warning("source %s: could not store its status either: %s", source.name, exc)
    return PullResult(source.name, source.type, now, False, 0, (), error)


def log_source(source: PredictionLogSource) -> log_pull.LogSource:
    """The domain's view of a configured prediction log."""
    labels = None
    if source.labels is not None:
        labels = LabelsSpec(Location(path=source.labels.path, sql_url=source.labels.sql_url,
                                     table=source.labels.table), dict(source.labels.columns))
    spec = LogSpec(model=source.model, environment=source.environment, version=source.version,
                   features=source.features, reference=source.reference, window=source.window,
                   columns=dict(source.columns), chunk_rows=source.chunk_rows, drift_method=source.drift_method,
                   positive_label=source.positive_label, task=source.task, labels=labels, lateness=source.lateness,
                   label_horizon=source.label_horizon, pushdown=source.pushdown)
    return log_pull.LogSource(source.name, Location(path=source.path, sql_url=source.sql_url, table=source.table),
                              spec)
