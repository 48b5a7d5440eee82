"""One scheduler across replicas (acceptance 4).

In-process: the lock file (SQLite) and the advisory lock (PostgreSQL) admit one holder; a
runner that loses its lock stops its scheduler, and another runner takes over. Runners are
driven step by step (`SchedulerRunner.step()`), so no test waits on a timer.

Across processes: two real `modelbot scheduler` processes on one PostgreSQL database, with
digests every 2 seconds (a test-only interval) delivered to the strict fake Slack. The leader is
SIGKILLed; the other must lead within 30 s, and no period may be posted twice. Those are
separate processes, so the test watches their logs and the database in a bounded polling loop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot import handlers
from bot.jobs import jobs
from bot.jobs.leader import FileLeaderLock, PostgresLeaderLock, leader_lock_for
from bot.jobs.runner import SchedulerRunner
from bot.jobs.triggers import DIGEST_TEST_INTERVAL_ENV
from storage.db import normalise_url
from tests.jobs.support import CHANNEL, Clock, make_services, outbox_rows, seed_churn
from tests.slack_fake import SlackFake

ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_LIMIT_S = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(autouse=True)
def _unbind() -> Iterator[None]:
    yield
    jobs.unbind()


# ---- the locks ---------------------------------------------------------------------------------


def test_lock_file_admits_one_holder_and_frees_on_release(tmp_path: Path) -> None:
    path = tmp_path / "modelbot.db.scheduler-lock"
    first, second = FileLeaderLock(path), FileLeaderLock(path)
    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    first.release()
    assert not first.held()
    assert second.acquire() and second.held()
    assert path.read_text().strip().endswith(f":{os.getpid()}")
    second.release()


def test_lock_file_replaced_underneath_counts_as_lost(tmp_path: Path) -> None:
    path = tmp_path / "modelbot.db.scheduler-lock"
    lock = FileLeaderLock(path)
    assert lock.acquire()
    path.unlink()  # someone cleaned up the folder: a newcomer could now lock a fresh file
    assert not lock.held()


def test_sqlite_runner_that_loses_the_lock_stops_and_another_takes_over(sqlite_url: str) -> None:
    one, two = make_services(sqlite_url, clock=_now), make_services(sqlite_url, clock=_now)
    lock_one, lock_two = leader_lock_for(one.db), leader_lock_for(two.db)
    assert isinstance(lock_one, FileLeaderLock)
    first, second = SchedulerRunner(one, lock=lock_one), SchedulerRunner(two, lock=lock_two)
    try:
        assert first.step() is True
        scheduler = first.scheduler
        assert scheduler is not None and scheduler.running
        assert {j.id for j in scheduler.get_jobs()} >= {"expire-requests", "compact-samples", "sync-subscriptions"}
        assert second.step() is False and second.scheduler is None

        lock_one.path.unlink()  # the lock is gone from under the leader
        assert first.step() is False
        assert first.scheduler is None and not scheduler.running
        assert second.step() is True and second.scheduler is not None and second.scheduler.running
        # the job store survived the handover: same fixed ids, nothing duplicated
        ids = [j.id for j in second.scheduler.get_jobs()]
        assert len(ids) == len(set(ids))
    finally:
        first.close()
        second.close()
        one.close()
        two.close()


@pytest.mark.postgres
def test_postgres_runner_whose_session_dies_stops_and_another_takes_over(postgres_url: str) -> None:
    one, two = make_services(postgres_url, clock=_now), make_services(postgres_url, clock=_now)
    lock_one, lock_two = leader_lock_for(one.db), leader_lock_for(two.db)
    assert isinstance(lock_one, PostgresLeaderLock) and isinstance(lock_two, PostgresLeaderLock)
    first, second = SchedulerRunner(one, lock=lock_one), SchedulerRunner(two, lock=lock_two)
    try:
        assert first.step() is True
        assert second.step() is False  # pg_try_advisory_lock never blocks
        scheduler = first.scheduler
        pid = lock_one.backend_pid()
        with one.db.engine.connect() as admin:  # the leader's connection dies (server restart, network)
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        assert first.step() is False
        assert scheduler is not None and not scheduler.running
        assert second.step() is True and second.is_leader
        assert first.step() is False  # and the old leader cannot come back while the new one holds it
    finally:
        first.close()
        second.close()
        lock_one.dispose()
        lock_two.dispose()
        one.close()
        two.close()


# ---- two real processes ------------------------------------------------------------------------


class Process:
    """A `modelbot scheduler` subprocess whose log goes to a file we can read while it runs."""

    def __init__(self, name: str, tmp_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "scheduler", "--log-level", "info"],
                                     cwd=tmp_path, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines())

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> float:
    """Poll an external process's observable state; returns when it became true (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


LEADER = "scheduler leader:"
LEADS = "starting the scheduler"
DIGEST = ": enqueued for "


@pytest.mark.postgres
def test_two_processes_one_leader_takeover_after_sigkill_and_no_double_post(
    postgres_url: str, tmp_path: Path
) -> None:
    setup = make_services(postgres_url, clock=_now)
    seed_churn(setup, Clock(), start=_now(), end=_now(), step=timedelta(hours=1))
    handlers.run_text(setup, handlers.Actor("U0ALICE", CHANNEL), "subscribe * daily 09:00 Europe/Berlin")
    # Message ts on the wall clock, as Slack stamps them: the leader is killed right after its first
    # post lands, so a post may be in Slack but not yet recorded, and the process that takes the row
    # over finds it in the channel's history (from the row's creation time on) instead of posting again.
    with SlackFake(ts_clock=time.time) as slack:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MODELBOT_", "SLACK_"))},
            "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
            "MODELBOT_DATABASE_URL": normalise_url(postgres_url),
            "SLACK_BOT_TOKEN": slack.bot_token, "MODELBOT_SLACK_API_URL": slack.api_url,
            DIGEST_TEST_INTERVAL_ENV: "2", "MODELBOT_SCHEDULER_LEADER_INTERVAL_S": "1",
            "MODELBOT_OUTBOX_POLL_SECONDS": "0.2", "MODELBOT_OUTBOX_POST_INTERVAL": "0",
            "MODELBOT_OUTBOX_HTTP_TIMEOUT": "2", "MODELBOT_OUTBOX_LEASE_SECONDS": "5",
        }
        began = time.monotonic()
        procs = [Process("a", tmp_path, env), Process("b", tmp_path, env)]  # started together: they race
        try:
            wait_until(lambda: any(p.saw(LEADS) for p in procs), 30, "one process to lead")
            leader = next(p for p in procs if p.saw(LEADS))
            other = next(p for p in procs if p is not leader)
            wait_until(lambda: other.saw("competes for the PostgreSQL advisory lock"), 20, "the other process to run")
            wait_until(lambda: leader.count(DIGEST) >= 2 and len(slack.messages(CHANNEL)) >= 1, 20,
                       "the leader to post digests")
            assert other.count(LEADER) == 0 and other.count(DIGEST) == 0, "only the leader may schedule digests"

            leader.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            leader.proc.wait(10)
            led = wait_until(lambda: other.saw(LEADS), TAKEOVER_LIMIT_S, "the other process to take over")
            takeover = led - killed
            print(f"\ntakeover after SIGKILL: {takeover:.2f} s (killed {killed - began:.1f} s after the start)")
            assert takeover < TAKEOVER_LIMIT_S
            wait_until(lambda: other.count(DIGEST) >= 2, 20, "the new leader to post digests")
        finally:
            for p in procs:
                p.stop()
            logs = "\n".join(f"[{p.name}] {line}" for p in procs for line in p.lines())

        rows = [r for r in outbox_rows(setup) if r.template == "digest"]
        keys = [r.message_key for r in rows]
        assert len(keys) == len(set(keys)), f"a period was enqueued twice: {keys}\n{logs}"
        assert len(rows) >= 4
        by_id = {r.id: r.message_key for r in rows}
        posted = [m for m in slack.messages(CHANNEL) if m.thread_ts is None]
        posted_keys = [by_id[(m.metadata or {})["event_payload"]["outbox_id"]] for m in posted]
        assert len(posted_keys) == len(set(posted_keys)), f"a digest was posted twice: {posted_keys}\n{logs}"
        assert "Traceback" not in logs, logs
    setup.close()
