"""A small, realistic demo team so a newcomer can try every feature of modelbot without Slack or CI.

`modelbot shell --demo` runs with the demo's own policy (`demo_policy.toml`: four-eyes
production with two named approvers and an admin, staging immediate, a latency gate that
churn v3 fails, an approval channel, alert rules) and seeds a registry through the real
domain operations (`Registry.register`, `promote`, `rollback`), so the demo data obeys every
rule real data does and `history` tells a believable story: staged promotions, a regression
caught in production, a rollback. Monitoring samples run up to now, and fraud-detector's
error rate has been above its rule for the last half hour: the alert cycle is run over that
past (as the scheduler would have run it), so the incident is firing and its card is waiting
in the outbox when the shell opens.

Seeding is idempotent per model: a model that already exists is left untouched, so running
`--demo` again (or against a registry that has its own `churn`) never duplicates or
overwrites anything.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.domain.errors import NotFound
from bot.domain.registry import NewVersion, Registry

if TYPE_CHECKING:
    from bot.domain.policy import Policy
    from bot.services import Services

CI_ACTOR = "ci@github-actions"
HOURS_BETWEEN_EVENTS = 19  # spreads ~25 events over three weeks, ending shortly before now
POLICY_FILE = Path(__file__).with_name("demo_policy.toml")

# The demo's people and channels (their Slack ids are in demo_policy.toml): `/as alice` in the shell.
YOU = "U0SHELL"
PEOPLE: Mapping[str, str] = {"you": YOU, "alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL"}
ROLES: Mapping[str, str] = {"you": "deployer", "alice": "approves production", "bob": "approves production",
                            "carol": "admin"}
HOME_CHANNEL = "C0SHELL"
CHANNELS: Mapping[str, str] = {HOME_CHANNEL: "ml-team", "C0APPROVALS": "model-approvals",
                               "C0DEPLOYS": "model-deploys", "C0ALERTS": "model-alerts"}

# The live incident: fraud-detector's error rate in production, above its rule (> 0.02 for 5m).
INCIDENT_MODEL, INCIDENT_ENV, INCIDENT_METRIC = "fraud-detector", "production", "error_rate"
INCIDENT_STARTED = timedelta(minutes=35)
INCIDENT_STEP = timedelta(minutes=5)
# When the scheduler "ran" the alert cycle during the incident: pending, firing, then the card
# after group_wait (times before now).
ALERT_CYCLES = (timedelta(minutes=31), timedelta(minutes=25), timedelta(minutes=24))


@dataclass(frozen=True)
class DemoVersion:
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    dataset: str
    description: str
    by: str = CI_ACTOR


@dataclass(frozen=True)
class Move:
    """A pointer move after a given version is registered: promote (version set) or rollback."""

    after: int
    environment: str
    actor: str
    version: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class DemoModel:
    name: str
    team: str
    framework: str
    artifact_suffix: str
    versions: Sequence[DemoVersion]
    moves: Sequence[Move] = field(default_factory=tuple)


CHURN = DemoModel(
    name="churn", team="retention", framework="xgboost", artifact_suffix="model.xgb",
    versions=(
        DemoVersion(
            {"auc": 0.861, "f1": 0.702, "precision": 0.731, "recall": 0.675, "accuracy": 0.884,
             "log_loss": 0.312, "latency_p95_ms": 18.0},
            {"learning_rate": "0.1", "max_depth": "6", "n_estimators": "300", "subsample": "0.8"},
            "customers-2025-q1", "Baseline gradient-boosted churn model on 90-day activity features.",
        ),
        DemoVersion(
            {"auc": 0.874, "f1": 0.718, "precision": 0.745, "recall": 0.693, "accuracy": 0.889,
             "log_loss": 0.298, "latency_p95_ms": 19.5},
            {"learning_rate": "0.05", "max_depth": "6", "n_estimators": "500", "subsample": "0.8"},
            "customers-2025-q2", "Retrained on Q2 data with a lower learning rate.",
        ),
        DemoVersion(
            {"auc": 0.889, "f1": 0.731, "precision": 0.739, "recall": 0.724, "accuracy": 0.893,
             "log_loss": 0.287, "latency_p95_ms": 24.1},
            {"learning_rate": "0.05", "max_depth": "8", "n_estimators": "800", "subsample": "0.8"},
            "customers-2025-q2", "Deeper trees and support-ticket features: better recall, slower to score.",
            by="priya",
        ),
        DemoVersion(
            {"auc": 0.886, "f1": 0.729, "precision": 0.748, "recall": 0.711, "accuracy": 0.892,
             "log_loss": 0.289, "latency_p95_ms": 17.2},
            {"learning_rate": "0.05", "max_depth": "7", "n_estimators": "600", "subsample": "0.9"},
            "customers-2025-q3", "v3's features with shallower trees to get p95 latency back under 20 ms.",
        ),
    ),
    moves=(
        Move(1, "staging", "priya", 1),
        Move(1, "production", "marco", 1, "Initial launch after the Q1 offline evaluation."),
        Move(2, "staging", "priya", 2),
        Move(2, "production", "marco", 2, "AUC +0.013 on the Q2 holdout; shadow traffic looked clean."),
        Move(3, "staging", "priya", 3),
        Move(3, "production", "marco", 3, "Recall +3 points for the retention campaign."),
        Move(3, "production", "oncall-sre", None, "p95 scoring latency 31 ms in production, over the 25 ms SLO."),
        Move(4, "staging", "priya", 4, "Latency fix for v3; canary next week."),
    ),
)

FRAUD = DemoModel(
    name="fraud-detector", team="risk", framework="lightgbm", artifact_suffix="model.lgb",
    versions=tuple(
        DemoVersion(
            {"auc": auc, "precision": p, "recall": r, "f1": round(2 * p * r / (p + r), 4),
             "false_positive_rate": fpr, "latency_p95_ms": lat},
            {"learning_rate": lr, "num_leaves": leaves, "n_estimators": trees, "scale_pos_weight": "25"},
            dataset, description,
        )
        for auc, p, r, fpr, lat, lr, leaves, trees, dataset, description in (
            (0.932, 0.612, 0.701, 0.0041, 9.8, "0.1", "31", "400", "transactions-2025-05",
             "LightGBM on card-present and card-not-present transactions."),
            (0.941, 0.634, 0.722, 0.0038, 10.1, "0.08", "63", "600", "transactions-2025-06",
             "Adds merchant-category velocity features."),
            (0.944, 0.651, 0.718, 0.0033, 10.4, "0.08", "63", "800", "transactions-2025-07",
             "Threshold tuned for the new chargeback policy."),
            (0.952, 0.668, 0.739, 0.0031, 11.9, "0.05", "127", "1200", "transactions-2025-08",
             "Device-fingerprint features; reviewed by the risk committee."),
            (0.949, 0.674, 0.728, 0.0029, 8.7, "0.05", "63", "1000", "transactions-2025-09",
             "Smaller model for the new scoring hosts."),
        )
    ),
    moves=(
        Move(2, "staging", "dana", 2),
        Move(2, "production", "dana", 2, "Quarterly refresh."),
        Move(4, "staging", "dana", 4),
        Move(4, "production", "kenji", 4, "Approved by the risk committee on 2025-09-02."),
        Move(5, "staging", "dana", 5),
    ),
)

LTV = DemoModel(
    name="ltv.regressor", team="growth", framework="scikit-learn", artifact_suffix="model.joblib",
    versions=(
        DemoVersion(
            {"rmse": 41.8, "mae": 23.9, "r2": 0.612, "mape": 0.284, "latency_p95_ms": 6.1},
            {"learning_rate": "0.1", "max_depth": "4", "n_estimators": "250", "loss": "squared_error"},
            "orders-2025-h1", "12-month customer lifetime value, GradientBoostingRegressor.",
        ),
        DemoVersion(
            {"rmse": 38.2, "mae": 22.4, "r2": 0.655, "mape": 0.261, "latency_p95_ms": 6.4},
            {"learning_rate": "0.05", "max_depth": "5", "n_estimators": "500", "loss": "squared_error"},
            "orders-2025-h1", "Adds first-30-day basket features.",
        ),
        DemoVersion(
            {"rmse": 39.0, "mae": 20.7, "r2": 0.648, "mape": 0.238, "latency_p95_ms": 6.3},
            {"learning_rate": "0.05", "max_depth": "5", "n_estimators": "500", "loss": "huber"},
            "orders-2025-h2", "Huber loss: fewer large misses on whales, slightly worse RMSE.",
        ),
    ),
    moves=(
        Move(1, "production", "lea", 1, "First LTV model for bid optimisation."),
        Move(2, "staging", "lea", 2),
        Move(2, "production", "lea", 2, "RMSE −3.6 on the holdout."),
        Move(3, "staging", "lea", 3),
    ),
)

SEARCH = DemoModel(
    name="search-ranker", team="search", framework="pytorch", artifact_suffix="model.pt",
    versions=tuple(
        DemoVersion(
            {"ndcg_10": ndcg, "mrr": mrr, "recall_100": rec, "loss": loss, "latency_p95_ms": lat},
            {"learning_rate": lr, "hidden_dim": hidden, "epochs": epochs, "batch_size": "1024"},
            dataset, description,
        )
        for ndcg, mrr, rec, loss, lat, lr, hidden, epochs, dataset, description in (
            (0.412, 0.388, 0.861, 0.702, 41.0, "3e-4", "256", "8", "clicks-2025-w30",
             "Two-tower retrieval + MLP re-ranker."),
            (0.431, 0.401, 0.874, 0.668, 43.5, "3e-4", "384", "10", "clicks-2025-w34",
             "Wider re-ranker, hard-negative mining."),
            (0.447, 0.415, 0.879, 0.641, 47.2, "2e-4", "384", "14", "clicks-2025-w38",
             "Query-intent features from the new taxonomy."),
            (0.452, 0.409, 0.883, 0.633, 38.9, "2e-4", "384", "14", "clicks-2025-w42",
             "Distilled re-ranker: faster, NDCG on par."),
        )
    ),
    moves=(
        Move(2, "production", "sam", 2, "A/B test: +1.8% search conversion."),
        Move(3, "staging", "sam", 3),
        Move(3, "production", "sam", 3),
        Move(4, "staging", "sam", 4, "Distilled model, waiting for the load test."),
    ),
)

DEMO_MODELS: tuple[DemoModel, ...] = (CHURN, FRAUD, LTV, SEARCH)


class _DemoClock:
    """Hands the registry past timestamps so the demo reads like three weeks of real work."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self) -> None:
        self.now += timedelta(hours=HOURS_BETWEEN_EVENTS)


def _digest(*parts: object, length: int) -> str:
    """Deterministic ids (run ids, commits, fingerprints): the same on every machine."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:length]


def missing_models(registry: Registry) -> list[DemoModel]:
    missing = []
    for model in DEMO_MODELS:
        try:
            registry.get_model(model.name)
        except NotFound:
            missing.append(model)
    return missing


def demo_policy() -> Policy:
    """The demo's policy, parsed by the same loader (and checks) as a team's modelbot.toml."""
    from bot.config.policy_file import load_policy

    return load_policy(POLICY_FILE, required=True)


def seed(services: Services, *, now: datetime | None = None) -> list[str]:
    """Seed the demo models that do not exist yet; returns the names it created."""
    now = now or services.clock()
    total_events = sum(len(m.versions) + len(m.moves) for m in DEMO_MODELS)
    clock = _DemoClock(now - timedelta(hours=HOURS_BETWEEN_EVENTS * (total_events + 1)))
    registry = Registry(services.db, environments=services.registry.environments, clock=clock)
    created = []
    for model in missing_models(registry):
        _seed_model(registry, model, clock)
        _seed_samples(registry, model, now)
        created.append(model.name)
    if INCIDENT_MODEL in created:
        _replay_alert_cycles(services, now)
    return created


def _seed_samples(registry: Registry, model: DemoModel, now: datetime) -> None:
    """A week of hourly monitoring samples per environment up to now, so `/model status`, digests
    and alert rules have something to show; for the incident's series, five-minute samples over
    the last hour, the error rate climbing past the rule. Deterministic (seeded by the model name)."""
    from bot.domain.monitoring.samples import SampleIn, Samples

    rng = random.Random(model.name)
    samples = Samples(registry)
    for env in ("staging", "production"):
        version = registry.environment_state(model.name, env).stable
        if version is None:
            continue
        spec = model.versions[version - 1]
        base_quality = spec.metrics.get("accuracy", spec.metrics.get("auc", 0.9))
        base_latency = spec.metrics.get("latency_p95_ms", 40.0)
        incident = (model.name, env) == (INCIDENT_MODEL, INCIDENT_ENV)
        batch = []
        for hour in range(7 * 24, -1, -1):
            at = now - timedelta(hours=hour)
            daily = math.sin(2 * math.pi * at.hour / 24)
            quality = (_regression_hour(rng, spec.metrics["rmse"]) if "rmse" in spec.metrics else
                       {"accuracy": base_quality - 0.004 * hour / 168 + rng.gauss(0, 0.002)})
            values = {
                **quality,
                "latency_p95_ms": base_latency * (1 + 0.25 * daily) + rng.gauss(0, 1.5),
                "error_rate": max(0.0, 0.004 + 0.002 * daily + rng.gauss(0, 0.001)),
                "drift_share": max(0.0, 0.05 + 0.1 * (1 - hour / 168) + rng.gauss(0, 0.02)),
                "up": 0.0 if (env == "production" and hour in (30, 31)) else 1.0,
            }
            if incident and hour <= 1:
                del values[INCIDENT_METRIC]  # the five-minute series below covers the last hour
            batch.extend(SampleIn(model.name, env, metric, value, at, version=version)
                         for metric, value in values.items())
        if incident:
            batch.extend(_incident_samples(model.name, env, version, now, rng))
        samples.record(batch, source="demo")


def _incident_samples(model: str, env: str, version: int, now: datetime, rng: random.Random) -> list[object]:
    """The error rate every five minutes over the last hour: normal, then from INCIDENT_STARTED
    ago rising to about 3.5 % (the rule fires above 2 %)."""
    from bot.domain.monitoring.samples import SampleIn

    out = []
    steps = int(timedelta(hours=1) / INCIDENT_STEP)
    for i in range(steps, -1, -1):
        at = now - i * INCIDENT_STEP
        into = now - INCIDENT_STARTED
        value = 0.004 + rng.gauss(0, 0.0008) if at < into else min(0.036, 0.024 + (at - into) / timedelta(hours=1)
                                                                  * 0.03) + rng.gauss(0, 0.001)
        out.append(SampleIn(model, env, INCIDENT_METRIC, max(0.0, value), at, version=version))
    return out


def _replay_alert_cycles(services: Services, now: datetime) -> None:
    """Run the alert cycle at the past moments the scheduler would have run it during the
    incident, so its state, its incident group and its card are exactly what they would be."""
    from bot.config.alerts import alert_config, sync_rules
    from bot.jobs.alerting import build_engine

    config = alert_config(services.policy)
    for ago in ALERT_CYCLES:
        at = now - ago
        sync_rules(services.registry, config, at)
        build_engine(services, config, clock=lambda at=at: at).evaluate()


def _regression_hour(rng: random.Random, rmse: float) -> dict[str, float]:
    """A regressor's hour: 60 predictions around their labels, scored by the monitoring maths
    (MAE, RMSE, R², MAPE as scikit-learn defines them)."""
    from bot.domain.monitoring.regression import regression_report

    labels = [rng.gammavariate(3.0, 40.0) for _ in range(60)]
    predictions = [y + rng.gauss(0, rmse) for y in labels]
    return regression_report(labels, predictions).metrics()


def _seed_model(registry: Registry, model: DemoModel, clock: _DemoClock) -> None:
    for number, spec in enumerate(model.versions, start=1):
        commit = _digest(model.name, number, "commit", length=40)
        registry.register(
            NewVersion(
                model=model.name,
                artifact_uri=f"s3://acme-ml-models/{model.name}/v{number}/{model.artifact_suffix}",
                actor=spec.by,
                metrics=dict(spec.metrics),
                params=dict(spec.params),
                tags={"team": model.team, "framework": model.framework, "dataset": spec.dataset},
                run_id=_digest(model.name, number, "run", length=32),
                source=f"git+https://github.com/acme/ml-models@{commit}",
                dataset_fingerprint="sha256:" + _digest(spec.dataset, length=16),
                description=spec.description,
            )
        )
        clock.advance()
        for move in (m for m in model.moves if m.after == number):
            if move.version is None:
                registry.rollback(model.name, move.environment, actor=move.actor, reason=move.reason)
            else:
                registry.promote(model.name, str(move.version), move.environment, actor=move.actor,
                                 reason=move.reason)
            clock.advance()
