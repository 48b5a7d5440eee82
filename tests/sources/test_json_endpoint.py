"""JSON endpoint against a real local HTTP server: good answers, 500, a stall, malformed JSON, a
missing path. Bad sources never raise out of `pull_source`: they log one line, store the error
in the source's status, and record nothing."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from bot.config import jsonpath
from bot.config.sources import HttpOptions, JsonMetric, JsonSource
from bot.domain.errors import InvalidInput
from bot.domain.monitoring.recording import source_status
from bot.domain.monitoring.samples import Samples
from bot.services import Services
from bot.sources.json_endpoint import extract
from bot.sources.pull import pull_source
from tests.sources.conftest import T0, Clock, LocalServer

DOCUMENT = {
    "model": {"version": "v1"},
    "data": {"metrics": [{"name": "auc", "value": 0.91}, {"name": "f1", "value": "0.8"}]},
    "items": [{"latency": 100}, {"latency": 140}, {"latency": 120}],
    "status": {"healthy": True, "p95 ms": 210.5},
}


def source(url: str, *metrics: tuple[str, str, str], timeout_s: float = 2.0, version_path: str | None = None
           ) -> JsonSource:
    return JsonSource(
        name="serving-stats", type="json", interval=timedelta(minutes=1),
        http=HttpOptions(timeout_s=timeout_s, retries=1, backoff_s=0.01),
        url=url, model="churn", environment="production",
        metrics=tuple(JsonMetric(m, jsonpath.parse(p), agg) for m, p, agg in metrics),
        version_path=None if version_path is None else jsonpath.parse(version_path),
    )


GOOD = (("auc", "data.metrics[0].value", "mean"), ("f1", "data.metrics[1].value", "mean"),
        ("latency_mean_ms", "items[*].latency", "mean"), ("latency_max_ms", "items[*].latency", "max"),
        ("healthy", "$.status.healthy", "mean"), ("p95_ms", 'status["p95 ms"]', "mean"))


def test_good_answer_records_every_metric(services: Services, http_server: LocalServer) -> None:
    http_server.json("/stats", json.dumps(DOCUMENT))
    result = pull_source(services, source(f"{http_server.url}/stats", *GOOD, version_path="model.version"))
    assert result.ok and result.recorded == 6
    latest = Samples(services.registry).latest("churn", "production")
    assert {k: p.value for k, p in latest.items()} == {
        "auc": 0.91, "f1": 0.8, "latency_mean_ms": 120.0, "latency_max_ms": 140.0, "healthy": 1.0, "p95_ms": 210.5}
    assert {p.version for p in latest.values()} == {1}  # from version_path, not production's stable v2
    assert {p.at for p in latest.values()} == {T0}
    status = source_status(services.registry, ["serving-stats"])["serving-stats"]
    assert status.last_error is None and status.samples_last_pull == 6 and status.last_success_at is not None


def _failed_pull(services: Services, src: JsonSource, caplog: pytest.LogCaptureFixture) -> str:
    with caplog.at_level(logging.WARNING, logger="modelbot.sources"):
        result = pull_source(services, src)
    assert not result.ok and result.recorded == 0
    assert Samples(services.registry).latest("churn", "production") == {}
    status = source_status(services.registry, [src.name])[src.name]
    assert status.last_error == result.error and status.last_success_at is None
    lines = [r.getMessage() for r in caplog.records if r.name == "modelbot.sources"]
    assert len(lines) == 1 and src.name in lines[0]
    return result.error or ""


def test_500_is_a_clear_error(services: Services, http_server: LocalServer, caplog: pytest.LogCaptureFixture
                              ) -> None:
    http_server.json("/stats", '{"error": "backend exploded"}', status=500)
    error = _failed_pull(services, source(f"{http_server.url}/stats", *GOOD), caplog)
    assert error == f"JSON endpoint at {http_server.url}/stats answered 500: backend exploded."
    assert len(http_server.requests) == 2  # retried once (retries=1), then gave up


def test_a_stalled_server_times_out(services: Services, http_server: LocalServer,
                                    caplog: pytest.LogCaptureFixture) -> None:
    http_server.stall("/stats")
    error = _failed_pull(services, source(f"{http_server.url}/stats", *GOOD, timeout_s=0.3), caplog)
    assert error == f"JSON endpoint at {http_server.url}/stats did not answer within 0.3 s."
    assert len(http_server.requests) == 1  # read timeouts are not retried


def test_malformed_json_says_where(services: Services, http_server: LocalServer,
                                   caplog: pytest.LogCaptureFixture) -> None:
    http_server.json("/stats", '{"data": {"metrics": [1, 2,]}}')
    error = _failed_pull(services, source(f"{http_server.url}/stats", *GOOD), caplog)
    assert error.startswith(f"JSON endpoint at {http_server.url}/stats answered malformed JSON at line 1 column 28")


def test_a_server_that_is_down(services: Services, http_server: LocalServer, caplog: pytest.LogCaptureFixture
                               ) -> None:
    url = "http://127.0.0.1:9/stats"  # discard port: nothing listens
    error = _failed_pull(services, source(url, *GOOD), caplog)
    assert error == "JSON endpoint at http://127.0.0.1:9/stats is unreachable (Connection refused); is it running?"


def test_missing_path_fails_that_metric_only(services: Services, http_server: LocalServer) -> None:
    http_server.json("/stats", json.dumps(DOCUMENT))
    result = pull_source(services, source(f"{http_server.url}/stats", ("auc", "data.metrics[0].value", "mean"),
                                          ("p99", "data.metrics[5].value", "mean"),
                                          ("gone", "data.latency.p99", "mean")))
    assert not result.ok and result.recorded == 1
    assert result.error == ("p99: data.metrics has no index 5: it holds 2 item(s).; "
                            "gone: data has no key 'latency' (keys: metrics).")
    status = source_status(services.registry, ["serving-stats"])["serving-stats"]
    assert status.last_success_at is not None and status.last_error == result.error


def test_every_path_missing_is_one_error(services: Services, http_server: LocalServer, clock: Clock) -> None:
    http_server.json("/stats", "[]")
    result = pull_source(services, source(f"{http_server.url}/stats", ("auc", "data.auc", "mean")))
    assert not result.ok and result.recorded == 0
    assert "the document is a list, not an object, so it has no key 'data'" in (result.error or "")


@pytest.mark.parametrize(("path", "steps"), [
    ("data.metrics[0].value", ("data", "metrics", 0, "value")),
    ("items[*].latency", ("items", "*", "latency")),
    ("$.a[-1]", ("a", -1)),
    ("[0].auc", (0, "auc")),
    ('x["p95 ms"]', ("x", "p95 ms")),
    ("x['a.b']", ("x", "a.b")),
])
def test_path_grammar(path: str, steps: tuple[object, ...]) -> None:
    assert tuple(s.key for s in jsonpath.parse(path).steps) == steps


@pytest.mark.parametrize(("path", "error"), [
    ("", "empty"), ("a..b", "character 3"), ("a[", "not closed"), ("a[x]", r"a number, \* or a quoted key"),
    (".a", "cannot start"), ("a b", r"expected '\.' or '\['"),
])
def test_bad_paths_say_where(path: str, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        jsonpath.parse(path)


def test_values_must_be_numbers() -> None:
    with pytest.raises(InvalidInput, match="holds the text 'high', not a number"):
        extract({"a": "high"}, JsonMetric("a", jsonpath.parse("a")))
    with pytest.raises(InvalidInput, match="holds an object, not a number"):
        extract({"a": {"b": 1}}, JsonMetric("a", jsonpath.parse("a")))
    assert extract({"a": [1, 2, 3, 4]}, JsonMetric("a", jsonpath.parse("a[*]"), "count")) == 4.0
    assert extract({"a": {"x": 1, "y": 3}}, JsonMetric("a", jsonpath.parse("a[*]"), "sum")) == 4.0
