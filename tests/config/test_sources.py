"""`[[sources]]` in modelbot.toml: parsed at start-up by `load_policy`, errors at file:line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config.policy_file import load_policy
from bot.config.settings import ConfigError
from bot.config.sources import (
    JsonSource,
    PredictionLogSource,
    ProbeSource,
    PrometheusSource,
    configured_sources,
    fill,
    sources_for_model,
)

GOOD = '''\
announce_channel = "C0123ABCD"

[[sources]]
name = "prometheus-churn"
type = "prometheus"
url = "http://prometheus:9090/"
interval = "30s"
timeout = "3s"
retries = 1
models = ["churn", "fraud"]
environments = ["production"]
range = "5m"
step = "1m"
[sources.queries]
latency_p95_ms = 'histogram_quantile(0.95, sum by (le) (rate(lat_bucket{model="{model}",env="{environment}"}[5m]))) * 1000'
request_error_rate = 'sum(rate(errors_total{model="{model}"}[5m])) / sum(rate(requests_total{model="{model}"}[5m]))'

[[sources]]
name = "serving-stats"
type = "json"
url = "https://serving.internal/stats"
model = "churn"
environment = "staging"
version_path = "model.version"
[sources.metrics]
auc = "data.metrics[0].value"
latency_max_ms = { path = "items[*].latency", aggregate = "max" }

[[sources]]
name = "churn-health"
type = "probe"
model = "churn"
targets = { production = "http://churn.prod/healthz", staging = "http://churn.staging/healthz" }

[[sources]]
name = "churn-log"
type = "prediction_log"
model = "churn"
path = "/var/log/churn/*.parquet"
environment = "production"
reference = "/data/churn/reference.parquet"
window = "1h"
features = ["age", "country"]
columns = { timestamp = "ts", label = "churned" }
positive_label = 1
'''


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "modelbot.toml"
    path.write_text(text)
    return load_policy(path)


def test_a_good_file_parses_into_typed_sources(tmp_path: Path) -> None:
    policy = load(tmp_path, GOOD)
    prom, stats, health, log = configured_sources(policy)
    assert isinstance(prom, PrometheusSource) and prom.url == "http://prometheus:9090"
    assert prom.interval == timedelta(seconds=30) and prom.http.timeout_s == 3 and prom.http.retries == 1
    assert prom.models == ("churn", "fraud") and prom.environments == ("production",)
    assert prom.range == timedelta(minutes=5) and [q.metric for q in prom.queries] == [
        "latency_p95_ms", "request_error_rate"]
    assert isinstance(stats, JsonSource) and [(m.metric, m.aggregate) for m in stats.metrics] == [
        ("auc", "mean"), ("latency_max_ms", "max")]
    assert isinstance(health, ProbeSource) and dict(health.targets)["staging"] == "http://churn.staging/healthz"
    assert isinstance(log, PredictionLogSource) and log.columns == {"timestamp": "ts", "label": "churned"}
    assert log.interval == timedelta(minutes=5) and log.features == ("age", "country")
    assert [s.name for s in sources_for_model(policy, "Fraud")] == ["prometheus-churn"]


def test_placeholders_are_filled_and_escaped() -> None:
    query = 'rate(x{model="{model}",env="{env}",environment="{environment}",version="{version}"}[5m])'
    assert fill(query, model='a"b', environment="production", version=3) == (
        'rate(x{model="a\\"b",env="production",environment="production",version="3"}[5m])')


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[occurrence - 1]


@pytest.mark.parametrize(("old", "new", "needle", "message"), [
    ('type = "probe"', 'type = "ping"', 'type = "ping"',
     "source 'churn-health': type must be one of prometheus, json, probe, prediction_log."),
    ('interval = "30s"', 'interval = "soon"', 'interval = "soon"',
     "source 'prometheus-churn': interval: 'soon' is not a duration"),
    ('{model="{model}",env="{environment}"}', '{model="{modle}"}', "latency_p95_ms",
     "source 'prometheus-churn': the query for latency_p95_ms has {modle}; placeholders are"),
    ('auc = "data.metrics[0].value"', 'auc = "data.metrics[0.value"', "auc = ",
     "source 'serving-stats': The JSON path 'data.metrics[0.value' is malformed at character 13"),
    ('environment = "staging"', 'environment = "qa"', 'environment = "qa"',
     "source 'serving-stats': There is no environment 'qa': use one of staging, production."),
    ('window = "1h"', 'window = "1h"\nbatch = 5', "batch = 5",
     "source 'churn-log': unknown key 'batch' for a prediction_log source"),
    ('columns = { timestamp = "ts", label = "churned" }', 'columns = { when = "ts" }', "columns = ",
     "source 'churn-log': columns.when is not a column role"),
    ('name = "churn-health"', 'name = "serving-stats"', 'name = "serving-stats"',
     "source 'serving-stats': two sources are named 'serving-stats'"),
])
def test_errors_point_at_the_line(tmp_path: Path, old: str, new: str, needle: str, message: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new)
    occurrence = 2 if needle == 'name = "serving-stats"' else 1
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    assert str(error.value).startswith(f"{tmp_path / 'modelbot.toml'}:{_line_of(text, needle, occurrence)}: {message}")


def test_a_log_source_needs_a_path_or_a_table(tmp_path: Path) -> None:
    text = GOOD.replace('path = "/var/log/churn/*.parquet"\n', "")
    with pytest.raises(ConfigError, match=r"source 'churn-log': give either path"):
        load(tmp_path, text)
