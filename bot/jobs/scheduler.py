"""The scheduler and the jobs it should hold.

APScheduler 3.x keeps jobs in `apscheduler_jobs` in our own database (SQLAlchemyJobStore), so
a restart resumes the schedule instead of rebuilding it, and a digest due while the process
was down still runs (within its misfire grace time) when it comes back. Jobs have fixed ids
(`digest:<subscription id>`, `expire-requests`, `compact-samples`, `sync-subscriptions`,
`pull:<source>`, `evaluate-alerts`, `alert-charts`, `mlflow-poll`) and are added with `replace_existing=True`,
so re-adding is an upsert, never a duplicate.

`sync_jobs` reconciles the store with what subscriptions and config ask for, and *only
touches jobs whose definition changed*: replacing an unchanged job would recompute its next
run time from "now" and silently drop a run that is overdue right now (the one a restart or
a leader takeover is about to catch up on).

APScheduler must not share a job store between two running schedulers ("you can't"), which
is why only the leader (bot.jobs.leader) ever starts one.
"""

from __future__ import annotations

import contextlib
import logging
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.domain.schedule import latest_fire
from bot.jobs import jobs
from bot.jobs.triggers import EPOCH, digest_grace_s, digest_lookback, digest_trigger

if TYPE_CHECKING:
    from bot.domain.subscriptions import SubscriptionView
    from bot.services import Services

TABLE = "apscheduler_jobs"
DEFAULT_MISFIRE_GRACE_S = 300
SYNC_INTERVAL_S = 30
EXPIRE_INTERVAL_S = 60
ONCE_PREFIX = "once:"
# A catch-up run names its period explicitly and is idempotent: a slow start must not make it miss.
CATCH_UP_GRACE_S = 600
log = logging.getLogger("modelbot.scheduler")


class SharedEngineJobStore(SQLAlchemyJobStore):
    """SQLAlchemyJobStore on the application's engine, which it must not dispose of.

    The stock store disposes its engine on scheduler shutdown; here that engine is the one
    every request uses, and a leader that steps down keeps serving requests.
    """

    def shutdown(self) -> None:
        pass


@dataclass(frozen=True)
class JobSpec:
    """One job as the application wants it: compared with the stored job by `signature`."""

    id: str
    func: Callable[..., Any]
    trigger: BaseTrigger
    args: tuple[Any, ...] = ()
    misfire_grace_time: int = DEFAULT_MISFIRE_GRACE_S
    name: str | None = None

    def signature(self) -> tuple[str, str, tuple[Any, ...], int]:
        return (f"{self.func.__module__}:{self.func.__qualname__}", repr(self.trigger), tuple(self.args),
                self.misfire_grace_time)


def job_signature(job: Job) -> tuple[str, str, tuple[Any, ...], int]:
    return (job.func_ref, repr(job.trigger), tuple(job.args), job.misfire_grace_time)


# Features add their fixed jobs here (e.g. alert evaluation): called with the services at every sync.
JOB_PROVIDERS: list[Callable[[Services], Iterable[JobSpec]]] = []


def build_scheduler(services: Services, *, max_workers: int = 4) -> BackgroundScheduler:
    """Not started: the runner starts it once this process holds the leader lock."""
    store = SharedEngineJobStore(engine=services.db.engine, tablename=TABLE)
    return BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": DEFAULT_MISFIRE_GRACE_S},
        timezone=zoneinfo.ZoneInfo("UTC"),
        daemon=True,
    )


def stop_scheduler(scheduler: BackgroundScheduler, *, wait: bool = False) -> None:
    """Shut down without touching the job store again.

    APScheduler's loop wakes once more after `shutdown()` and processes the jobs due at that
    instant: it advances their next run time in the store and then fails to submit them to the
    stopped executor. For a leader stepping down that would silently skip a run (and write to a
    store another leader may already own), so the store is detached first; jobs stay in it.
    """
    if not scheduler.running:
        return
    with contextlib.suppress(KeyError):  # build_scheduler names its one store "default"
        scheduler.remove_jobstore("default")
    scheduler.shutdown(wait=wait)


# ---- digests ------------------------------------------------------------------------------------


def digest_job(sub: SubscriptionView, every: int | None = None) -> JobSpec:
    return JobSpec(
        id=f"digest:{sub.id}", func=jobs.send_digest, trigger=digest_trigger(sub.schedule, every), args=(sub.id,),
        misfire_grace_time=digest_grace_s(sub.schedule, every), name=f"digest {sub.schedule.describe()} → {sub.channel}",
    )


def alerts_jobs(services: Services) -> list[JobSpec]:
    """Every rule evaluated every `[alerts] evaluation_interval` (1 min by default); a missed run
    is skipped, not queued: the next cycle reads the same latest samples. Charts for new alert
    cards on the same interval, as a job of their own (`[alerts] charts = false` turns it off)."""
    from bot.config.alerts import alert_config

    config = alert_config(services.policy)
    every = max(1, int(config.settings.evaluation_interval.total_seconds()))
    utc = zoneinfo.ZoneInfo("UTC")
    specs = [JobSpec("evaluate-alerts", jobs.evaluate_alerts, IntervalTrigger(seconds=every, start_date=EPOCH,
                                                                              timezone=utc),
                     misfire_grace_time=every, name=f"evaluate alert rules every {every} s")]
    if config.charts:
        specs.append(JobSpec("alert-charts", jobs.alert_charts, IntervalTrigger(seconds=every, start_date=EPOCH,
                                                                                timezone=utc),
                             misfire_grace_time=every, name=f"charts for new alert cards every {every} s"))
    return specs


# ---- the whole set --------------------------------------------------------------------------------


def mlflow_jobs(services: Services) -> list[JobSpec]:
    """With `[mlflow]`: reconcile with MLflow every poll_interval (a missed run is skipped: the next one
    reads the same state)."""
    from bot.config.mlflow import mlflow_config
    from bot.jobs import mlflow

    settings = mlflow_config(services.policy)
    if settings is None:
        return []
    every = max(1, int(settings.poll_interval.total_seconds()))
    trigger = IntervalTrigger(seconds=every, start_date=EPOCH, timezone=zoneinfo.ZoneInfo("UTC"))
    return [JobSpec("mlflow-poll", mlflow.poll, trigger, misfire_grace_time=every, name=f"poll MLflow every {every} s")]


def desired_jobs(services: Services) -> list[JobSpec]:
    from bot.domain.subscriptions import Subscriptions

    utc = zoneinfo.ZoneInfo("UTC")
    specs = [
        JobSpec("expire-requests", jobs.expire_requests,
                IntervalTrigger(seconds=EXPIRE_INTERVAL_S, start_date=EPOCH, timezone=utc), misfire_grace_time=60),
        JobSpec("compact-samples", jobs.compact_samples, CronTrigger(hour=3, minute=17, timezone=utc),
                misfire_grace_time=6 * 3600),
        JobSpec("sync-subscriptions", jobs.sync_subscriptions,
                IntervalTrigger(seconds=SYNC_INTERVAL_S, start_date=EPOCH, timezone=utc), misfire_grace_time=30),
    ]
    for name, interval_s in jobs.source_intervals(services).items():
        specs.append(JobSpec(f"pull:{name}", jobs.pull, IntervalTrigger(seconds=interval_s, start_date=EPOCH,
                                                                          timezone=utc),
                             args=(name,), misfire_grace_time=max(30, interval_s // 2)))
    every = services.settings.digest_test_every_s
    specs.extend(digest_job(sub, every) for sub in Subscriptions(services.registry, services.policy).list_all())
    specs.extend(alerts_jobs(services))
    specs.extend(mlflow_jobs(services))
    for provider in JOB_PROVIDERS:
        specs.extend(provider(services))
    return specs


@dataclass
class SyncResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def sync_jobs(scheduler: BackgroundScheduler, services: Services) -> SyncResult:
    """Make the stored jobs equal `desired_jobs`, leaving unchanged jobs (and their next run) alone."""
    result = SyncResult()
    wanted = {spec.id: spec for spec in desired_jobs(services)}
    existing = {job.id: job for job in scheduler.get_jobs()}
    for job_id in existing.keys() - wanted.keys():
        if job_id.startswith(ONCE_PREFIX):
            continue  # one-shot catch-up runs remove themselves
        scheduler.remove_job(job_id)
        result.removed.append(job_id)
    for job_id, spec in wanted.items():
        job = existing.get(job_id)
        if job is not None and job_signature(job) == spec.signature():
            result.kept.append(job_id)
            continue
        scheduler.add_job(spec.func, trigger=spec.trigger, id=spec.id, args=list(spec.args), name=spec.name or spec.id,
                          misfire_grace_time=spec.misfire_grace_time, replace_existing=True)
        (result.replaced if job is not None else result.added).append(job_id)
    if result.added or result.replaced or result.removed:
        log.info("scheduler jobs synced: added %s, replaced %s, removed %s",
                 result.added or "none", result.replaced or "none", result.removed or "none")
    return result


def catch_up(scheduler: BackgroundScheduler, services: Services, now: datetime) -> list[int]:
    """Queue a one-off run for digests whose latest period was missed within its grace time.

    The stored job covers a leader that was down at the fire time (its next run is then in
    the past and runs on start). This covers the other case: the old leader had already
    moved the job's next run forward and died before the digest committed.
    `send_digest` is idempotent per period, so an extra run costs a read, never a duplicate.
    """
    from bot.domain.subscriptions import Subscriptions

    queued = []
    for sub in Subscriptions(services.registry, services.policy).list_all():
        every = services.settings.digest_test_every_s
        trigger = digest_trigger(sub.schedule, every)
        fire = latest_fire(trigger, now, digest_lookback(sub.schedule, every))
        if fire is None or fire <= sub.created_at or (now - fire).total_seconds() > digest_grace_s(sub.schedule, every):
            continue
        if sub.last_sent_at is not None and sub.last_sent_at >= fire:
            continue
        job = scheduler.get_job(f"digest:{sub.id}")
        if job is not None and job.next_run_time is not None and job.next_run_time <= now:
            continue  # the stored job is overdue and runs on its own
        scheduler.add_job(jobs.send_digest, trigger=DateTrigger(run_date=now, timezone=zoneinfo.ZoneInfo("UTC")),
                          id=f"{ONCE_PREFIX}digest:{sub.id}", args=[sub.id, fire.isoformat()],
                          misfire_grace_time=CATCH_UP_GRACE_S, replace_existing=True)
        queued.append(sub.id)
    if queued:
        log.info("catching up digests missed by the previous leader: subscriptions %s", queued)
    return queued
