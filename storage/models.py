"""SQLModel tables.

Invariants live in the schema where a database can hold them: unique names regardless of
case (`name_key`), versions that belong to exactly one model (composite foreign keys from
deployments to `(model_id, version)`), one stable version per (model, environment) (one
deployment row per pair), canary weight in 0..100, and an audit log whose rows the database
refuses to update or delete (triggers in the migration). Rows never leave `storage`: the
domain converts them into frozen entities.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class JSONDocument(sa.types.TypeDecorator):  # type: ignore[type-arg]
    """JSON on SQLite, JSONB on PostgreSQL (as the migrations create them). The PostgreSQL
    type is imported only when a PostgreSQL engine asks for it: SQLite processes start faster."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())


JSONType = JSONDocument()


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index)


class RegisteredModel(SQLModel, table=True):
    __tablename__ = "registered_models"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, nullable=False)
    # lower-cased name: the unique key, so `Churn` and `churn` cannot both exist
    name_key: str = Field(max_length=64, nullable=False, sa_column_kwargs={"unique": True})
    description: str | None = Field(default=None)
    owner: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_column=utc_column())
    # last version number handed out; incremented atomically by UPDATE … RETURNING
    latest_version: int = Field(default=0, nullable=False)


class ModelVersion(SQLModel, table=True):
    __tablename__ = "model_versions"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
        sa.CheckConstraint("version >= 1", name="ck_model_versions_positive"),
        sa.CheckConstraint("status in ('ready', 'archived')", name="ck_model_versions_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    version: int = Field(nullable=False)
    artifact_uri: str = Field(nullable=False)
    run_id: str | None = Field(default=None)
    source: str | None = Field(default=None)
    dataset_fingerprint: str | None = Field(default=None)
    description: str | None = Field(default=None)
    metrics: dict[str, float] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    params: dict[str, str] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    tags: dict[str, str] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    created_by: str = Field(nullable=False)
    created_at: datetime = Field(sa_column=utc_column())
    status: str = Field(default="ready", nullable=False)


class Deployment(SQLModel, table=True):
    """What one environment of one model serves: the pointers, not copies."""

    __tablename__ = "deployments"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "environment", name="uq_deployments_model_env"),
        sa.ForeignKeyConstraint(
            ["model_id", "stable_version"], ["model_versions.model_id", "model_versions.version"],
            name="fk_deployments_stable",
        ),
        sa.ForeignKeyConstraint(
            ["model_id", "previous_version"], ["model_versions.model_id", "model_versions.version"],
            name="fk_deployments_previous",
        ),
        sa.ForeignKeyConstraint(
            ["model_id", "canary_version"], ["model_versions.model_id", "model_versions.version"],
            name="fk_deployments_canary",
        ),
        sa.CheckConstraint("canary_weight >= 0 AND canary_weight <= 100", name="ck_deployments_weight"),
        sa.CheckConstraint("revision >= 0", name="ck_deployments_revision"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    environment: str = Field(max_length=32, nullable=False)
    stable_version: int | None = Field(default=None)
    previous_version: int | None = Field(default=None)
    canary_version: int | None = Field(default=None)
    canary_weight: int = Field(default=0, nullable=False)
    revision: int = Field(default=0, nullable=False)
    updated_at: datetime = Field(sa_column=utc_column())


class AuditEvent(SQLModel, table=True):
    """Append-only: the migration installs triggers that refuse UPDATE and DELETE.

    Pointer moves carry the deployment `revision` they produced; the unique index on
    (model, environment, revision) makes a gap-free, duplicate-free chain a database fact.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "environment", "revision", name="uq_audit_events_revision"),
        sa.Index("ix_audit_events_model_env_id", "model_id", "environment", "id"),
        sa.Index("ix_audit_events_model_id", "model_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column())
    actor: str = Field(nullable=False)
    model_id: int | None = Field(default=None, foreign_key="registered_models.id")
    environment: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=32, nullable=False)
    from_version: int | None = Field(default=None)
    to_version: int | None = Field(default=None)
    revision: int | None = Field(default=None)
    # canary traffic weight after a canary action (None for other actions)
    weight: int | None = Field(default=None)
    reason: str | None = Field(default=None)
    request_id: str | None = Field(default=None, max_length=64)
    # what a decision was about when it is not a model: "token ci-churn", "subscription 4", "alert 7"
    subject: str | None = Field(default=None, max_length=128)


class ChangeRequest(SQLModel, table=True):
    """A change that needs approvals: a promotion, a rollback, a canary's start or its promotion.

    A partial unique index allows one pending request per (model, environment): a newer
    request supersedes the older one in the same transaction.
    """

    __tablename__ = "change_requests"
    __table_args__ = (
        sa.Index(
            "uq_change_requests_one_pending", "model_id", "environment", unique=True,
            sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_change_requests_status_expires", "status", "expires_at"),
        sa.Index("ix_change_requests_model_env", "model_id", "environment", "id"),
        sa.ForeignKeyConstraint(
            ["model_id", "version"], ["model_versions.model_id", "model_versions.version"],
            name="fk_change_requests_version",
        ),
        sa.CheckConstraint(
            "status in ('pending', 'approved', 'rejected', 'expired', 'superseded', 'cancelled', 'moot')",
            name="ck_change_requests_status",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    version: int = Field(nullable=False)
    environment: str = Field(max_length=32, nullable=False)
    kind: str = Field(max_length=32, nullable=False, default="promote")
    requester: str = Field(nullable=False)
    reason: str | None = Field(default=None)
    status: str = Field(max_length=16, nullable=False, default="pending")
    approvals_needed: int = Field(nullable=False, default=1)
    created_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())
    decided_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    decided_by: str | None = Field(default=None)
    decision_reason: str | None = Field(default=None)
    # an admin's gate override belongs to the request: recorded once (who, why, when)
    override_by: str | None = Field(default=None)
    override_reason: str | None = Field(default=None)
    override_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # the traffic weight a canary starts at (kind canary_start)
    weight: int | None = Field(default=None)
    superseded_by: int | None = Field(default=None)
    # the version serving when the request was made, and the gate results then
    from_version: int | None = Field(default=None)
    gates: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(JSONType, nullable=False))


class RequestVote(SQLModel, table=True):
    """One approval or rejection per person per request: the unique key makes double clicks no-ops."""

    __tablename__ = "request_votes"
    __table_args__ = (sa.UniqueConstraint("request_id", "voter", name="uq_request_votes_voter"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="change_requests.id", nullable=False)
    voter: str = Field(nullable=False)
    decision: str = Field(max_length=16, nullable=False)
    at: datetime = Field(sa_column=utc_column())
    reason: str | None = Field(default=None)


class OutboxMessage(SQLModel, table=True):
    """A message or webhook caused by a state change, written in the same transaction.

    The delivery worker sends rows in id order per `destination` (one Slack message with its
    updates and thread, one channel's announcements, one webhook URL, …) and never orders
    rows of different destinations, so a receiver that is down delays only its own rows.
    `destination` is `lane:key`; the lane (`slack`, `webhook`, …) is the worker's capacity
    pool. `circuit` names the circuit breaker the row's failures count against (see
    `OutboxCircuit`); None for rows that are never circuit-broken (Slack). `topic` says what
    the row is about (a model, a subscription) for people and for queries that look rows up.
    `message_key` names a Slack message across rows: a `post` records its channel/ts under
    the key in `slack_messages`; `update`/`thread` rows find it there.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_status_next", "status", "next_attempt_at"),
        sa.Index("ix_outbox_topic_id", "topic", "id"),
        sa.Index("ix_outbox_destination_id", "destination", "id"),
        sa.CheckConstraint("status in ('pending', 'sending', 'delivered', 'failed')", name="ck_outbox_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=200, nullable=False)
    destination: str = Field(max_length=200, nullable=False)
    circuit: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=32, nullable=False)
    template: str = Field(max_length=64, nullable=False)
    channel: str | None = Field(default=None, max_length=64)
    user_id: str | None = Field(default=None, max_length=64)
    message_key: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))
    status: str = Field(max_length=16, nullable=False, default="pending")
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at: datetime = Field(sa_column=utc_column())
    lease_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_error: str | None = Field(default=None)
    created_at: datetime = Field(sa_column=utc_column())
    delivered_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONType, nullable=False))


class OutboxCircuit(SQLModel, table=True):
    """The circuit breaker of one remote endpoint (a webhook URL, an MLflow server).

    After `failures` consecutive retryable failures the circuit opens: no row naming it is
    claimed until `paused_until`; then one row goes out as a probe. A success closes it, a
    failure opens it again with a longer pause (`trips` counts the openings since the last
    success). The key is what people see (`webhook:<url>`, credentials redacted by the
    outbox); `notice_key` is the message key of the announcement that says it is paused,
    updated when it resumes.
    """

    __tablename__ = "outbox_circuits"
    __table_args__ = (sa.CheckConstraint("state in ('closed', 'open')", name="ck_outbox_circuit_state"),)

    key: str = Field(primary_key=True, max_length=200)
    state: str = Field(max_length=16, nullable=False, default="closed")
    failures: int = Field(default=0, nullable=False)
    trips: int = Field(default=0, nullable=False)
    opened_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    paused_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_error: str | None = Field(default=None)
    notice_key: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(sa_column=utc_column())


class SlackMessageRef(SQLModel, table=True):
    """Where a keyed message (an approval card, an alert card) lives in Slack."""

    __tablename__ = "slack_messages"

    key: str = Field(primary_key=True, max_length=200)
    channel: str = Field(max_length=64, nullable=False)
    ts: str = Field(max_length=32, nullable=False)
    outbox_id: int | None = Field(default=None)
    created_at: datetime = Field(sa_column=utc_column())


class MetricSample(SQLModel, table=True):
    """One observed value of one metric of one model in one environment (monitoring).

    `version` is the version that produced the value when known (canary and stable differ).
    Indexed for the two questions digests and alerts ask: the latest value, and a window.
    """

    __tablename__ = "metric_samples"
    __table_args__ = (
        sa.Index("ix_metric_samples_series_at", "model_id", "environment", "metric", "at"),
        sa.Index("ix_metric_samples_at", "at"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                                             primary_key=True, autoincrement=True))
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    version: int | None = Field(default=None)
    environment: str = Field(max_length=32, nullable=False)
    metric: str = Field(max_length=128, nullable=False)
    value: float = Field(nullable=False)
    at: datetime = Field(sa_column=utc_column())
    source: str = Field(max_length=64, nullable=False, default="api")


class MetricRollup(SQLModel, table=True):
    """Hourly aggregates that replace raw samples older than the retention window."""

    __tablename__ = "metric_rollups"
    __table_args__ = (
        sa.UniqueConstraint("model_id", "environment", "metric", "version", "hour", name="uq_metric_rollups_bucket"),
        sa.Index("ix_metric_rollups_series_hour", "model_id", "environment", "metric", "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    version: int | None = Field(default=None)
    environment: str = Field(max_length=32, nullable=False)
    metric: str = Field(max_length=128, nullable=False)
    hour: datetime = Field(sa_column=utc_column())
    count: int = Field(nullable=False)
    total: float = Field(nullable=False)
    minimum: float = Field(nullable=False)
    maximum: float = Field(nullable=False)
    last: float = Field(nullable=False)


class Subscription(SQLModel, table=True):
    """A channel's digest: which models (None = all), how often, when, in which time zone."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        sa.UniqueConstraint("channel", "model_key", "frequency", name="uq_subscriptions_channel_model_freq"),
        sa.CheckConstraint("frequency in ('hourly', 'daily', 'weekly')", name="ck_subscriptions_frequency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=64, nullable=False)
    model_id: int | None = Field(default=None, foreign_key="registered_models.id")
    # "*" for every model, else the model's name_key: part of the unique key (NULLs are distinct)
    model_key: str = Field(max_length=64, nullable=False)
    frequency: str = Field(max_length=16, nullable=False)
    at_time: str = Field(max_length=5, nullable=False, default="09:00")
    weekday: int = Field(default=0, nullable=False)  # 0 = Monday, for weekly digests
    timezone: str = Field(max_length=64, nullable=False, default="UTC")
    created_by: str = Field(nullable=False)
    created_at: datetime = Field(sa_column=utc_column())
    last_sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class SourceStatus(SQLModel, table=True):
    """The last pull of each metric source: digests say "no data since …" from here."""

    __tablename__ = "source_status"

    name: str = Field(primary_key=True, max_length=128)
    last_attempt_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_success_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_error: str | None = Field(default=None)
    samples_last_pull: int = Field(default=0, nullable=False)
    # a prediction log's read position (files: identity, size, offsets; SQL: watermark) and the
    # windows it recorded, written with the samples it produced (bot.domain.monitoring.log_pull)
    cursor: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType, nullable=True))


class AlertRule(SQLModel, table=True):
    """A threshold or anomaly rule on one metric of one model (Prometheus-style `for`)."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        sa.Index("ix_alert_rules_model", "model_id", "enabled"),
        sa.CheckConstraint("op in ('<', '<=', '>', '>=', '==', '!=')", name="ck_alert_rules_op"),
        sa.CheckConstraint("severity in ('warning', 'critical')", name="ck_alert_rules_severity"),
        sa.CheckConstraint("target in ('stable', 'canary', 'both')", name="ck_alert_rules_target"),
        sa.CheckConstraint("no_data in ('keep', 'alert', 'ok')", name="ck_alert_rules_no_data"),
        sa.CheckConstraint("kind in ('threshold', 'anomaly')", name="ck_alert_rules_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=128)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    environment: str = Field(max_length=32, nullable=False)
    metric: str = Field(max_length=128, nullable=False)
    kind: str = Field(max_length=16, nullable=False, default="threshold")
    op: str = Field(max_length=2, nullable=False, default=">")
    threshold: float | None = Field(default=None)
    # "previous": compare against the previous version's value (+ threshold as an offset)
    baseline: str = Field(max_length=16, nullable=False, default="constant")
    for_seconds: int = Field(default=0, nullable=False)
    keep_firing_for_seconds: int = Field(default=0, nullable=False)
    severity: str = Field(max_length=16, nullable=False, default="warning")
    channel: str | None = Field(default=None, max_length=64)
    target: str = Field(max_length=16, nullable=False, default="stable")
    no_data: str = Field(max_length=8, nullable=False, default="keep")
    no_data_after_seconds: int = Field(default=600, nullable=False)
    anomaly_k: float = Field(default=4.0, nullable=False)
    anomaly_window_seconds: int = Field(default=7 * 86400, nullable=False)
    failure_limit: int = Field(default=3, nullable=False)
    # a rule on a label-based metric evaluates only windows with at least this share of labels
    min_coverage: float | None = Field(default=None)
    enabled: bool = Field(default=True, nullable=False)
    origin: str = Field(max_length=16, nullable=False, default="slack")
    created_by: str = Field(nullable=False)
    created_at: datetime = Field(sa_column=utc_column())


class AlertState(SQLModel, table=True):
    """Where one rule stands for one series (environment × stable/canary)."""

    __tablename__ = "alert_states"
    __table_args__ = (
        sa.UniqueConstraint("rule_id", "series", name="uq_alert_states_rule_series"),
        sa.CheckConstraint("state in ('inactive', 'pending', 'firing')", name="ck_alert_states_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule_id: int = Field(foreign_key="alert_rules.id", nullable=False)
    series: str = Field(max_length=64, nullable=False)
    state: str = Field(max_length=16, nullable=False, default="inactive")
    active_since: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    firing_since: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_true_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_eval_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_value: float | None = Field(default=None)
    last_threshold: float | None = Field(default=None)
    version: int | None = Field(default=None)
    no_data: bool = Field(default=False, nullable=False)
    consecutive_failures: int = Field(default=0, nullable=False)
    group_id: int | None = Field(default=None)


class AlertGroup(SQLModel, table=True):
    """One incident per model and environment: the unit of notification (Alertmanager group)."""

    __tablename__ = "alert_groups"
    __table_args__ = (
        sa.Index("uq_alert_groups_one_open", "model_id", "environment", unique=True,
                 sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'")),
        sa.CheckConstraint("status in ('open', 'resolved')", name="ck_alert_groups_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    environment: str = Field(max_length=32, nullable=False)
    channel: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=16, nullable=False, default="open")
    opened_at: datetime = Field(sa_column=utc_column())
    first_notified_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_notified_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    resolved_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    acknowledged_by: str | None = Field(default=None)
    acknowledged_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # fingerprint of what the last notification said (firing rules), to notify changes only
    notified_fingerprint: str | None = Field(default=None, max_length=200)


class Silence(SQLModel, table=True):
    """Mutes notifications (not evaluation) for a model/environment, or one rule, until it ends."""

    __tablename__ = "silences"
    __table_args__ = (sa.Index("ix_silences_model_ends", "model_id", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registered_models.id", nullable=False)
    environment: str | None = Field(default=None, max_length=32)
    rule_id: int | None = Field(default=None, foreign_key="alert_rules.id")
    starts_at: datetime = Field(sa_column=utc_column())
    ends_at: datetime = Field(sa_column=utc_column())
    created_by: str = Field(nullable=False)
    reason: str | None = Field(default=None)


class ApiToken(SQLModel, table=True):
    """A REST API token. Only a SHA-256 hash of the secret is stored; the secret is shown once."""

    __tablename__ = "api_tokens"
    # the name is the actor (and approver identity) a token stands for: unique among active tokens,
    # so a rotated or revoked token's name can be used again
    __table_args__ = (
        sa.Index("uq_api_tokens_active_name", "name", unique=True,
                 sqlite_where=sa.text("revoked_at IS NULL"), postgresql_where=sa.text("revoked_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, nullable=False)
    token_hash: str = Field(max_length=64, nullable=False, sa_column_kwargs={"unique": True})
    prefix: str = Field(max_length=16, nullable=False)
    scopes: list[str] = Field(default_factory=list, sa_column=sa.Column(JSONType, nullable=False))
    created_by: str = Field(nullable=False)
    created_at: datetime = Field(sa_column=utc_column())
    last_used_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class MlflowDelivery(SQLModel, table=True):
    """One webhook delivery MLflow sent (issue 14). The delivery id is the key, so a delivery MLflow
    repeats is recognised and changes nothing; the newest row says when MLflow last spoke."""

    __tablename__ = "mlflow_deliveries"
    __table_args__ = (sa.Index("ix_mlflow_deliveries_received", "received_at"),)

    delivery_id: str = Field(primary_key=True, max_length=64)
    event: str = Field(max_length=64, nullable=False)
    model: str | None = Field(default=None, max_length=256)
    # MLflow's X-MLflow-Timestamp: when it signed the delivery (lag = received_at - sent_at)
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    received_at: datetime = Field(sa_column=utc_column())
    outcome: str | None = Field(default=None)


class MlflowAlias(SQLModel, table=True):
    """What modelbot last knew one MLflow alias to hold: set by its own alias writes and by every
    reconciliation. A different value in MLflow later is a move made outside modelbot."""

    __tablename__ = "mlflow_aliases"

    model_id: int = Field(foreign_key="registered_models.id", primary_key=True)
    alias: str = Field(primary_key=True, max_length=255)
    version: int | None = Field(default=None)  # None: the alias is not set in MLflow
    observed_at: datetime = Field(sa_column=utc_column())


class MlflowSyncStatus(SQLModel, table=True):
    """The last reconciliation pass against MLflow (`poll`): for `modelbot mlflow status`."""

    __tablename__ = "mlflow_sync_status"

    name: str = Field(primary_key=True, max_length=32)
    last_attempt_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_success_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    last_error: str | None = Field(default=None)
    models_checked: int = Field(default=0, nullable=False)
