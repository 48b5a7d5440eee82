"""The job functions APScheduler runs: thin wrappers that find the services and call the domain.

Why module-level functions and a module-level registry: the job store persists a job as a
*reference* (`bot.jobs.jobs:send_digest`) plus pickled arguments, so that a restarted or
different process can run it. A bound method or a closure over `Services` (an engine, a
thread pool, locks) can be neither pickled nor looked up by name. So jobs take only plain
arguments (ids, names, ISO times) and find the process's `Services` here, in `bind()`,
which the runner calls before it starts the scheduler.

Every job logs and swallows its own failure (after logging it with the traceback): one bad
source or one broken subscription must not stop the others, and APScheduler would only log
it anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from bot.services import Services

log = logging.getLogger("modelbot.jobs")
DEFAULT_KEEP_RAW = timedelta(days=30)

_lock = threading.Lock()
_services: Services | None = None
_scheduler: BaseScheduler | None = None
_resync: Callable[[], object] | None = None


def bind(services: Services, scheduler: BaseScheduler | None = None,
         resync: Callable[[], object] | None = None) -> None:
    """Make `services` (and the running scheduler with its resync, which `bot.jobs.scheduler`
    provides) what jobs in this process use."""
    global _services, _scheduler, _resync
    with _lock:
        _services, _scheduler, _resync = services, scheduler, resync


def unbind() -> None:
    global _services, _scheduler, _resync
    with _lock:
        _services, _scheduler, _resync = None, None, None


def current_services() -> Services:
    services = _services
    if services is None:
        raise RuntimeError("no Services bound for scheduled jobs: call bot.jobs.jobs.bind() first")
    return services


def request_sync() -> None:
    """Ask this process's scheduler (if it runs here) to resync its jobs now, not in 30 s."""
    scheduler = _scheduler
    if scheduler is None or not scheduler.running:
        return
    try:
        scheduler.modify_job("sync-subscriptions", next_run_time=datetime.now(UTC))
    except Exception:  # the job may not exist yet (first sync still running); the next sync covers it
        log.debug("could not advance sync-subscriptions", exc_info=True)


# ---- digests -------------------------------------------------------------------------------------


def send_digest(subscription_id: int, scheduled_for_iso: str | None = None) -> bool:
    """Write the digest of the period ending at the scheduled time, unless already written.

    APScheduler does not pass the scheduled time; it runs the job at or after it, so the
    period is the newest fire time of the subscription's trigger not after now. A run too
    late for the grace time (the subscription's time changed and the job is stale) skips.
    Returns True when this run wrote the digest.
    """
    try:
        return _send_digest(subscription_id, scheduled_for_iso)
    except Exception:
        log.exception("digest %s failed", subscription_id)
        return False


def _send_digest(subscription_id: int, scheduled_for_iso: str | None) -> bool:
    from bot.blocks.digest_chart import render_png
    from bot.domain.monitoring import digest
    from bot.domain.schedule import latest_fire, period_for
    from bot.domain.subscriptions import Subscriptions
    from bot.jobs.triggers import digest_grace_s, digest_lookback, digest_trigger

    services = current_services()
    now = services.clock()
    sub = Subscriptions(services.registry, services.policy).get(subscription_id)
    if sub is None:
        log.info("digest %s: the subscription is gone; removing its job", subscription_id)
        _remove_job(f"digest:{subscription_id}")
        return False
    every = services.settings.digest_test_every_s
    trigger = digest_trigger(sub.schedule, every)
    lookback = digest_lookback(sub.schedule, every)
    if scheduled_for_iso:
        fire = datetime.fromisoformat(scheduled_for_iso).astimezone(UTC)
    else:
        found = latest_fire(trigger, now, lookback)
        if found is None or (now - found).total_seconds() > digest_grace_s(sub.schedule, every):
            log.warning("digest %s: no period of its schedule (%s) is due within the grace time at %s (a late run, "
                        "or the schedule changed); skipping", sub.id, sub.schedule.describe(), now.isoformat())
            request_sync()
            return False
        fire = found
    period = period_for(trigger, fire, lookback)
    if digest.already_sent(services.registry, sub.id, period):
        log.info("digest %s period %s: already sent; nothing to do", sub.id, period.key)
        return False
    built = digest.build(services.registry, services.policy, sub, period, services.feeding_sources())
    png = None
    if not built.chart.empty:
        try:
            png = render_png(built.chart)
        except Exception:  # the numbers still go out without a picture
            log.exception("digest %s period %s: the chart failed; sending without it", sub.id, period.key)
    sent = digest.commit(services.registry, sub.id, period, built, png, now=now)
    if sent:
        quiet = [s["name"] for s in built.facts["sources"]]
        log.info("digest %s period %s: enqueued for %s (%d models%s%s)", sub.id, period.key, sub.channel,
                 len(built.facts["models"]), ", chart" if png else "",
                 f", sources without data: {', '.join(quiet)}" if quiet else "")
    else:
        log.info("digest %s period %s: already sent by another run; nothing written", sub.id, period.key)
    return sent


def sync_subscriptions() -> None:
    """Reconcile the job store with subscriptions and config (every 30 s, and on request)."""
    resync = _resync
    if resync is not None:
        resync()


def _remove_job(job_id: str) -> None:
    scheduler = _scheduler
    if scheduler is None:
        return
    try:
        scheduler.remove_job(job_id)
    except Exception:
        log.debug("job %s was already gone", job_id)


# ---- housekeeping ---------------------------------------------------------------------------------


def expire_requests() -> int:
    """Expire approval requests past their deadline (their cards update through the outbox)."""
    try:
        return current_services().deployments.expire_due()
    except Exception:
        log.exception("expiring requests failed")
        return 0


def compact_samples() -> int:
    """Roll raw metric samples older than `[retention] raw` (default 30d) into hourly aggregates."""
    from bot.domain.monitoring.samples import Samples

    services = current_services()
    try:
        return Samples(services.registry).compact(keep_raw=_keep_raw(services), now=services.clock())
    except Exception:
        log.exception("compacting samples failed")
        return 0


def _keep_raw(services: Services) -> timedelta:
    from bot.domain.durations import parse_duration

    raw = (services.policy.sections.get("retention") or {}).get("raw")
    return parse_duration(str(raw)) if raw else DEFAULT_KEEP_RAW


# ---- alerts --------------------------------------------------------------------------------------


def evaluate_alerts() -> None:
    """One alert evaluation cycle (`evaluate-alerts`): sync the file's rules, evaluate every rule,
    enqueue the notifications; bot.jobs.alerting does the work."""
    from bot.jobs.alerting import run_cycle

    try:
        run_cycle(current_services())
    except Exception:
        log.exception("alert evaluation failed")


def alert_charts() -> int:
    """Charts for alert cards posted recently (`alert-charts`), apart from evaluation, which a
    slow render must never delay."""
    from bot.jobs.alerting import chart_pending

    try:
        return chart_pending(current_services())
    except Exception:
        log.exception("alert charts failed")
        return 0


# ---- sources -------------------------------------------------------------------------------------


def _sources(services: Services) -> tuple[Any, ...]:
    """The `[[sources]]` of the policy file (validated at start-up by bot.config.sources)."""
    try:
        from bot.config.sources import configured_sources
    except ImportError:  # a build without metric sources
        return ()
    return configured_sources(services.policy)


def source_intervals(services: Services) -> dict[str, int]:
    """Each configured source's pull interval in whole seconds."""
    return {s.name: max(1, int(s.interval.total_seconds())) for s in _sources(services)}


def pull(source_name: str) -> None:
    """Pull one source. `pull_source` records success or failure in `source_status` (where digests
    read "no data since …") and never raises; this wrapper only keeps the scheduler running."""
    services = current_services()
    source = next((s for s in _sources(services) if s.name == source_name), None)
    if source is None:
        log.info("source %s is no longer configured; removing its job", source_name)
        _remove_job(f"pull:{source_name}")
        return
    from bot.sources.pull import pull_source

    try:
        pull_source(services, source, services.clock())
    except Exception:
        log.exception("pulling source %s failed", source_name)
