"""When a digest is due: a subscription's schedule as a trigger, and the periods it defines.

The same trigger object drives APScheduler (`bot/jobs`) and answers "when is the next
digest?" in `/model subscriptions`, so what we show and when we send cannot disagree.

A digest's *period* is the span between two fire times of its trigger: the window it reports
on ends at the fire time it is sent for and starts at the fire time before. Deriving windows
from the trigger (rather than "24 hours") keeps them right across DST changes, where a day
lasts 23 or 25 hours. A fire time also names the period, which is what makes sending a digest
idempotent: a re-run for the same fire time (restart, takeover, coalesced misfire) is the
same period, and the domain refuses to send it twice.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from bot.domain.errors import InvalidInput
from bot.domain.names import preview

FREQUENCIES = ("hourly", "daily", "weekly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TIME = "09:00"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
# How far back to look for the fire times before a given one: three periods plus a DST hour.
_LOOKBACK = {"hourly": timedelta(hours=3, minutes=5), "daily": timedelta(days=3, hours=2),
             "weekly": timedelta(days=22)}
_WEEKDAY_NAMES = {name: i for i, day in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")) for name in (day[:3], day)}
TZ_EXAMPLE = "an IANA time zone name such as Europe/Berlin, America/New_York or UTC"


@lru_cache(maxsize=1)
def _zones_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def parse_timezone(raw: str) -> str:
    """An IANA zone, spelled the canonical way (`europe/berlin` → `Europe/Berlin`).

    `available_timezones()` is the list, not `ZoneInfo(raw)`, which also accepts legacy
    aliases and POSIX strings people do not mean. It needs the tz database: the system's
    /usr/share/zoneinfo or the `tzdata` package (a dependency of pandas).
    """
    zones = _zones_by_lower()
    if not zones:
        raise InvalidInput("This server has no time zone database: install the tzdata package.")
    if raw.upper() in ("UTC", "Z", "GMT"):
        return "UTC"
    name = zones.get(raw.lower())
    if name is None:
        raise InvalidInput(f"'{preview(raw)}' is not a time zone: use {TZ_EXAMPLE}.")
    return name


def parse_time(raw: str) -> str:
    """HH:MM from 00:00 to 23:59, normalised to two digits each."""
    match = _TIME.match(raw)
    if not match:
        raise InvalidInput(f"'{preview(raw)}' is not a time of day: write HH:MM from 00:00 to 23:59, like 09:00.")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_weekday(raw: str) -> int:
    """mon … sun (0 = Monday), or the day's full English name."""
    index = _WEEKDAY_NAMES.get(raw.lower())
    if index is None:
        raise InvalidInput(f"'{preview(raw)}' is not a weekday: use mon, tue, wed, thu, fri, sat or sun.")
    return index


def is_weekday(raw: str) -> bool:
    return raw.lower() in _WEEKDAY_NAMES


@dataclass(frozen=True)
class Schedule:
    """How often and when, in the subscriber's own zone (a 09:00 digest stays at 09:00 in summer)."""

    frequency: str
    at_time: str = DEFAULT_TIME
    weekday: int = 0
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise InvalidInput(f"'{preview(self.frequency)}' is not a frequency: use hourly, daily or weekly.")
        parse_time(self.at_time)
        if not 0 <= self.weekday <= 6:
            raise InvalidInput("The weekday must be mon … sun.")
        parse_timezone(self.timezone)

    @property
    def hour(self) -> int:
        return int(self.at_time[:2])

    @property
    def minute(self) -> int:
        return int(self.at_time[3:])

    def cron_fields(self) -> dict[str, str]:
        """CronTrigger fields; hourly digests use only the minute of HH:MM."""
        fields = {"second": "0", "minute": str(self.minute)}
        if self.frequency in ("daily", "weekly"):
            fields["hour"] = str(self.hour)
        if self.frequency == "weekly":
            fields["day_of_week"] = WEEKDAYS[self.weekday]
        return fields

    def trigger(self) -> CronTrigger:
        return CronTrigger(timezone=zoneinfo.ZoneInfo(self.timezone), **self.cron_fields())

    def describe(self) -> str:
        if self.frequency == "hourly":
            return f"hourly at :{self.minute:02d}"
        if self.frequency == "daily":
            return f"daily at {self.at_time} {self.timezone}"
        return f"weekly on {WEEKDAYS[self.weekday].capitalize()} at {self.at_time} {self.timezone}"

    @property
    def lookback(self) -> timedelta:
        return _LOOKBACK[self.frequency]


@dataclass(frozen=True)
class Period:
    """The window a digest reports on, [start, end), and the one before it for ▲/▼."""

    end: datetime  # = the fire time the digest is sent for; names the period
    start: datetime
    previous_start: datetime

    @property
    def key(self) -> str:
        """A stable, readable name for the period (UTC, to the second)."""
        return self.end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> Iterator[datetime]:
    """Fire times of `trigger` in [start, end], oldest first, as aware UTC datetimes."""
    previous: datetime | None = None
    moment = start
    while True:
        nxt = trigger.get_next_fire_time(previous, moment)
        if nxt is None or nxt > end:
            return
        yield nxt.astimezone(UTC)
        previous, moment = nxt, nxt + timedelta(seconds=1)


def latest_fire(trigger: BaseTrigger, now: datetime, lookback: timedelta) -> datetime | None:
    """The newest fire time at or before `now`: the period a job running now is for.

    APScheduler does not tell a job which scheduled time it runs for; it runs at or after
    that time, and coalescing collapses missed runs into one, so "the newest fire time not
    after now" is exactly the period to report (misfires older than that are skipped on
    purpose: nobody wants yesterday's digest after today's).
    """
    times = list(fire_times(trigger, now - lookback, now))
    return times[-1] if times else None


def period_for(trigger: BaseTrigger, fire: datetime, lookback: timedelta) -> Period:
    """The window ending at `fire`: it starts at the fire time before, and so on once more."""
    earlier = [t for t in fire_times(trigger, fire - lookback, fire) if t < fire]
    if len(earlier) >= 2:
        return Period(end=fire, start=earlier[-1], previous_start=earlier[-2])
    # Not enough history inside the lookback (an irregular test trigger): equal-length windows.
    length = fire - earlier[-1] if earlier else lookback / 3
    return Period(end=fire, start=fire - length, previous_start=fire - 2 * length)


def next_fire(trigger: BaseTrigger, after: datetime) -> datetime | None:
    nxt = trigger.get_next_fire_time(None, after)
    return None if nxt is None else nxt.astimezone(UTC)
