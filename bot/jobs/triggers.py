"""When a digest job fires and how late it may run: a subscription's schedule as APScheduler
triggers (or, in tests, a fixed interval: `every`, from MODELBOT_TEST_DIGEST_EVERY_S through
the settings)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.domain.schedule import Schedule

# Interval triggers start at a fixed instant so their definition (and fire times) are the
# same in every process and every sync; the default start ("now + interval") is not.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# Test-only: every digest fires every N seconds instead of its cron schedule, so a test with
# real processes sees several periods in seconds. Never set it in production.
DIGEST_TEST_INTERVAL_ENV = "MODELBOT_TEST_DIGEST_EVERY_S"


def digest_trigger(schedule: Schedule, every: int | None = None) -> BaseTrigger:
    """The subscription's cron schedule in its own zone (or the test-only interval)."""
    if every:
        return IntervalTrigger(seconds=every, start_date=EPOCH, timezone=zoneinfo.ZoneInfo("UTC"))
    return schedule.trigger()


def digest_lookback(schedule: Schedule, every: int | None = None) -> timedelta:
    return timedelta(seconds=3 * every + 1) if every else schedule.lookback


def digest_grace_s(schedule: Schedule, every: int | None = None) -> int:
    """How late a digest may still go out: late news beats none, but not past half a period."""
    if every:
        return 2 * every
    return 900 if schedule.frequency == "hourly" else 3600
