"""Health probes against a real local health server that flips between up and down, and the
availability maths (uptime, incidents, MTTR, MTBF) against hand-computed values."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from bot.config.sources import ProbeSource
from bot.domain.monitoring.availability import Probe, availability, from_samples
from bot.domain.monitoring.samples import Samples
from bot.services import Services
from bot.sources.http import HttpOptions
from bot.sources.pull import pull_source
from tests.sources.conftest import T0, Clock, LocalServer

M = timedelta(minutes=1)


def at(minute: float) -> datetime:
    return T0 + minute * M


def probes(*states: tuple[float, bool]) -> list[Probe]:
    return [Probe(at(minute), up) for minute, up in states]


def test_uptime_incidents_mttr_mtbf_by_hand() -> None:
    # up 0–20, down 20–40, up 40–60, down 60–70, up 70–90 (window end)
    seen = probes((0, True), (10, True), (20, False), (30, False), (40, True), (50, True), (60, False), (70, True))
    report = availability(seen, at(0), at(90))
    assert report.up_time == 60 * M and report.down_time == 30 * M and report.observed == 90 * M
    assert report.uptime == pytest.approx(2 / 3, abs=1e-12)
    assert [(i.start, i.end) for i in report.incidents] == [(at(20), at(40)), (at(60), at(70))]
    assert report.mttr == 15 * M  # (20 + 10) / 2
    assert report.mtbf == 30 * M  # 60 minutes up / 2 failures
    assert not report.ongoing and report.last_up is True and report.down_probes == 3


def test_an_ongoing_incident_counts_for_mtbf_not_mttr() -> None:
    seen = probes((0, True), (20, False), (40, True), (80, False))
    report = availability(seen, at(0), at(90))
    assert report.up_time == 60 * M and report.down_time == 30 * M
    assert report.ongoing and report.incidents[-1].end is None
    assert report.mttr == 20 * M  # only the resolved one
    assert report.mtbf == 30 * M  # 60 up / 2 failures (the ongoing one included)
    assert report.to_dict()["incident_list"][-1] == {"start": "2026-11-02T10:20:00Z", "end": None,
                                                      "ongoing": True, "seconds": 600.0}


def test_no_failures_means_undefined_mttr_and_mtbf() -> None:
    report = availability(probes((0, True), (30, True)), at(0), at(60))
    assert report.uptime == 1.0 and report.incidents == () and report.mttr is None and report.mtbf is None
    empty = availability([], at(0), at(60))
    assert empty.uptime is None and empty.probes == 0


def test_probes_outside_the_window_are_ignored_and_order_does_not_matter() -> None:
    seen = probes((50, True), (-5, False), (10, False), (0, True), (70, False))
    report = availability(seen, at(0), at(60))
    assert report.probes == 3 and report.up_time == 10 * M + 10 * M and report.down_time == 40 * M


def test_rollup_means_count_by_majority() -> None:
    assert [p.up for p in from_samples([(at(0), 1.0), (at(1), 0.0), (at(2), 0.75), (at(3), 0.25)])] == [
        True, False, True, False]


def _source(url: str, timeout_s: float = 2.0) -> ProbeSource:
    return ProbeSource(name="churn-health", type="probe", interval=M, http=HttpOptions(timeout_s=timeout_s),
                       model="churn", targets=(("production", url),))


def test_a_flapping_health_endpoint(services: Services, http_server: LocalServer, clock: Clock,
                                    caplog: pytest.LogCaptureFixture) -> None:
    healthy = {"up": True}
    http_server.routes["/healthz"] = lambda _h: (200, "text/plain", b"ok") if healthy["up"] else (
        503, "text/plain", b"draining")
    source = _source(f"{http_server.url}/healthz")
    # minute:   0   1   2     3     4   5
    # state:    up  up  down  down  up  up   → one incident 2–4
    for minute, up in enumerate([True, True, False, False, True, True]):
        clock.now = at(minute)
        healthy["up"] = up
        with caplog.at_level(logging.WARNING, logger="modelbot.sources"):
            result = pull_source(services, source)
        assert result.ok and result.recorded == 2  # up + health_latency_ms (a 503 still answered)
    samples = Samples(services.registry)
    ups = samples.window("churn", "production", "up", at(0), at(6))
    assert [p.value for p in ups] == [1, 1, 0, 0, 1, 1] and {p.version for p in ups} == {2}
    assert len(samples.window("churn", "production", "health_latency_ms", at(0), at(6))) == 6
    report = availability(from_samples((p.at, p.value) for p in ups), at(0), at(6))
    assert report.uptime == pytest.approx(4 / 6) and report.mttr == 2 * M and report.mtbf == 4 * M  # 4 min up / 1 failure
    down_lines = [r.getMessage() for r in caplog.records if "is down" in r.getMessage()]
    assert down_lines == [f"source churn-health (probe): churn production is down: health endpoint at "
                          f"{http_server.url}/healthz answered 503."] * 2


def test_a_hung_or_dead_health_endpoint_is_down(services: Services, http_server: LocalServer) -> None:
    http_server.stall("/healthz")
    result = pull_source(services, _source(f"{http_server.url}/healthz", timeout_s=0.3))
    assert result.ok and [(s.metric, s.value) for s in result.samples] == [("up", 0.0)]
    assert result.notes == (f"churn production is down: health endpoint at {http_server.url}/healthz did not "
                            "answer within 0.3 s.",)
    dead = pull_source(services, _source("http://127.0.0.1:9/healthz"))
    assert [(s.metric, s.value) for s in dead.samples] == [("up", 0.0)]
    assert "is unreachable (Connection refused)" in dead.notes[0]
