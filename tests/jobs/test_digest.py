"""Acceptance 3 (digests on schedule, in the subscriber's zone, chart in the thread, restart-safe) and
the digest side of acceptance 5 ("no data since …").

Time is controlled: the services read a `Clock`, and where APScheduler itself must decide that a
job is due, time-machine moves the wall clock (it patches `datetime.now`, which APScheduler reads;
its waits run on the unpatched monotonic clock, so a job one second away fires one real second
later). Tests wait on APScheduler's own job-executed event, never on sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from bot import handlers
from bot.domain.monitoring.digest import already_sent
from bot.domain.schedule import Schedule, latest_fire, next_fire, period_for
from bot.domain.subscriptions import Subscriptions
from bot.jobs import jobs
from bot.jobs.scheduler import build_scheduler, catch_up, stop_scheduler, sync_jobs
from bot.services import Services
from storage.models import SourceStatus, Subscription
from tests.jobs.support import (
    CHANNEL,
    Clock,
    deliver_all,
    make_services,
    outbox_rows,
    policy_with_sources,
    seed_churn,
)
from tests.slack_fake import SlackFake

BERLIN_0900_ON_DST_DAY = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST, the first summer-time morning
SUBSCRIBED_AT = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(database_url: str, clock: Clock) -> Iterator[Services]:
    services = make_services(database_url, clock)
    yield services
    jobs.unbind()
    services.close()


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


def subscribe(services: Services, clock: Clock, text: str = "subscribe churn daily 09:00 Europe/Berlin") -> int:
    clock.set(SUBSCRIBED_AT)
    handlers.run_text(services, handlers.Actor("U0ALICE", CHANNEL), text)
    clock.set(None)
    return Subscriptions(services.registry, services.policy).list_all()[-1].id


def job_ran(scheduler: BackgroundScheduler, job_id: str) -> tuple[threading.Event, list[JobExecutionEvent]]:
    done, seen = threading.Event(), []

    def listener(event: JobExecutionEvent) -> None:
        if event.job_id == job_id:
            seen.append(event)
            done.set()

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return done, seen


def snapshot(scheduler: BackgroundScheduler) -> dict[str, tuple[datetime | None, str, tuple[object, ...]]]:
    return {job.id: (job.next_run_time, repr(job.trigger), tuple(job.args)) for job in scheduler.get_jobs()}


# ---- the schedule itself ---------------------------------------------------------------------


def test_daily_0900_berlin_fires_at_the_right_utc_instant_across_both_dst_changes() -> None:
    trigger = Schedule("daily", "09:00", 0, "Europe/Berlin").trigger()
    # winter (CET, UTC+1) → summer (CEST, UTC+2) on 29 March 2026
    assert next_fire(trigger, datetime(2026, 3, 28, 8, 0, 1, tzinfo=UTC)) == BERLIN_0900_ON_DST_DAY
    assert next_fire(trigger, datetime(2026, 3, 27, 12, 0, tzinfo=UTC)) == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    # summer → winter on 25 October 2026
    assert next_fire(trigger, datetime(2026, 10, 24, 7, 0, 1, tzinfo=UTC)) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    # the period a digest reports on is the real (23-hour) day between two 09:00s
    period = period_for(trigger, BERLIN_0900_ON_DST_DAY, Schedule("daily").lookback)
    assert period.start == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert period.end - period.start == timedelta(hours=23)
    assert period.start - period.previous_start == timedelta(hours=24)
    # a job running a little late still reports the period it was scheduled for
    assert latest_fire(trigger, BERLIN_0900_ON_DST_DAY + timedelta(minutes=4), timedelta(days=3)) \
        == BERLIN_0900_ON_DST_DAY


def test_weekly_and_hourly_schedules() -> None:
    weekly = Schedule("weekly", "16:30", 4, "America/New_York").trigger()  # Fridays
    assert next_fire(weekly, datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2026, 3, 6, 21, 30, tzinfo=UTC)  # EST
    assert next_fire(weekly, datetime(2026, 3, 9, tzinfo=UTC)) == datetime(2026, 3, 13, 20, 30, tzinfo=UTC)  # EDT
    hourly = Schedule("hourly", "00:15", 0, "Asia/Kolkata").trigger()  # a half-hour zone: :15 local
    assert next_fire(hourly, datetime(2026, 3, 1, 10, 0, tzinfo=UTC)) == datetime(2026, 3, 1, 10, 45, tzinfo=UTC)


# ---- acceptance 3 ------------------------------------------------------------------------------


def test_digest_appears_at_the_scheduled_minute_with_its_chart_in_the_thread(
    services: Services, clock: Clock, slack: SlackFake
) -> None:
    seed_churn(services, clock, start=datetime(2026, 3, 27, 7, 0, tzinfo=UTC), end=BERLIN_0900_ON_DST_DAY,
               step=timedelta(hours=1), promote_v2_at=datetime(2026, 3, 28, 15, 0, tzinfo=UTC))
    sub_id = subscribe(services, clock)
    scheduler = build_scheduler(services)
    jobs.bind(services, scheduler)
    done, seen = job_ran(scheduler, f"digest:{sub_id}")
    # one second before 09:00 in Berlin; the wall clock then ticks on from there
    with time_machine.travel(BERLIN_0900_ON_DST_DAY - timedelta(seconds=1), tick=True):
        scheduler.start()
        try:
            sync_jobs(scheduler, services)
            assert scheduler.get_job(f"digest:{sub_id}").next_run_time == BERLIN_0900_ON_DST_DAY
            assert done.wait(15), "the digest job did not run at its scheduled time"
        finally:
            stop_scheduler(scheduler, wait=True)
    assert seen[0].code == EVENT_JOB_EXECUTED and seen[0].retval is True
    assert seen[0].scheduled_run_time == BERLIN_0900_ON_DST_DAY

    clock.set(BERLIN_0900_ON_DST_DAY + timedelta(seconds=5))
    deliver_all(services, slack, clock)
    digests = [m for m in slack.messages(CHANNEL) if m.thread_ts is None]
    assert len(digests) == 1
    digest = digests[0]
    assert digest.text.startswith("Daily digest: churn (28 Mar 09:00 – 29 Mar 09:00 Europe/Berlin)")
    body = "\n".join(str(b) for b in digest.blocks or [])
    assert "auc" in body and "latency_p95_ms" in body
    assert "uptime 100.00%" in body and "drift: 0 of 1 features" in body
    assert "↪ promoted v1 → v2 · 28 Mar 16:00" in body  # the version change, in Berlin time
    # the chart: through the three-step upload, into the digest's thread
    for method in ("files.getUploadURLExternal", "upload_url", "files.completeUploadExternal"):
        assert len(slack.calls_to(method)) == 1, method
    (chart,) = slack.files()
    assert chart.completed and chart.thread_ts == digest.ts and chart.channels == [CHANNEL]
    assert chart.content is not None and chart.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert chart.filename == f"modelbot-digest-{sub_id}-20260329-0700.png"
    assert chart.title == "churn — daily digest"
    assert [m.files[0]["id"] for m in slack.thread(CHANNEL, digest.ts)] == [chart.id]


def test_restart_keeps_the_schedule_and_runs_the_digest_missed_while_down(
    services: Services, clock: Clock, slack: SlackFake
) -> None:
    seed_churn(services, clock, start=datetime(2026, 3, 27, 7, 0, tzinfo=UTC), end=BERLIN_0900_ON_DST_DAY,
               step=timedelta(hours=2))
    sub_id = subscribe(services, clock)
    with time_machine.travel(SUBSCRIBED_AT, tick=False):
        first = build_scheduler(services)
        first.start(paused=True)
        sync_jobs(first, services)
        before = snapshot(first)
        stop_scheduler(first)
        assert before[f"digest:{sub_id}"][0] == BERLIN_0900_ON_DST_DAY
        assert {"expire-requests", "compact-samples", "sync-subscriptions", f"digest:{sub_id}"} <= before.keys()

        # a new process on the same job store: the same jobs, ids and next run times; a sync changes nothing
        second = build_scheduler(services)
        second.start(paused=True)
        assert snapshot(second) == before
        result = sync_jobs(second, services)
        assert (result.added, result.replaced, result.removed) == ([], [], [])
        assert snapshot(second) == before
        stop_scheduler(second)

    # the process was down at 09:00 and comes back at 09:02: the stored job is overdue and runs once
    third = build_scheduler(services)
    jobs.bind(services, third)
    done, seen = job_ran(third, f"digest:{sub_id}")
    with time_machine.travel(BERLIN_0900_ON_DST_DAY + timedelta(minutes=2), tick=True):
        third.start()
        try:
            sync_jobs(third, services)
            assert done.wait(15), "the missed digest did not run after the restart"
            assert third.get_job(f"digest:{sub_id}").next_run_time == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
        finally:
            stop_scheduler(third, wait=True)
    assert seen[0].retval is True
    # running the same scheduled time again (another restart, a takeover) writes nothing
    assert jobs.send_digest(sub_id, BERLIN_0900_ON_DST_DAY.isoformat()) is False
    posts = [r for r in outbox_rows(services) if r.kind == "post" and r.template == "digest"]
    assert [r.message_key for r in posts] == [f"digest:{sub_id}:2026-03-29T07:00:00Z"]
    clock.set(BERLIN_0900_ON_DST_DAY + timedelta(minutes=3))
    deliver_all(services, slack, clock)
    assert len([m for m in slack.messages(CHANNEL) if m.thread_ts is None]) == 1


def test_two_runs_racing_for_the_same_period_write_one_digest(services: Services, clock: Clock) -> None:
    seed_churn(services, clock, start=datetime(2026, 3, 28, 0, 0, tzinfo=UTC), end=BERLIN_0900_ON_DST_DAY,
               step=timedelta(hours=3))
    sub_id = subscribe(services, clock)
    jobs.bind(services)
    clock.set(BERLIN_0900_ON_DST_DAY + timedelta(seconds=1))
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def run() -> None:
        barrier.wait()
        results.append(jobs.send_digest(sub_id, BERLIN_0900_ON_DST_DAY.isoformat()))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [False, False, False, True]
    rows = [r for r in outbox_rows(services) if r.topic == f"digest:{sub_id}"]
    assert [(r.kind, r.message_key) for r in rows] == [
        ("post", f"digest:{sub_id}:2026-03-29T07:00:00Z"), ("upload", f"digest:{sub_id}:2026-03-29T07:00:00Z")]
    with services.db.read() as session:
        sub = session.get(Subscription, sub_id)
        assert sub is not None and sub.last_sent_at is not None
    # the next period is a new digest
    clock.set(BERLIN_0900_ON_DST_DAY + timedelta(days=1, seconds=1))
    assert jobs.send_digest(sub_id) is True


def test_a_job_for_a_time_the_subscription_no_longer_has_writes_nothing(services: Services, clock: Clock) -> None:
    seed_churn(services, clock, start=SUBSCRIBED_AT, end=SUBSCRIBED_AT, step=timedelta(hours=1))
    sub_id = subscribe(services, clock)
    jobs.bind(services)
    clock.set(BERLIN_0900_ON_DST_DAY + timedelta(hours=3))  # 12:00 in Berlin: no 09:00 digest is due now
    assert jobs.send_digest(sub_id) is False
    assert outbox_rows(services) == []


def test_catch_up_queues_a_digest_the_previous_leader_never_committed(services: Services, clock: Clock) -> None:
    seed_churn(services, clock, start=SUBSCRIBED_AT, end=SUBSCRIBED_AT, step=timedelta(hours=1))
    sub_id = subscribe(services, clock)
    scheduler = build_scheduler(services)
    with time_machine.travel(BERLIN_0900_ON_DST_DAY + timedelta(minutes=1), tick=False):
        scheduler.start(paused=True)
        try:
            sync_jobs(scheduler, services)
            # the old leader had moved the job on to tomorrow, then died before the digest committed
            scheduler.modify_job(f"digest:{sub_id}", next_run_time=BERLIN_0900_ON_DST_DAY + timedelta(days=1))
            now = BERLIN_0900_ON_DST_DAY + timedelta(minutes=1)
            assert catch_up(scheduler, services, now) == [sub_id]
            once = scheduler.get_job(f"once:digest:{sub_id}")
            assert once is not None and once.args == (sub_id, BERLIN_0900_ON_DST_DAY.isoformat())
            # a sync leaves the one-shot run alone
            sync_jobs(scheduler, services)
            assert scheduler.get_job(f"once:digest:{sub_id}") is not None
        finally:
            stop_scheduler(scheduler)
    jobs.bind(services)
    clock.set(BERLIN_0900_ON_DST_DAY + timedelta(minutes=1))
    assert jobs.send_digest(sub_id, BERLIN_0900_ON_DST_DAY.isoformat()) is True
    trigger = Schedule("daily", "09:00", 0, "Europe/Berlin").trigger()
    period = period_for(trigger, BERLIN_0900_ON_DST_DAY, timedelta(days=3))
    assert already_sent(services.registry, sub_id, period)


def test_subscription_changes_replace_or_remove_only_their_job(services: Services, clock: Clock) -> None:
    seed_churn(services, clock, start=SUBSCRIBED_AT, end=SUBSCRIBED_AT, step=timedelta(hours=1))
    sub_id = subscribe(services, clock)
    scheduler = build_scheduler(services)
    with time_machine.travel(SUBSCRIBED_AT, tick=False):
        scheduler.start(paused=True)
        try:
            sync_jobs(scheduler, services)
            subscribe(services, clock, "subscribe churn daily 10:30 Europe/Berlin")  # same digest, new time
            assert len(Subscriptions(services.registry, services.policy).list_all()) == 1
            result = sync_jobs(scheduler, services)
            assert result.replaced == [f"digest:{sub_id}"] and not result.added and not result.removed
            assert scheduler.get_job(f"digest:{sub_id}").next_run_time == datetime(2026, 3, 29, 8, 30, tzinfo=UTC)
            handlers.run_text(services, handlers.Actor("U0ALICE", CHANNEL), "unsubscribe churn")
            assert sync_jobs(scheduler, services).removed == [f"digest:{sub_id}"]
        finally:
            stop_scheduler(scheduler)


# ---- acceptance 5, the digest side --------------------------------------------------------------


def test_failing_source_and_empty_window_say_no_data_since(
    database_url: str, clock: Clock, slack: SlackFake, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services(database_url, clock, policy_with_sources("prometheus", "health"))
    try:
        _failing_source_and_empty_window(services, clock, slack, caplog)
    finally:
        services.close()


def _failing_source_and_empty_window(
    services: Services, clock: Clock, slack: SlackFake, caplog: pytest.LogCaptureFixture
) -> None:
    # samples stop at 06:00 UTC on the 28th, before the window (08:00 UTC on the 28th) starts
    seed_churn(services, clock, start=datetime(2026, 3, 27, 7, 0, tzinfo=UTC),
               end=datetime(2026, 3, 28, 6, 0, 1, tzinfo=UTC), step=timedelta(hours=1))
    with services.db.write() as session:
        session.add(SourceStatus(name="prometheus", last_attempt_at=datetime(2026, 3, 29, 6, 59, tzinfo=UTC),
                                 last_success_at=datetime(2026, 3, 28, 6, 0, tzinfo=UTC),
                                 last_error="GET http://127.0.0.1:9/api/v1/query: connection refused"))
        session.add(SourceStatus(name="health", last_attempt_at=datetime(2026, 3, 29, 6, 59, tzinfo=UTC),
                                 last_success_at=datetime(2026, 3, 29, 6, 59, tzinfo=UTC)))
    sub_id = subscribe(services, clock)
    jobs.bind(services)
    clock.set(BERLIN_0900_ON_DST_DAY)
    with caplog.at_level("INFO", logger="modelbot.jobs"):
        assert jobs.send_digest(sub_id) is True
    assert "sources without data: prometheus" in caplog.text
    deliver_all(services, slack, clock)
    (digest,) = slack.messages(CHANNEL)
    body = "\n".join(str(b) for b in digest.blocks or [])
    assert "no data since 28 Mar 07:00" in body  # the last sample (06:00 UTC) in Berlin time
    assert "*prometheus* no data since 28 Mar 07:00: GET http://127.0.0.1:9/api/v1/query: connection refused" in body
    assert "health" not in body  # a healthy source is not news
    assert "1 environment without data" in digest.text and "1 source with no data since" in digest.text
    assert slack.files() == []  # nothing to draw: no empty chart
