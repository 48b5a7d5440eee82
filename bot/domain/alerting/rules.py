"""Alert rules: the one shape of a rule, how the words people write become one, and the decisions
to add and remove one. Bad input changes nothing and says what to type.

`Rule` is the only shape a rule has: `parse_rule` makes one from what `[[alerts.rules]]` in
modelbot.toml, `/model alert add` and the CLI say (the same words: thresholds like
`previous-0.02`, durations like `5m`); `AlertRules.add` stores it; the engine evaluates rules
read back as `Rule`s; replies and `--json` render them. A rule not stored yet has no `id`.
Two rules are the same rule when their `identity()` is equal (how the file's rules are synced).

Who may act: deployers and admins add and remove rules (the people the policy trusts with
what serves); rules from modelbot.toml are the file's business (`origin = "config"`): they are
synced from it, and cannot be removed by a command, since the next cycle would bring them back.
Each addition and removal writes one audit row (subject `rule N`); a refusal writes its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from bot.domain import audit, channels, names
from bot.domain.durations import human, whole_seconds
from bot.domain.entities import as_utc, iso
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from bot.domain.monitoring.metric_names import COVERAGE, is_label_based
from bot.domain.policy import GroupResolver, Policy, no_groups
from bot.domain.registry import Registry
from storage.queries import alerting as queries

OPS = ("<", "<=", ">", ">=", "==", "!=")
SEVERITIES = ("warning", "critical")
TARGETS = ("stable", "canary", "both")
NO_DATA = ("keep", "alert", "ok")
KINDS = ("threshold", "anomaly")
ORIGINS = ("slack", "cli", "api", "config")
CONFIG_ORIGIN = "config"
MAX_RULES_PER_MODEL = 500
MAX_DURATION = timedelta(days=90)
MIN_ANOMALY_WINDOW = timedelta(hours=1)
_PREVIOUS = re.compile(r"^previous(?:\.([A-Za-z_][A-Za-z0-9_.:/-]*))?(?:([-+])(\d+(?:\.\d+)?))?$")


@dataclass(slots=True, kw_only=True)
class Rule:
    """An alert rule on one metric of one model in one environment (a Prometheus-style `for`).

    `threshold` is the constant for `baseline = "constant"`, the offset from the previous
    version's value for `baseline = "previous"`, and None for anomaly rules. Slots and no
    freezing: the engine builds ten thousand of these a minute."""

    model: str
    environment: str
    metric: str
    kind: str = "threshold"
    op: str = ">"
    threshold: float | None = 0.0
    baseline: str = "constant"
    for_seconds: int = 0
    keep_firing_for_seconds: int = 0
    severity: str = "warning"
    channel: str | None = None
    target: str = "stable"
    no_data: str = "keep"
    no_data_after_seconds: int = 600
    anomaly_k: float = 4.0
    anomaly_window_seconds: int = 7 * 86400
    failure_limit: int = 3
    name: str | None = None
    min_coverage: float | None = None  # a quality rule judges the newest window with this share of labels back
    # set once stored
    id: int | None = None
    model_id: int | None = None
    origin: str = "slack"
    created_by: str | None = None
    created_at: datetime | None = None

    def identity(self) -> tuple[Any, ...]:
        """What makes two rules the same rule, whoever wrote them down and when."""
        return (self.model.lower(), *(getattr(self, f) for f in IDENTITY if f != "model"))

    def describe(self) -> str:
        if self.kind == "anomaly":
            what = f"{self.metric} anomalous (k {self.anomaly_k:g}, window {human(self.anomaly_window_seconds)})"
        elif self.baseline == "previous":
            offset = self.threshold or 0.0
            what = f"{self.metric} {self.op} previous{'' if offset == 0 else f'{offset:+g}'}"
        else:
            what = f"{self.metric} {self.op} {self.threshold:g}"
        extra = f" for {human(self.for_seconds)}" if self.for_seconds else ""
        if self.min_coverage is not None:
            extra += f" (windows with ≥ {self.min_coverage * 100:g}% labels)"
        return f"{what}{extra}"

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["created_at"] = iso(self.created_at)
        doc["description"] = self.describe()
        return doc


# the fields that say what a rule does (not who stored it, when, or under which id)
IDENTITY = tuple(f.name for f in fields(Rule) if f.name not in ("id", "model_id", "origin", "created_by",
                                                                 "created_at"))
# the columns of `alert_rules` the engine and the listings read back into a Rule
STORED = tuple(f.name for f in fields(Rule) if f.name != "model")


def parse_threshold(text: str) -> tuple[str, float]:
    """`0.8` → constant 0.8; `previous-0.02` → the previous version's value minus 0.02."""
    raw = str(text).strip().replace(" ", "")
    match = _PREVIOUS.match(raw)
    if match:
        offset = float(match.group(3) or 0.0) * (-1 if match.group(2) == "-" else 1)
        return "previous", offset
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"'{names.preview(str(text))}' is not a threshold: write a number like 0.85, or "
                           "previous-0.02 to compare with the previous version.") from None
    if not math.isfinite(value):
        raise InvalidInput(f"The threshold must be a finite number, not {names.preview(str(text))}.")
    return "constant", value


def parse_coverage(text: str, metric: str) -> float:
    """`50%` or `0.5` → 0.5: the share of a window's predictions whose labels must be back before a
    rule on a quality metric judges that window. Only quality metrics have labels to wait for."""
    if not is_label_based(metric) or metric == COVERAGE:
        raise InvalidInput(f"min-coverage applies to quality metrics (accuracy, f1, roc_auc, rmse, …), not "
                           f"{names.preview(metric)}.")
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= 1:
        raise InvalidInput(f"'{names.preview(str(text))}' is not a coverage: write a share of labels like 50% or 0.5.")
    return value


def parse_rule(
    model: str, environment: str, metric: str, *, kind: str = "threshold", op: str = ">", threshold: object = "0",
    for_: str | None = None, keep_firing_for: str | None = None, severity: str = "warning",
    channel: str | None = None, target: str = "stable", no_data: str = "keep", anomaly_k: float = 4.0,
    anomaly_window: str = "7d", failure_limit: int = 3, name: str | None = None, min_coverage: str | None = None,
) -> Rule:
    """A rule from the words people write (the file, a command, a CLI line). Checks shapes and
    ranges; whether the model, environment and metric exist is `AlertRules.add`'s business.
    A channel may still be a `#name` here: front ends look names up before adding."""
    names.model_name(model)
    names.key(metric, "metric")
    if kind not in KINDS:
        raise InvalidInput("A rule is a threshold (METRIC OP THRESHOLD) or `anomalous`.")
    if op not in OPS:
        raise InvalidInput(f"'{names.preview(op)}' is not a comparison: use one of {' '.join(OPS)}.")
    baseline, value = ("constant", None) if kind == "anomaly" else parse_threshold(str(threshold))
    if severity not in SEVERITIES:
        raise InvalidInput(f"Severity is warning or critical, not '{names.preview(severity)}'.")
    if target not in TARGETS:
        raise InvalidInput("A rule watches the stable version, the canary, or both.")
    if no_data not in NO_DATA:
        raise InvalidInput("no-data is keep, alert or ok.")
    if isinstance(anomaly_k, bool) or not (math.isfinite(anomaly_k) and 0 < anomaly_k <= 100):
        raise InvalidInput("k must be a number between 0 and 100, like 4.")
    window = whole_seconds(anomaly_window, "window", at_most=MAX_DURATION)
    if kind == "anomaly" and window < MIN_ANOMALY_WINDOW.total_seconds():
        raise InvalidInput("An anomaly window shorter than 1h has no baseline to speak of: use for example 7d.")
    if isinstance(failure_limit, bool) or not isinstance(failure_limit, int) or not 1 <= failure_limit <= 100:
        raise InvalidInput("failure-limit must be a whole number from 1 to 100.")
    if channel is not None and not channels.looks_like_channel(channel):
        raise InvalidInput(f"'{names.preview(channel)}' is not a channel: {channels.HINT}.")
    return Rule(
        model=model, environment=environment, metric=metric, kind=kind, op=op if kind == "threshold" else ">",
        threshold=value, baseline=baseline,
        for_seconds=whole_seconds(for_, "`for` duration", at_most=MAX_DURATION) if for_ else 0,
        keep_firing_for_seconds=whole_seconds(keep_firing_for, "keep_firing_for duration", at_most=MAX_DURATION)
        if keep_firing_for else 0,
        severity=severity, channel=channel, target=target, no_data=no_data, anomaly_k=float(anomaly_k),
        anomaly_window_seconds=window, failure_limit=failure_limit, name=names.short(name, "rule name", 128),
        min_coverage=parse_coverage(min_coverage, metric) if min_coverage is not None else None,
    )


def from_row(row: Any) -> Rule:
    """A rule from `queries.rule_rows(session, STORED)` (the model's name comes last)."""
    values = dict(zip(STORED, row[:-1], strict=True))
    if values["created_at"] is not None:
        values["created_at"] = as_utc(values["created_at"])
    return Rule(model=row[-1], **values)


class AlertRules:
    """Add, remove and list rules. Thread-safe (no state besides the registry)."""

    def __init__(self, registry: Registry, policy: Policy | None = None, groups: GroupResolver = no_groups) -> None:
        self.registry = registry
        self.policy = policy
        self.groups = groups

    def add(self, rule: Rule, *, actor: str, now: datetime, known_metrics: frozenset[str] | None = None) -> Rule:
        """Store `rule` (origin as given: a command's door, or `config`). `known_metrics`, when
        given, are the metrics some source reports for the model: a rule on any other never fires."""
        actor = names.actor(actor)
        env = names.environment(rule.environment, self.registry.environments)
        channel = channels.channel_id(rule.channel) if rule.channel else None
        if rule.origin not in ORIGINS:
            raise InvalidInput(f"'{names.preview(rule.origin)}' is not a rule origin.")
        with audit.refusals(self.registry, actor=actor, action="alert_rule_add", model=rule.model, environment=env,
                            subject=f"rule on {rule.metric}"[:128]):
            if rule.origin != CONFIG_ORIGIN:
                self._may_change(actor, "add alert rules")
            _check_metric(rule, known_metrics)
            with self.registry.writing() as session:
                model = self.registry.model_row(session, rule.model)
                assert model.id is not None
                count = queries.rule_count(session, model.id)
                if count >= MAX_RULES_PER_MODEL:
                    raise Conflict(f"{model.name} already has {count} rules; remove some first.")
                stored = replace(rule, model=model.name, model_id=model.id, environment=env, channel=channel,
                                 created_by=actor, created_at=now, id=None)
                values = {f: getattr(stored, f) for f in STORED if f != "id"}
                stored.id = queries.insert_rule(session, values)
                audit.record(session, at=now, actor=actor, action="alert_rule_add", model_id=model.id,
                             environment=env, subject=f"rule {stored.id}", reason=stored.describe())
                return stored

    def remove(self, rule_id: int | str, *, actor: str, now: datetime) -> Rule:
        """A command's removal: refused for rules from modelbot.toml (edit the file instead)."""
        number = rule_number(rule_id)
        actor = names.actor(actor)
        rule = self.get(number)
        with audit.refusals(self.registry, actor=actor, action="alert_rule_remove", model=rule.model,
                            environment=rule.environment, subject=f"rule {number}"):
            self._may_change(actor, "remove alert rules")
            return self._retire(number, actor=actor, now=now, from_config=False)

    def retire(self, rule_id: int, *, actor: str, now: datetime) -> Rule:
        """The file's removal (the rule left modelbot.toml, or was stored twice by two replicas)."""
        return self._retire(rule_id, actor=names.actor(actor), now=now, from_config=True)

    def get(self, rule_id: int) -> Rule:
        """An enabled rule; NotFound names the listing."""
        with self.registry.reading() as session:
            found = queries.rule_rows(session, STORED, rule_id=rule_id)
        if not found:
            raise NotFound(f"There is no alert rule {rule_id}: `/model alert list` shows them.")
        return from_row(found[0])

    def list(self, model: str | None = None, *, origin: str | None = None) -> list[Rule]:
        with self.registry.reading() as session:
            model_id = self.registry.model_row(session, model).id if model is not None else None
            return [from_row(r) for r in queries.rule_rows(session, STORED, model_id=model_id, origin=origin)]

    def _retire(self, number: int, *, actor: str, now: datetime, from_config: bool) -> Rule:
        with self.registry.writing() as session:
            found = queries.rule_rows(session, STORED, rule_id=number)
            if not found:
                raise NotFound(f"There is no alert rule {number}: `/model alert list` shows them.")
            rule = from_row(found[0])
            if rule.origin == CONFIG_ORIGIN and not from_config:
                raise Conflict(f"Rule #{number} comes from modelbot.toml: remove it there (it would come back at the "
                               "next evaluation otherwise).")
            queries.disable_rule(session, number)
            audit.record(session, at=now, actor=actor, action="alert_rule_remove", model_id=rule.model_id,
                         environment=rule.environment, subject=f"rule {number}", reason=rule.describe())
            return rule

    def _may_change(self, actor: str, what: str) -> None:
        require_deployer(self.policy, self.groups, actor, what)


def require_deployer(policy: Policy | None, groups: GroupResolver, actor: str, what: str) -> None:
    """Deployers and admins change alerting (the people the policy trusts with what serves).
    Resolves the policy's user groups: call it before a write transaction opens."""
    if policy is None:
        raise RuntimeError("deciding who may change alerting needs the policy")
    if not policy.roles(actor, groups).deployer:
        raise Forbidden(f"You may not {what}: only deployers ({policy.deployers.describe()}) and admins "
                        f"({policy.admins.describe()}) may.")


def _check_metric(rule: Rule, known: frozenset[str] | None) -> None:
    if known is None:
        return
    if not known:
        raise InvalidInput(f"No source has reported any metric for {names.preview(rule.model)} yet, so a rule could "
                           "never fire: connect a source ([[sources]] in modelbot.toml, or POST samples to /api/v1) "
                           "first, or write the rule in modelbot.toml ([[alerts.rules]]), where it waits for the data.")
    if rule.metric not in known:
        raise InvalidInput(f"No source reports a metric named {names.preview(rule.metric)}: known metrics are "
                           f"{', '.join(sorted(known)[:20])}.")


def rule_number(raw: int | str) -> int:
    text = str(raw).strip().lstrip("#")
    if not text.isdigit() or len(text) > 12:
        raise InvalidInput(f"'{names.preview(str(raw))}' is not a rule id: use the number from `/model alert list`.")
    return int(text)
