"""`[[sources]]` in modelbot.toml: parsed and validated at start-up, errors at file:line.

One table per source; every source has `name`, `type` and `interval`, and optionally
`timeout`, `retries` and `max_response_mb` (answers larger than this are refused; 10 by default). The rest depends on the type (full reference in the README):

    [[sources]]
    name = "prometheus-churn"
    type = "prometheus"            # prometheus | json | probe | prediction_log
    interval = "1m"
    url = "http://prometheus:9090"
    models = ["churn"]
    environments = ["production"]  # default: every environment
    # range = "5m"  step = "1m"    # range query instead of an instant query
    [sources.queries]              # metric name = PromQL; {model} {environment} {version} are filled in
    latency_p95_ms = 'histogram_quantile(0.95, sum by (le) (rate(request_latency_seconds_bucket{model="{model}",env="{environment}"}[5m]))) * 1000'

This module imports nothing heavy (no pandas, no pyarrow): `load_policy` calls
`parse_sources` on every start, before the database is touched, so a typo in a PromQL
placeholder or a JSON path stops start-up instead of failing silently at 3 a.m.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.config import jsonpath
from bot.config.settings import ConfigError
from bot.config.toml_file import KeyPath, PolicyFile, config_error
from bot.domain import names
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.policy import Policy

SOURCE_TYPES = ("prometheus", "json", "probe", "prediction_log")
COMMON_KEYS = {"name", "type", "interval", "timeout", "retries", "max_response_mb"}
TYPE_KEYS: dict[str, set[str]] = {
    "prometheus": {"url", "models", "environments", "queries", "range", "step"},
    "json": {"url", "model", "environment", "metrics", "aggregate", "version_path"},
    "probe": {"model", "targets"},
    "prediction_log": {"path", "sql_url", "table", "model", "environment", "version", "features", "reference",
                       "window", "columns", "chunk_rows", "drift_method", "positive_label", "task", "labels",
                       "lateness", "label_horizon", "pushdown"},
}
AGGREGATES = ("mean", "min", "max", "sum", "last", "count")
COLUMN_ROLES = ("timestamp", "prediction", "label", "score", "latency_ms", "model", "version", "env", "id")
LABEL_COLUMN_ROLES = ("id", "label", "timestamp")
TASKS = ("classification", "regression")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
DRIFT_METHODS = ("psi", "auto", "ks", "chisquare", "z", "wasserstein", "jensenshannon")
PLACEHOLDERS = ("{model}", "{environment}", "{env}", "{version}")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PLACEHOLDER = re.compile(r"\{(model|environment|env|version)\}")
MIN_INTERVAL = timedelta(seconds=5)
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 0.5
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class HttpOptions:
    """Per-source HTTP knobs, parsed from `[[sources]]` (`timeout`, `retries`, `max_response_mb`);
    the HTTP clients in bot/sources take them (config sits below them, so the value type lives here)."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """What every source has. `interval` is how often the scheduler pulls it."""

    name: str
    type: str
    interval: timedelta
    http: HttpOptions = field(default_factory=HttpOptions)


@dataclass(frozen=True)
class PromQuery:
    metric: str
    query: str

    @property
    def uses_version(self) -> bool:
        return "{version}" in self.query


@dataclass(frozen=True, kw_only=True)
class PrometheusSource(SourceConfig):
    url: str
    models: tuple[str, ...]
    environments: tuple[str, ...]
    queries: tuple[PromQuery, ...]
    range: timedelta | None = None
    step: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class JsonMetric:
    metric: str
    path: jsonpath.JsonPath
    aggregate: str = "mean"


@dataclass(frozen=True, kw_only=True)
class JsonSource(SourceConfig):
    url: str
    model: str
    environment: str
    metrics: tuple[JsonMetric, ...]
    version_path: jsonpath.JsonPath | None = None


@dataclass(frozen=True, kw_only=True)
class ProbeSource(SourceConfig):
    model: str
    targets: tuple[tuple[str, str], ...]  # (environment, health URL)


@dataclass(frozen=True)
class LabelsConfig:
    """Labels kept apart from the predictions: a file/glob or a table, joined by prediction id."""

    path: str | None = None
    sql_url: str | None = None
    table: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PredictionLogSource(SourceConfig):
    model: str
    path: str | None = None
    sql_url: str | None = None
    table: str | None = None
    environment: str | None = None
    version: int | None = None
    features: tuple[str, ...] | None = None
    reference: str | None = None
    window: timedelta = timedelta(hours=1)
    columns: Mapping[str, str] = field(default_factory=dict)
    chunk_rows: int = 100_000
    drift_method: str = "psi"
    positive_label: Any = 1
    task: str = "classification"
    labels: LabelsConfig | None = None
    lateness: timedelta = timedelta(0)
    label_horizon: timedelta = timedelta(days=30)
    pushdown: bool = True


AnySource = PrometheusSource | JsonSource | ProbeSource | PredictionLogSource


def parse_sources(raw: Any, file: PolicyFile | None, *, environments: Sequence[str]) -> tuple[AnySource, ...]:
    """Validate `[[sources]]`; ConfigError names the file and the line of the offending key."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise config_error(file, "sources must be a list of [[sources]] tables.", ("sources",), "sources")
    parsed: list[AnySource] = []
    seen: set[str] = set()
    for index, table in enumerate(raw):
        at = _At(file, index)
        if not isinstance(table, dict):
            raise at.error("each [[sources]] entry must be a table with name, type and interval.")
        source = _source(table, at, tuple(environments))
        if source.name.lower() in seen:
            raise at.error(f"two sources are named '{source.name}'; give each a unique name.", "name")
        seen.add(source.name.lower())
        parsed.append(source)
    return tuple(parsed)


def configured_sources(policy: Policy) -> tuple[AnySource, ...]:
    """The sources of an already loaded (so already validated) policy: what the scheduler pulls."""
    return parse_sources(policy.sections.get("sources"), None, environments=policy.environment_names)


def sources_for_model(policy: Policy, model: str) -> tuple[AnySource, ...]:
    """Sources that produce samples for `model` (status shows their health)."""
    key = model.lower()
    out = []
    for source in configured_sources(policy):
        models = source.models if isinstance(source, PrometheusSource) else (source.model,)
        if key in (m.lower() for m in models):
            out.append(source)
    return tuple(out)


def declared_metrics(policy: Policy, model: str) -> set[str]:
    """Metric names the configured Prometheus, JSON and probe sources produce for `model` (their
    data may not have arrived yet; an alert rule on one of them is not a typo)."""
    out: set[str] = set()
    for source in sources_for_model(policy, model):
        if isinstance(source, PrometheusSource):
            out.update(q.metric for q in source.queries)
        elif isinstance(source, JsonSource):
            out.update(m.metric for m in source.metrics)
        elif isinstance(source, ProbeSource):
            out.add("up")
    return out


def environments_of(source: AnySource) -> tuple[str, ...]:
    """The environments a source measures; () when the data says (a log with an env column)."""
    if isinstance(source, PrometheusSource):
        return source.environments
    if isinstance(source, JsonSource):
        return (source.environment,)
    if isinstance(source, ProbeSource):
        return tuple(env for env, _ in source.targets)
    return (source.environment,) if source.environment else ()


# ---- per type ---------------------------------------------------------------------------------


def _source(table: dict[str, Any], at: _At, environments: tuple[str, ...]) -> AnySource:
    name = table.get("name")
    if not isinstance(name, str) or not _SOURCE_NAME.match(name):
        raise at.error("every source needs name = \"…\" (letters, digits, '.', '_' or '-', at most 128).", "name")
    at.name = name
    kind = table.get("type")
    if kind not in SOURCE_TYPES:
        raise at.error(f"type must be one of {', '.join(SOURCE_TYPES)}.", "type")
    known = COMMON_KEYS | TYPE_KEYS[kind]
    for key in table:
        if key not in known:
            raise at.error(f"unknown key '{key}' for a {kind} source; known: {', '.join(sorted(known))}.", key)
    interval = _duration(table, "interval", at, "5m" if kind == "prediction_log" else "1m")
    if interval < MIN_INTERVAL:
        raise at.error("interval must be at least 5s; sources are pulled, not streamed.", "interval")
    timeout = _duration(table, "timeout", at, f"{DEFAULT_TIMEOUT_S:g}s")
    if not timedelta(0) < timeout <= timedelta(minutes=5):
        raise at.error("timeout must be between 1s and 5m.", "timeout")
    retries = table.get("retries", DEFAULT_RETRIES)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise at.error("retries must be a whole number from 0 to 10.", "retries")
    max_mb = table.get("max_response_mb", DEFAULT_MAX_RESPONSE_BYTES // 1024 // 1024)
    if not isinstance(max_mb, int | float) or isinstance(max_mb, bool) or not 0 < max_mb <= 1024:
        raise at.error("max_response_mb must be a number of megabytes from 0.001 to 1024.", "max_response_mb")
    common: dict[str, Any] = {
        "name": name, "type": kind, "interval": interval,
        "http": HttpOptions(timeout_s=timeout.total_seconds(), retries=retries, max_bytes=int(max_mb * 1024 * 1024)),
    }
    if kind == "prometheus":
        return _prometheus(table, at, environments, common)
    if kind == "json":
        return _json(table, at, environments, common)
    if kind == "probe":
        return _probe(table, at, environments, common)
    return _prediction_log(table, at, environments, common)


def _prometheus(table: dict[str, Any], at: _At, envs: tuple[str, ...], common: dict[str, Any]) -> PrometheusSource:
    url = _url(table, "url", at, "the Prometheus base URL, like \"http://prometheus:9090\"")
    models = _string_list(table, "models", at, required=True)
    for model in models:
        _model(model, "models", at)
    chosen = _string_list(table, "environments", at, required=False) or list(envs)
    for env in chosen:
        _environment(env, "environments", at, envs)
    raw_queries = table.get("queries")
    if not isinstance(raw_queries, dict) or not raw_queries:
        raise at.error("a prometheus source needs [sources.queries] with metric = \"PromQL\" lines.", "queries")
    queries = []
    for metric, query in raw_queries.items():
        _metric(metric, at, "queries")
        if not isinstance(query, str) or not query.strip():
            raise at.error(f"the query for {metric} must be PromQL text in quotes.", "queries", metric)
        _check_placeholders(query, metric, at)
        queries.append(PromQuery(metric, query.strip()))
    step = _duration(table, "step", at, "1m")
    range_ = _duration(table, "range", at, None) if "range" in table else None
    if range_ is not None and range_ < step:
        raise at.error("range must be at least one step long.", "range")
    if range_ is not None and range_ / step > 11_000:
        raise at.error("range / step exceeds Prometheus's 11,000 points per series; use a longer step.", "step")
    return PrometheusSource(**common, url=url.rstrip("/"), models=tuple(models),
                            environments=tuple(e.lower() for e in chosen), queries=tuple(queries),
                            range=range_, step=step)


def _json(table: dict[str, Any], at: _At, envs: tuple[str, ...], common: dict[str, Any]) -> JsonSource:
    url = _url(table, "url", at, "the URL to GET, like \"https://serving/metrics.json\"")
    model = _model(table.get("model"), "model", at)
    env = _environment(table.get("environment"), "environment", at, envs)
    default_aggregate = table.get("aggregate", "mean")
    if default_aggregate not in AGGREGATES:
        raise at.error(f"aggregate must be one of {', '.join(AGGREGATES)}.", "aggregate")
    raw_metrics = table.get("metrics")
    if not isinstance(raw_metrics, dict) or not raw_metrics:
        raise at.error("a json source needs [sources.metrics] with metric = \"path.to[0].value\" lines.", "metrics")
    metrics = []
    for metric, spec in raw_metrics.items():
        _metric(metric, at, "metrics")
        aggregate = default_aggregate
        if isinstance(spec, dict):
            unknown = set(spec) - {"path", "aggregate"}
            if unknown or "path" not in spec:
                raise at.error(f"{metric} = {{ path = \"…\", aggregate = \"mean\" }} takes only path and "
                               "aggregate.", "metrics", metric)
            aggregate = spec.get("aggregate", default_aggregate)
            if aggregate not in AGGREGATES:
                raise at.error(f"aggregate of {metric} must be one of {', '.join(AGGREGATES)}.", "metrics", metric)
            spec = spec["path"]
        if not isinstance(spec, str):
            raise at.error(f"{metric} must be a path in quotes, like \"data.metrics[0].value\".", "metrics", metric)
        metrics.append(JsonMetric(metric, _path(spec, at, "metrics", metric), aggregate))
    version_path = None
    if "version_path" in table:
        if not isinstance(table["version_path"], str):
            raise at.error("version_path must be a path in quotes, like \"model.version\".", "version_path")
        version_path = _path(table["version_path"], at, "version_path")
    return JsonSource(**common, url=url, model=model, environment=env, metrics=tuple(metrics),
                      version_path=version_path)


def _probe(table: dict[str, Any], at: _At, envs: tuple[str, ...], common: dict[str, Any]) -> ProbeSource:
    model = _model(table.get("model"), "model", at)
    raw = table.get("targets")
    if not isinstance(raw, dict) or not raw:
        raise at.error("a probe source needs targets = { production = \"http://…/healthz\" }, one URL per "
                       "environment.", "targets")
    targets = []
    for env, url in raw.items():
        _environment(env, "targets", at, envs)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise at.error(f"the health URL for {env} must start with http:// or https://.", "targets")
        targets.append((env.lower(), url))
    return ProbeSource(**common, model=model, targets=tuple(targets))


def _prediction_log(
    table: dict[str, Any], at: _At, envs: tuple[str, ...], common: dict[str, Any]
) -> PredictionLogSource:
    model = _model(table.get("model"), "model", at)
    path, sql_url, sql_table = table.get("path"), table.get("sql_url"), table.get("table")
    if (path is None) == (sql_url is None):
        raise at.error("give either path = \"logs/*.parquet\" or sql_url = \"…\" with table = \"…\".",
                       "path" if path is not None else None)
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise at.error("path must be a file path or glob in quotes.", "path")
    if sql_url is not None:
        if not isinstance(sql_url, str) or "://" not in sql_url:
            raise at.error("sql_url must be a SQLAlchemy URL, like \"postgresql://host/db\".", "sql_url")
        if not isinstance(sql_table, str) or not _TABLE_NAME.fullmatch(sql_table):
            raise at.error("table must name the table holding the predictions, like \"predictions\".", "table")
    elif sql_table is not None:
        raise at.error("table is only used with sql_url.", "table")
    env = table.get("environment")
    if env is not None:
        env = _environment(env, "environment", at, envs)
    version = table.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise at.error("version must be a version number, like 7.", "version")
    features = None
    if "features" in table:
        features = tuple(_string_list(table, "features", at, required=True))
    reference = table.get("reference")
    if reference is not None and (not isinstance(reference, str) or not reference.strip()):
        raise at.error("reference must be the path of the reference sample (CSV, Parquet or JSON lines).",
                       "reference")
    window = _duration(table, "window", at, "1h")
    if window < timedelta(minutes=1):
        raise at.error("window must be at least 1m.", "window")
    columns = table.get("columns", {})
    if not isinstance(columns, dict):
        raise at.error("columns must be a table, like columns = { timestamp = \"ts\", label = \"y\" }.", "columns")
    for role, column in columns.items():
        if role not in COLUMN_ROLES:
            raise at.error(f"columns.{role} is not a column role; roles: {', '.join(COLUMN_ROLES)}.", "columns")
        if not isinstance(column, str) or not column:
            raise at.error(f"columns.{role} must be a column name in quotes.", "columns")
    chunk_rows = table.get("chunk_rows", 100_000)
    if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or not 1_000 <= chunk_rows <= 10_000_000:
        raise at.error("chunk_rows must be a whole number from 1000 to 10000000.", "chunk_rows")
    method = table.get("drift_method", "psi")
    if method not in DRIFT_METHODS:
        raise at.error(f"drift_method must be one of {', '.join(DRIFT_METHODS)}.", "drift_method")
    positive = table.get("positive_label", 1)
    if not isinstance(positive, (str, int)) or isinstance(positive, bool):
        raise at.error("positive_label must be a label value, like 1 or \"churned\".", "positive_label")
    task = table.get("task", "classification")
    if task not in TASKS:
        raise at.error("task must be \"classification\" or \"regression\".", "task")
    lateness = _duration(table, "lateness", at, "1s") if "lateness" in table else timedelta(0)
    horizon = _duration(table, "label_horizon", at, "30d")
    labels = _labels(table.get("labels"), at) if "labels" in table else None
    pushdown = table.get("pushdown", True)
    if not isinstance(pushdown, bool):
        raise at.error("pushdown must be true (PostgreSQL computes the numbers) or false (modelbot reads the rows).",
                       "pushdown")
    return PredictionLogSource(
        **common, model=model, path=path, sql_url=sql_url, table=sql_table, environment=env, version=version,
        features=features, reference=reference, window=window, columns=dict(columns), chunk_rows=chunk_rows,
        drift_method=method, positive_label=positive, task=task, labels=labels, lateness=lateness,
        label_horizon=horizon, pushdown=pushdown,
    )


def _labels(raw: Any, at: _At) -> LabelsConfig:
    """`labels = { path = "labels/*.csv" }` or `{ sql_url = "…", table = "labels" }`, optionally with
    `columns = { id = "prediction_id", label = "y", timestamp = "labelled_at" }`."""
    if not isinstance(raw, dict):
        raise at.error("labels must be a table, like labels = { path = \"labels/*.csv\" }.", "labels")
    unknown = set(raw) - {"path", "sql_url", "table", "columns"}
    if unknown:
        raise at.error(f"labels takes path, or sql_url and table, and columns; not {sorted(unknown)[0]}.", "labels")
    path, sql_url, sql_table = raw.get("path"), raw.get("sql_url"), raw.get("table")
    if (path is None) == (sql_url is None):
        raise at.error("labels need either path = \"…\" or sql_url = \"…\" with table = \"…\".", "labels")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise at.error("labels.path must be a file path or glob in quotes.", "labels")
    if sql_url is not None and (not isinstance(sql_url, str) or "://" not in sql_url
                                or not isinstance(sql_table, str) or not _TABLE_NAME.fullmatch(sql_table)):
        raise at.error("labels.sql_url must be a SQLAlchemy URL and labels.table a table name.", "labels")
    columns = raw.get("columns", {})
    if not isinstance(columns, dict) or any(
            role not in LABEL_COLUMN_ROLES or not isinstance(name, str) or not name for role, name in columns.items()):
        raise at.error(f"labels.columns maps {', '.join(LABEL_COLUMN_ROLES)} to column names.", "labels")
    return LabelsConfig(path=path, sql_url=sql_url, table=sql_table, columns=dict(columns))


# ---- value checks -----------------------------------------------------------------------------


def _duration(table: dict[str, Any], key: str, at: _At, default: str | None) -> timedelta:
    raw = table.get(key, default)
    try:
        value = parse_duration(raw)
    except InvalidInput as exc:
        raise at.error(f"{key}: {exc.message}", key) from None
    if value <= timedelta(0):
        raise at.error(f"{key} must be longer than zero.", key)
    return value


def _url(table: dict[str, Any], key: str, at: _At, what: str) -> str:
    url = table.get(key)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise at.error(f"{key} must be {what} (http:// or https://).", key)
    return url


def _string_list(table: dict[str, Any], key: str, at: _At, *, required: bool) -> list[str]:
    raw = table.get(key)
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) and x for x in raw):
        raise at.error(f"{key} must be a list of names in quotes, like [\"a\", \"b\"].", key)
    if len(set(raw)) != len(raw):
        raise at.error(f"{key} names something twice.", key)
    return list(raw)


def _model(value: Any, key: str, at: _At) -> str:
    if not isinstance(value, str):
        raise at.error(f"{key} must name a registered model in quotes, like \"churn\".", key)
    try:
        return names.model_name(value)
    except InvalidInput as exc:
        raise at.error(exc.message, key) from None


def _environment(value: Any, key: str, at: _At, envs: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise at.error(f"{key} must name an environment in quotes: one of {', '.join(envs)}.", key)
    try:
        return names.environment(value, envs)
    except InvalidInput as exc:
        raise at.error(exc.message, key) from None


def _metric(metric: str, at: _At, table: str) -> None:
    try:
        names.key(metric, "metric")
    except InvalidInput as exc:
        raise at.error(exc.message, table, metric) from None


def _path(text: str, at: _At, *keys: str) -> jsonpath.JsonPath:
    try:
        return jsonpath.parse(text)
    except InvalidInput as exc:
        raise at.error(exc.message, *keys) from None


def _check_placeholders(query: str, metric: str, at: _At) -> None:
    """PromQL is full of braces, so only the four exact placeholders are special; a typo like
    {modle} inside a label matcher is almost certainly a mistake, so it is refused."""
    for match in re.finditer(r"\{([a-z_]+)\}", query):
        if not _PLACEHOLDER.fullmatch(match.group(0)):
            raise at.error(f"the query for {metric} has {match.group(0)}; placeholders are "
                           f"{', '.join(PLACEHOLDERS)}.", "queries", metric)


def fill(query: str, *, model: str, environment: str, version: int | None) -> str:
    """Put label values into a query's placeholders, escaped for a PromQL string literal."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        raw = model if name == "model" else environment if name in ("environment", "env") else str(version or "")
        return raw.replace("\\", "\\\\").replace('"', '\\"')

    return _PLACEHOLDER.sub(value, query)


# ---- locating errors ----------------------------------------------------------------------------


class _At:
    """One [[sources]] entry: errors start with the source's name once it is known, and point at
    the line of the key (a path below the entry: `at.error(msg, "queries", "auc")`)."""

    def __init__(self, file: PolicyFile | None, index: int) -> None:
        self.file = file
        self.index = index
        self.name: str | None = None

    def error(self, message: str, *keys: str | None) -> ConfigError:
        prefix = f"source '{self.name}': " if self.name else f"[[sources]] #{self.index + 1}: "
        path: KeyPath = ("sources", self.index, *(k for k in keys if k))
        return config_error(self.file, prefix + message, path, "sources")
