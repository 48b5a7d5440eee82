"""Prometheus metrics, in one registry per process, served at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

COMMANDS = Counter(
    "modelbot_commands", "Slash commands and button clicks handled, by command and outcome.",
    ["command", "outcome"], registry=REGISTRY,
)
ACK_SECONDS = Histogram(
    "modelbot_ack_seconds", "Time from receiving a Slack request to acknowledging it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3), registry=REGISTRY,
)
REPLY_SECONDS = Histogram(
    "modelbot_reply_seconds", "Time from receiving a Slack request to its reply being accepted by Slack.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY,
)
SLACK_API_ERRORS = Counter(
    "modelbot_slack_api_errors", "Slack Web API calls that failed, by method and error.",
    ["method", "error"], registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "modelbot_http_requests", "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"], registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "modelbot_http_request_seconds",
    "Time to produce an HTTP response, by route template (for /slack/events: the time to ack).",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3), registry=REGISTRY,
)
SERVING_WATCHES = Gauge(
    "modelbot_serving_watches",
    "Serving-state watches (GET …/environments/{env}?revision=N) held open in this process, waiting for a "
    "change; their hold time also counts in modelbot_http_request_seconds.",
    registry=REGISTRY,
)
OUTBOX_DELIVERIES = Counter(
    "modelbot_outbox_deliveries",
    "Outbox delivery attempts by kind (post, update, thread, ephemeral, webhook) and outcome "
    "(delivered, retried, failed, deferred, skipped, superseded).",
    ["kind", "outcome"], registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "modelbot_outbox_pending", "Outbox rows waiting to be delivered (pending or being sent).", registry=REGISTRY,
)
OUTBOX_FAILED = Gauge(
    "modelbot_outbox_failed",
    "Outbox rows that failed permanently; `modelbot outbox --failed` lists them, `modelbot outbox retry ID` "
    "sends one again.",
    registry=REGISTRY,
)
OUTBOX_PAUSED = Gauge(
    "modelbot_outbox_paused_destinations",
    "Destinations (webhook URLs, …) whose circuit breaker is open: deliveries to them are paused and "
    "probed with backoff; `modelbot outbox` lists them.",
    registry=REGISTRY,
)
