"""Pydantic shapes of the REST API: what /api/v1/openapi.json documents and responses obey."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SAMPLES = 10_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class VersionIn(Strict):
    artifact_uri: str = Field(min_length=1, max_length=2000, examples=["s3://models/churn/7"])
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = Field(default=None, max_length=256)
    source: str | None = Field(default=None, max_length=2000)
    dataset_fingerprint: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=4000)


class VersionOut(BaseModel):
    model: str
    version: int
    status: str
    artifact_uri: str
    run_id: str | None
    source: str | None
    dataset_fingerprint: str | None
    description: str | None
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    created_by: str
    created_at: str
    serving: list[str]


class VersionPage(BaseModel):
    model: str
    total: int
    offset: int
    versions: list[VersionOut]


class ModelOut(BaseModel):
    name: str
    description: str | None
    owner: str | None
    created_at: str
    latest_version: int
    serving: dict[str, int]


class ModelPage(BaseModel):
    total: int
    offset: int
    models: list[ModelOut]


class EnvironmentOut(BaseModel):
    model: str
    environment: str
    stable: int | None
    stable_artifact_uri: str | None
    previous: int | None
    previous_artifact_uri: str | None
    canary: int | None
    canary_artifact_uri: str | None
    canary_weight: int
    revision: int
    updated_at: str | None


class AuditOut(BaseModel):
    id: int
    at: str
    actor: str
    model: str | None
    environment: str | None
    action: str
    from_version: int | None
    to_version: int | None
    revision: int | None
    reason: str | None
    request_id: str | None
    weight: int | None = None


class HistoryOut(BaseModel):
    model: str
    environment: str | None
    events: list[AuditOut]


class Vote(BaseModel):
    by: str
    at: str


class Rejection(BaseModel):
    by: str
    at: str
    reason: str | None


class GateOut(BaseModel):
    gate: str
    passed: bool
    left: float | None
    right: float | None
    note: str


class RequestOut(BaseModel):
    id: int
    model: str
    version: int
    environment: str
    kind: str
    requester: str
    reason: str | None
    status: str
    approvals_needed: int
    approvals: list[Vote]
    rejections: list[Rejection]
    created_at: str | None
    expires_at: str | None
    decided_at: str | None
    decided_by: str | None
    decision_reason: str | None
    override_by: str | None
    override_reason: str | None
    override_at: str | None = None
    superseded_by: int | None
    from_version: int | None
    gates: list[GateOut]
    weight: int | None = None


class RequestList(BaseModel):
    requests: list[RequestOut]


class PromotionIn(Strict):
    version: str = Field(min_length=1, max_length=64, examples=["7", "v7", "latest", "@staging"])
    reason: str | None = Field(default=None, max_length=4000)
    abort_canary: bool = Field(default=False, description="abort a canary running in the environment first "
                               "(otherwise the promotion is refused with 409)")
    override_reason: str | None = Field(default=None, max_length=4000,
                                        description="admins: why a failing gate may be overridden")


class CanaryIn(Strict):
    """Start a canary of `version` at `percent`, or (without `version`) move the running one."""

    version: str | None = Field(default=None, min_length=1, max_length=64, examples=["3"])
    percent: int = Field(examples=[25], description="1–99")
    reason: str | None = Field(default=None, max_length=4000)
    override_reason: str | None = Field(default=None, max_length=4000)


class ReasonIn(Strict):
    reason: str | None = Field(default=None, max_length=4000)


class CanaryOut(BaseModel):
    """The canary changed at once (`state`), or a request awaits approval (`canary_approvals`)."""

    outcome: Literal["changed", "requested"]
    state: EnvironmentOut | None
    request: RequestOut | None


class RollbackIn(Strict):
    to: str | None = Field(default=None, max_length=64, examples=["6"])
    reason: str | None = Field(default=None, max_length=4000)


class ChangeOut(BaseModel):
    """Either the pointer moved at once (`state` + `audit`), or a request awaits approval."""

    outcome: Literal["moved", "requested"]
    state: EnvironmentOut | None
    audit: AuditOut | None
    request: RequestOut | None


class ApproveIn(Strict):
    override_reason: str | None = Field(default=None, max_length=4000)


class RejectIn(Strict):
    reason: str = Field(min_length=1, max_length=4000)


class VoteOut(BaseModel):
    result: Literal["approved", "counted", "rejected", "duplicate", "already_decided"]
    request: RequestOut
    notes: list[str]


class SampleIn(Strict):
    model: str = Field(min_length=1, max_length=64)
    environment: str = Field(min_length=1, max_length=32)
    metric: str = Field(min_length=1, max_length=128)
    value: float
    at: datetime
    version: int | None = Field(default=None, ge=1)


class SamplesIn(Strict):
    samples: list[SampleIn] = Field(max_length=MAX_SAMPLES)


class SamplesOut(BaseModel):
    recorded: int


# ---- status, alerts and silences (operations without Slack) ----------------------------------------


class AlertEntry(BaseModel):
    alert: int | None = Field(description="the alert (incident) number `POST /alerts/{alert}/acknowledge` takes")
    model: str
    environment: str
    rule_id: int | None
    metric: str
    op: str
    threshold: float | None
    value: float | None
    severity: str
    series: str
    since: str | None
    no_data: bool


class AlertsOut(BaseModel):
    firing: list[AlertEntry]
    pending: list[AlertEntry]
    silenced: list[AlertEntry] = Field(description="firing, but muted by a silence")


class AckOut(BaseModel):
    alert: int
    acknowledged_by: str
    acknowledged_at: str | None
    already: bool = Field(description="someone had acknowledged it before: nothing changed")


class SilenceIn(Strict):
    model: str = Field(min_length=1, max_length=64, examples=["churn"])
    environment: str | None = Field(default=None, max_length=32, examples=["production"],
                                    description="omit to silence every environment")
    duration: str = Field(min_length=1, max_length=64, examples=["2h"], description="at most 30d")
    rule_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="only this rule")
    reason: str | None = Field(default=None, max_length=1000)


class SilenceOut(BaseModel):
    id: int
    model: str
    environment: str | None
    rule_id: int | None
    starts_at: str
    ends_at: str
    created_by: str
    reason: str | None


class SilenceList(BaseModel):
    silences: list[SilenceOut]


class RuleOut(BaseModel):
    id: int
    model: str
    environment: str
    metric: str
    kind: str
    op: str
    threshold: float | None
    baseline: str
    for_seconds: int
    keep_firing_for_seconds: int
    severity: str
    channel: str | None
    target: str
    no_data: str
    anomaly_k: float
    anomaly_window_seconds: int
    failure_limit: int
    name: str | None
    origin: str
    created_by: str | None
    created_at: str | None
    description: str


class RuleList(BaseModel):
    rules: list[RuleOut]
