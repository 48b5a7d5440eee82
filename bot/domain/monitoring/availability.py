"""Availability from health probes: uptime, incidents, MTTR and MTBF. Pure functions.

A probe says "up" or "down" at an instant. Between two probes we assume the state of
the earlier one held (a step function; the standard reading of synthetic checks), so:

- **observed time** runs from the first probe in the window to the window's end (the
  last probe's state holds until then — no later probe contradicts it);
- **uptime** = time spent up / observed time (time-weighted, so a burst of probes during
  an outage does not weigh more than the quiet hours around it);
- an **incident** is a maximal run of consecutive "down" probes: it starts at the first
  down probe and is resolved by the next up probe (its end); one still down at the
  window's end is *ongoing* and ends there for the sums;
- **MTTR** (mean time to recovery) = total duration of resolved incidents / their count;
- **MTBF** (mean time between failures) = total up time / number of incidents — the
  usual "operational time per failure" definition, counting ongoing incidents too.

MTTR is None without a resolved incident and MTBF is None without any incident: both
are undefined then, not zero (zero would read as "instant" and "constantly failing").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.entities import as_utc, iso


@dataclass(frozen=True)
class Probe:
    at: datetime
    up: bool


@dataclass(frozen=True)
class Incident:
    start: datetime
    end: datetime | None  # None: still down at the end of the window

    def duration(self, until: datetime) -> timedelta:
        return (self.end or until) - self.start

    def to_dict(self, until: datetime) -> dict[str, Any]:
        return {"start": iso(self.start), "end": iso(self.end), "ongoing": self.end is None,
                "seconds": self.duration(until).total_seconds()}


@dataclass(frozen=True)
class AvailabilityReport:
    start: datetime
    end: datetime
    probes: int
    down_probes: int
    observed: timedelta
    up_time: timedelta
    down_time: timedelta
    incidents: tuple[Incident, ...]
    mttr: timedelta | None
    mtbf: timedelta | None
    last_up: bool | None

    @property
    def uptime(self) -> float | None:
        """Share of observed time spent up (0–1); None when nothing was observed."""
        seconds = self.observed.total_seconds()
        return None if seconds <= 0 else self.up_time.total_seconds() / seconds

    @property
    def ongoing(self) -> bool:
        return bool(self.incidents) and self.incidents[-1].end is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "uptime": self.uptime,
            "probes": self.probes,
            "down_probes": self.down_probes,
            "observed_seconds": self.observed.total_seconds(),
            "down_seconds": self.down_time.total_seconds(),
            "incidents": len(self.incidents),
            "ongoing": self.ongoing,
            "up_now": self.last_up,
            "mttr_seconds": None if self.mttr is None else self.mttr.total_seconds(),
            "mtbf_seconds": None if self.mtbf is None else self.mtbf.total_seconds(),
            "incident_list": [i.to_dict(self.end) for i in self.incidents],
        }


def availability(probes: Iterable[Probe], start: datetime, end: datetime) -> AvailabilityReport:
    """The report for probes in [start, end]; probes outside are ignored. A probe stamped exactly
    `end` (taken "now") holds for no time but still says whether the target is up now."""
    start, end = as_utc(start), as_utc(end)
    inside = sorted((p for p in probes if start <= as_utc(p.at) <= end), key=lambda p: p.at)
    if not inside:
        return AvailabilityReport(start, end, 0, 0, timedelta(0), timedelta(0), timedelta(0), (), None, None, None)
    up_time = down_time = timedelta(0)
    for probe, following in zip(inside, [*inside[1:], None], strict=True):
        held = (as_utc(following.at) if following else end) - as_utc(probe.at)
        if probe.up:
            up_time += held
        else:
            down_time += held
    found = incidents(inside)
    resolved = [i for i in found if i.end is not None]
    mttr = sum((i.duration(end) for i in resolved), timedelta(0)) / len(resolved) if resolved else None
    mtbf = up_time / len(found) if found else None
    return AvailabilityReport(
        start=start, end=end, probes=len(inside), down_probes=sum(not p.up for p in inside),
        observed=end - as_utc(inside[0].at), up_time=up_time, down_time=down_time, incidents=tuple(found),
        mttr=mttr, mtbf=mtbf, last_up=inside[-1].up,
    )


def incidents(probes: Sequence[Probe]) -> list[Incident]:
    """Maximal runs of down probes (input sorted by time)."""
    found: list[Incident] = []
    began: datetime | None = None
    for probe in probes:
        if not probe.up and began is None:
            began = as_utc(probe.at)
        elif probe.up and began is not None:
            found.append(Incident(began, as_utc(probe.at)))
            began = None
    if began is not None:
        found.append(Incident(began, None))
    return found


def from_samples(points: Iterable[tuple[datetime, float]]) -> list[Probe]:
    """`up` samples: 1 = up, 0 = down. Compacted history comes back as hourly means; such an
    hour counts as up when at least half of its probes were (majority, not "any failure")."""
    return [Probe(at, value >= 0.5) for at, value in points]
