"""Acceptance 2: a real Prometheus server scrapes a tiny exporter; modelbot pulls a latency
quantile and an error rate for `churn` and they land as samples.

The exporter's numbers grow by a fixed amount on every scrape, so every `rate()` over
them has the same shape whatever the timing: p95 and the error rate are exact, known
values (computed by hand below), and the test needs no sleeps to line anything up. The
only waiting is bounded polling for the external server to be ready and to have data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from bot.config.sources import PrometheusSource, PromQuery
from bot.domain.monitoring.samples import Samples
from bot.services import Services
from bot.sources.http import HttpOptions
from bot.sources.pull import pull_source
from tests.sources.conftest import Clock

PROMETHEUS = shutil.which("prometheus")
NO_PROMETHEUS = ("the prometheus binary is not installed (Debian: apt-get install -y prometheus; "
                 ".ci/run installs it)")
READY_WITHIN_S = 60.0

# Per scrape: 100 requests, 2 of them errors; cumulative bucket counts of their latency.
PER_SCRAPE = {"0.05": 50, "0.1": 90, "0.25": 98, "0.5": 100, "+Inf": 100}
# p95: rank 95 of 100 lies in (0.1, 0.25] holding 8 requests above the 90 below it:
# 0.1 + (0.25 - 0.1) * (95 - 90) / 8 = 0.19375 s
EXPECTED_P95_MS = (0.1 + 0.15 * 5 / 8) * 1000
EXPECTED_ERROR_RATE = 2 / 100
LABELS = 'model="{model}",env="{environment}"'
LATENCY_QUERY = (f"histogram_quantile(0.95, sum by (le, version) (rate(request_latency_seconds_bucket{{{LABELS}}}"
                 "[1m]))) * 1000")
ERROR_QUERY = (f"sum(rate(request_errors_total{{{LABELS}}}[1m])) / sum(rate(requests_total{{{LABELS}}}[1m]))")


class ScrapeDriven:
    """A collector whose counters advance by `PER_SCRAPE` on each scrape."""

    def __init__(self) -> None:
        self.scrapes = 0
        self.lock = threading.Lock()

    def collect(self) -> Iterator[object]:
        with self.lock:
            self.scrapes += 1
            k = self.scrapes
        labels = ["model", "env", "version"]
        values = ["churn", "production", "2"]
        histogram = HistogramMetricFamily("request_latency_seconds", "Request latency.", labels=labels)
        histogram.add_metric(values, buckets=[(le, float(n * k)) for le, n in PER_SCRAPE.items()],
                             sum_value=10.0 * k)
        yield histogram
        total = CounterMetricFamily("requests", "Requests served.", labels=labels)
        total.add_metric(values, 100.0 * k)
        yield total
        errors = CounterMetricFamily("request_errors", "Requests that failed.", labels=labels)
        errors.add_metric(values, 2.0 * k)
        yield errors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningPrometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    registry = CollectorRegistry()
    registry.register(ScrapeDriven())  # type: ignore[arg-type]
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrometheus]:
    """One server for the module (started once: it takes seconds to become ready)."""
    if PROMETHEUS is None:
        if os.environ.get("MODELBOT_REQUIRE_PROMETHEUS"):  # CI installs it: a skip there would hide a gap
            pytest.fail("MODELBOT_REQUIRE_PROMETHEUS is set but the prometheus binary is missing")
        pytest.skip(NO_PROMETHEUS)
    tmp_path = tmp_path_factory.mktemp("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: exporter\n    scrape_interval: 1s\n"
        f"    static_configs:\n      - targets: ['{exporter}']\n"
    )
    port = _free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    running = RunningPrometheus(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(p: RunningPrometheus) -> None:
    """Bounded polling of the external server's readiness endpoint."""
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if p.process.poll() is not None:
            pytest.fail(f"prometheus exited with {p.process.returncode}: {p.log.read_text()[-2000:]}")
        try:
            if requests.get(f"{p.url}/-/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"prometheus was not ready within {READY_WITHIN_S:g} s: {p.log.read_text()[-2000:]}")


def _wait_for_data(p: RunningPrometheus, query: str) -> None:
    """Bounded polling until the query has a number (rate() needs two scrapes in its range)."""
    promql = query.replace("{model}", "churn").replace("{environment}", "production")
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        body = requests.get(f"{p.url}/api/v1/query", params={"query": promql}, timeout=2).json()
        result = body.get("data", {}).get("result", [])
        if result and result[0]["value"][1] not in ("NaN", "+Inf", "-Inf"):
            return
        time.sleep(0.2)
    pytest.fail(f"prometheus had no data for {promql} within {READY_WITHIN_S:g} s")


def _source(url: str, *, range_: timedelta | None = None) -> PrometheusSource:
    return PrometheusSource(
        name="prometheus-churn", type="prometheus", interval=timedelta(minutes=1), http=HttpOptions(timeout_s=5),
        url=url, models=("churn",), environments=("production",),
        queries=(PromQuery("latency_p95_ms", LATENCY_QUERY), PromQuery("request_error_rate", ERROR_QUERY)),
        range=range_, step=timedelta(seconds=1),
    )


def test_latency_quantile_and_error_rate_land_as_samples(
    prometheus: RunningPrometheus, services: Services, clock: Clock
) -> None:
    _wait_for_data(prometheus, LATENCY_QUERY)
    _wait_for_data(prometheus, ERROR_QUERY)
    clock.now = datetime.now(UTC)  # Prometheus answers about real time
    result = pull_source(services, _source(prometheus.url))
    assert result.ok, result.error
    assert result.recorded == 2
    latest = Samples(services.registry).latest("churn", "production")
    assert latest["latency_p95_ms"].value == pytest.approx(EXPECTED_P95_MS, rel=1e-9)
    assert latest["latency_p95_ms"].version == 2  # from the series' version label
    assert latest["request_error_rate"].value == pytest.approx(EXPECTED_ERROR_RATE, rel=1e-9)
    assert latest["request_error_rate"].version == 2  # no label: production's stable version


def test_range_query_records_a_point_per_step(
    prometheus: RunningPrometheus, services: Services, clock: Clock
) -> None:
    _wait_for_data(prometheus, ERROR_QUERY)
    clock.now = datetime.now(UTC)
    result = pull_source(services, _source(prometheus.url, range_=timedelta(seconds=3)))
    assert result.ok, result.error
    rates = [s for s in result.samples if s.metric == "request_error_rate"]
    assert 1 <= len(rates) <= 4
    assert all(s.value == pytest.approx(EXPECTED_ERROR_RATE, rel=1e-9) for s in rates)


def test_a_bad_query_is_reported_in_prometheus_words(
    prometheus: RunningPrometheus, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    source = PrometheusSource(
        name="prometheus-bad", type="prometheus", interval=timedelta(minutes=1), url=prometheus.url,
        models=("churn",), environments=("production",), queries=(PromQuery("broken", "sum(rate(x[5m]"),),
    )
    result = pull_source(services, source)
    assert not result.ok and result.recorded == 0
    assert "answered 400" in (result.error or "") and "parse error" in (result.error or "")
    assert any("prometheus-bad" in r.getMessage() and "answered 400" in r.getMessage() for r in caplog.records)


def test_prometheus_down_is_one_clear_line(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    """Runs without the binary: nothing listens on the discard port."""
    source = PrometheusSource(
        name="prometheus-down", type="prometheus", interval=timedelta(minutes=1),
        http=HttpOptions(timeout_s=2, retries=1, backoff_s=0.01), url="http://127.0.0.1:9", models=("churn",),
        environments=("production", "staging"),
        queries=(PromQuery("latency_p95_ms", LATENCY_QUERY), PromQuery("request_error_rate", ERROR_QUERY)),
    )
    result = pull_source(services, source)
    assert not result.ok and result.recorded == 0
    assert result.error == ("Prometheus at http://127.0.0.1:9/api/v1/query is unreachable (Connection refused); "
                            "is it running?")
    assert [r.getMessage() for r in caplog.records if r.name == "modelbot.sources"] == [
        f"source prometheus-down (prometheus): {result.error}"]
