"""Run the scheduler in whichever process holds the leader lock.

Every process (`modelbot serve` replicas, `modelbot scheduler`) runs a `SchedulerRunner`.
It tries to take the lock every `interval` seconds (5 by default, at most 10, so a successor
takes over well within 30 s of a leader's death); the winner builds the scheduler on the
shared job store, starts it, syncs the jobs and queues digests the old leader missed. The
leader re-checks the lock on the same interval and, once it is gone (its PostgreSQL session
died, the lock file was replaced), shuts its scheduler down at once without waiting for
running jobs, so two schedulers never keep running on one store. Work already in flight
may finish; digests are idempotent per period, so that cannot post twice.

Environment: MODELBOT_SCHEDULER_LEADER_INTERVAL_S (seconds between lock attempts and checks,
0.1–10, default 5); MODELBOT_SCHEDULER=off keeps `modelbot serve` from running a scheduler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from bot.domain import subscriptions
from bot.jobs import jobs
from bot.jobs.leader import LeaderLock, holder_name, leader_lock_for
from bot.jobs.scheduler import build_scheduler, catch_up, stop_scheduler, sync_jobs

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("modelbot.scheduler")


class SchedulerRunner:
    def __init__(
        self,
        services: Services,
        *,
        lock: LeaderLock | None = None,
        interval_s: float | None = None,
        scheduler_factory: Callable[[Services], BackgroundScheduler] = build_scheduler,
    ) -> None:
        self.services = services
        self.lock = lock or leader_lock_for(services.db)
        self.interval_s = interval_s if interval_s is not None else services.settings.scheduler_leader_interval_s
        self._factory = scheduler_factory
        self._scheduler: BackgroundScheduler | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._step_lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None

    @property
    def scheduler(self) -> BackgroundScheduler | None:
        return self._scheduler

    def step(self) -> bool:
        """One round: become leader if the lock is free, step down if it was lost. Returns is_leader."""
        with self._step_lock:
            if self._scheduler is None:
                if self.lock.acquire():
                    self._lead()
            elif not self.lock.held():
                self._step_down(f"lost the {self.lock.describe()}")
            return self._scheduler is not None

    def run(self, stop: threading.Event | None = None) -> None:
        """Loop until `stop` (or `self.stop()`); always steps down and releases on the way out."""
        stop = stop or self._stop
        log.info("scheduler: %s competes for the %s every %.1f s", holder_name(), self.lock.describe(),
                 self.interval_s)
        try:
            while not stop.is_set() and not self._stop.is_set():
                try:
                    self.step()
                except Exception:  # the database blinked: try again next round
                    log.exception("scheduler leader step failed")
                stop.wait(self.interval_s)
        finally:
            self.close()

    def start(self) -> SchedulerRunner:
        """Run in a daemon thread (for `modelbot serve`)."""
        self._thread = threading.Thread(target=self.run, name="scheduler-leader", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self.close()

    def close(self) -> None:
        with self._step_lock:
            if self._scheduler is not None:
                self._step_down("shutting down", wait=True)
            else:
                self.lock.release()

    # ---- transitions ---------------------------------------------------------------------------

    def _lead(self) -> None:
        log.info("scheduler leader: %s holds the %s; starting the scheduler", holder_name(), self.lock.describe())
        scheduler = self._factory(self.services)
        jobs.bind(self.services, scheduler, resync=lambda: sync_jobs(scheduler, self.services))
        try:
            scheduler.start()
            sync_jobs(scheduler, self.services)
            catch_up(scheduler, self.services, self.services.clock())
        except Exception:
            log.exception("scheduler failed to start; releasing the leader lock")
            stop_scheduler(scheduler)
            jobs.bind(self.services, None)
            self.lock.release()
            raise
        self._scheduler = scheduler
        if jobs.request_sync not in subscriptions.CHANGE_LISTENERS:
            subscriptions.CHANGE_LISTENERS.append(jobs.request_sync)

    def _step_down(self, why: str, *, wait: bool = False) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if wait:
            log.info("scheduler leader: %s; stopping the scheduler and releasing the %s", why, self.lock.describe())
        else:
            log.warning("scheduler leader: %s; stopping the scheduler", why)
        jobs.bind(self.services, None)  # jobs still running keep working; no resyncs
        if scheduler is not None:
            stop_scheduler(scheduler, wait=wait)
        self.lock.release()


def start_background(services: Services) -> SchedulerRunner | None:
    """The hook `modelbot serve` calls: a leader-elected scheduler beside the web server."""
    if not services.settings.scheduler:
        log.info("scheduler disabled (MODELBOT_SCHEDULER=off)")
        return None
    return SchedulerRunner(services).start()
