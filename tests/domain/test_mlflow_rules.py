"""The sync's rules on MLflow answers a live server cannot easily produce (no server needed).

`MemoryMlflow` stands in for the MLflow tracking server at the domain's protocol
(`bot.domain.mlflow.source.MlflowRegistry`), the way `ListSource` does for the import: a
version still PENDING_REGISTRATION, a version number modelbot already used, a worker that died
between MLflow's answer and its bookkeeping. The end-to-end behaviour against a real
`mlflow server` is in test_mlflow_sync.py.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from bot.domain.deployments import Deployments
from bot.domain.mlflow.inbound import Delivery, MlflowSync
from bot.domain.mlflow.outbound import KIND, AliasWriter, NotInMlflow
from bot.domain.mlflow.settings import SECTION, SyncSettings
from bot.domain.mlflow.source import MlflowModel, MlflowNotFound, MlflowRun, MlflowVersion
from bot.domain.mlflow.state import alias_states
from bot.domain.policy import EnvironmentPolicy, Policy
from bot.domain.registry import NewVersion, Registry
from storage.db import Database
from storage.models import AuditEvent, OutboxMessage


class MemoryMlflow:
    """An MLflow registry in memory: models, versions, runs and aliases, and every write it was asked for."""

    def __init__(self) -> None:
        self.models: dict[str, MlflowModel] = {}
        self.versions: dict[tuple[str, int], MlflowVersion] = {}
        self.runs: dict[str, MlflowRun] = {}
        self.writes: list[tuple[str, str, str, int | None]] = []

    def add(self, name: str, number: int, *, status: str = "READY", auc: float = 0.9,
            tags: dict[str, str] | None = None) -> None:
        self.models.setdefault(name, MlflowModel(name, None, None, None))
        run = f"run-{name}-{number}"
        self.runs[run] = MlflowRun(run, metrics={"auc": auc}, params={"depth": "4"})
        self.versions[(name, number)] = MlflowVersion(
            name=name, version=number, created_at=datetime(2026, 12, 1, tzinfo=UTC), updated_at=None, user_id=None,
            description=None, source=f"s3://m/{name}/{number}", run_id=run, run_link=None, storage_location=None,
            status=status, status_message=None, current_stage="None", tags=dict(tags or {}))

    def move(self, name: str, alias: str, version: int | None) -> None:
        """An alias moved in MLflow directly (its UI, a script)."""
        aliases = dict(self.models[name].aliases)
        if version is None:
            aliases.pop(alias, None)
        else:
            aliases[alias] = version
        self.models[name] = dataclasses.replace(self.models[name], aliases=aliases)

    # ---- the protocol ----------------------------------------------------------------------

    def search_registered_models(self) -> Iterator[MlflowModel]:
        return iter(list(self.models.values()))

    def get_registered_model(self, name: str) -> MlflowModel | None:
        return self.models.get(name)

    def search_model_versions(self, name: str) -> list[MlflowVersion]:
        return sorted((v for (n, _), v in self.versions.items() if n == name), key=lambda v: v.version)

    def get_run(self, run_id: str) -> MlflowRun | None:
        return self.runs.get(run_id)

    def get_model_version(self, name: str, version: int) -> MlflowVersion | None:
        return self.versions.get((name, version))

    def set_alias(self, name: str, alias: str, version: int) -> None:
        if (name, version) not in self.versions:
            raise MlflowNotFound(f"registered-models/alias: RESOURCE_DOES_NOT_EXIST {name} v{version}")
        self.writes.append(("set", name, alias, version))
        self.move(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.writes.append(("delete", name, alias, None))
        self.move(name, alias, None)


SETTINGS = SyncSettings(tracking_uri="http://mlflow.test", aliases={"staging": "staging", "production": "champion"},
                        new_version_channel="C0MODELS", models=("churn*",))
POLICY = Policy(environments={"staging": EnvironmentPolicy("staging"),
                              "production": EnvironmentPolicy("production", approval_channel="C0APPROVALS")},
                sections={SECTION: {"tracking_uri": "http://mlflow.test"}})


@dataclasses.dataclass
class World:
    db: Database
    registry: Registry
    deployments: Deployments
    mlflow: MemoryMlflow

    def sync(self, moves: str = "report") -> MlflowSync:
        settings = dataclasses.replace(SETTINGS, external_moves=moves)
        return MlflowSync(self.registry, POLICY, settings, self.mlflow)

    def writer(self) -> AliasWriter:
        return AliasWriter(self.registry, SETTINGS, self.mlflow)

    def alias_rows(self, status: str = "pending") -> list[OutboxMessage]:
        with self.db.read() as session:
            return list(session.execute(sa.select(OutboxMessage).where(
                OutboxMessage.kind == KIND, OutboxMessage.status == status).order_by(OutboxMessage.id)).scalars())

    def send_alias_rows(self) -> list[Any]:
        """What the delivery worker does with each alias row, in order."""
        results = []
        for row in self.alias_rows():
            results.append(self.writer().apply(row.id, row.data))  # type: ignore[arg-type]
            with self.db.write() as session:
                session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == row.id).values(status="delivered"))
        return results

    def audit(self, action: str) -> list[AuditEvent]:
        with self.db.read() as session:
            return list(session.execute(sa.select(AuditEvent).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.id)).scalars())

    def posts(self, template: str) -> list[OutboxMessage]:
        with self.db.read() as session:
            return list(session.execute(sa.select(OutboxMessage).where(OutboxMessage.template == template)).scalars())


@pytest.fixture
def world(db: Database) -> World:
    registry = Registry(db)
    return World(db, registry, Deployments(registry, POLICY), MemoryMlflow())


def delivery(event: str, **data: Any) -> Delivery:
    return Delivery(delivery_id=str(uuid.uuid4()), event=event, data=data)


def test_a_number_modelbot_already_gave_out_is_a_conflict_never_overwritten(world: World) -> None:
    world.registry.register(NewVersion(model="churn", artifact_uri="s3://own/1", actor="alice"))
    world.mlflow.add("churn", 1)
    outcome = world.sync().receive(delivery("model_version.created", name="churn", version="1"))
    assert outcome.created == [] and "registered in modelbot, not in MLflow" in outcome.summary()
    assert world.registry.show("churn", "1").artifact_uri == "s3://own/1" and world.posts("mlflow_new_version") == []


def test_a_pending_registration_comes_in_once_ready_and_gets_one_card(world: World) -> None:
    world.mlflow.add("churn-a", 1, status="PENDING_REGISTRATION")
    first = world.sync().receive(delivery("model_version.created", name="churn-a", version="1"))
    assert first.created == [] and "comes in once it is READY" in first.summary()
    world.mlflow.add("churn-a", 1)
    assert world.sync().poll().errors == []
    again = world.sync().poll()
    assert world.registry.show("churn-a", "1").metrics == {"auc": 0.9} and again.outcomes[0].created == []
    assert len(world.posts("mlflow_new_version")) == 1


def test_tags_follow_mlflow_without_touching_metrics(world: World) -> None:
    world.mlflow.add("churn", 1, tags={"team": "risk"})
    world.sync().receive(delivery("model_version.created", name="churn", version="1"))
    world.mlflow.add("churn", 1, tags={"team": "growth"}, auc=0.1)  # the run's metric changed too: not read again
    outcome = world.sync().receive(delivery("model_version_tag.set", name="churn", version="1", key="team",
                                            value="growth"))
    version = world.registry.show("churn", "1")
    assert outcome.updated == [1] and version.tags == {"team": "growth"} and version.metrics == {"auc": 0.9}


def test_canary_start_step_and_abort_write_the_canary_alias_and_models_not_followed_are_skipped(world: World) -> None:
    for n in (1, 2):
        world.mlflow.add("churn", n)
        world.sync().receive(delivery("model_version.created", name="churn", version=str(n)))
    world.deployments.request_promotion("churn", "1", "production", requester="alice")
    world.deployments.set_canary("churn", "2", "production", 5, actor="alice")
    world.deployments.set_canary("churn", None, "production", 25, actor="alice")
    world.deployments.abort_canary("churn", "production", actor="alice")
    world.registry.register(NewVersion(model="fraud", artifact_uri="s3://f/1", actor="ci"))
    world.deployments.request_promotion("fraud", "1", "production", requester="alice")
    results = world.send_alias_rows()
    assert world.mlflow.writes == [("set", "churn", "champion", 1), ("set", "churn", "champion-canary", 2),
                                   ("delete", "churn", "champion-canary", None)]
    assert results[-1].skipped == "fraud is not among the models MLflow sync follows (churn*)"
    assert [(e.to_version, e.reason) for e in world.audit("mlflow_alias_set")] == [
        (1, "MLflow alias champion → v1 (promote by alice)"),
        (2, "MLflow alias champion-canary → v2 (canary_start by alice)")]
    assert [e.reason for e in world.audit("mlflow_alias_deleted")] == [
        "MLflow alias champion-canary → deleted (canary_abort by alice)"]


def v2_requested_after_v1_was_written(world: World) -> None:
    """churn v1 and v2 came from MLflow; v1 was promoted and its alias written; v2's write waits."""
    for n in (1, 2):
        world.mlflow.add("churn", n)
        world.sync().receive(delivery("model_version.created", name="churn", version=str(n)))
    world.deployments.request_promotion("churn", "1", "production", requester="alice")
    world.send_alias_rows()
    world.deployments.request_promotion("churn", "2", "production", requester="alice")


def test_a_write_redone_after_a_crash_is_audited_once(world: World) -> None:
    v2_requested_after_v1_was_written(world)
    (row,) = world.alias_rows()
    world.mlflow.set_alias("churn", "champion", 2)  # the first attempt reached MLflow, then the worker died
    for _ in range(2):  # the lease ran out: another worker sends it, and (unknowingly) once more
        result = world.writer().apply(row.id, row.data, retried=True)  # type: ignore[arg-type]
        assert result.written == () and result.unchanged[0].version == 2
    assert [e.to_version for e in world.audit("mlflow_alias_set")] == [1, 2]


def test_a_version_only_modelbot_has_cannot_become_an_alias(world: World) -> None:
    world.mlflow.add("churn", 1)
    world.sync().receive(delivery("model_version.created", name="churn", version="1"))
    world.registry.register(NewVersion(model="churn", artifact_uri="s3://own/2", actor="alice"))
    world.deployments.request_promotion("churn", "2", "staging", requester="alice")
    (row,) = world.alias_rows()
    with pytest.raises(NotInMlflow, match="churn v2 does not exist in MLflow"):
        world.writer().apply(row.id, row.data)  # type: ignore[arg-type]


@pytest.mark.parametrize(("moves", "alias", "to", "expected"), [
    ("accept", "champion-canary", 1, "not accepted: a canary needs a traffic weight"),
    ("accept", "champion", None, "not accepted: modelbot cannot take an environment out of service"),
    ("revert", "staging", 1, "not accepted: modelbot has nothing in staging to put back"),
])
def test_external_moves_modelbot_cannot_follow_are_reported(world: World, moves: str, alias: str, to: int | None,
                                                             expected: str) -> None:
    world.mlflow.add("churn", 1)
    world.sync().receive(delivery("model_version.created", name="churn", version="1"))
    world.deployments.request_promotion("churn", "1", "production", requester="alice")
    world.send_alias_rows()
    world.mlflow.move("churn", alias, to)
    outcome = world.sync(moves).receive(delivery("model_version_alias.created", name="churn", alias=alias))
    assert expected in outcome.summary()
    (row,) = world.audit("mlflow_external_move")
    assert row.actor == "mlflow-external" and expected in (row.reason or "")
    assert world.registry.environment_state("churn", "production").stable == 1 and world.alias_rows() == []
    assert len(world.posts("mlflow_external_move")) == 1


def test_aliases_are_not_judged_while_modelbot_is_still_writing_them(world: World) -> None:
    v2_requested_after_v1_was_written(world)
    world.mlflow.move("churn", "champion", 2)  # our write reached MLflow; its webhook is faster than our bookkeeping
    outcome = world.sync().receive(delivery("model_version_alias.created", name="churn", alias="champion"))
    assert "still being sent" in outcome.summary() and world.audit("mlflow_external_move") == []
    world.send_alias_rows()
    assert world.sync().poll().outcomes[0].external == []


def test_first_sight_of_an_alias_that_agrees_is_remembered_quietly_and_show_says_so(world: World) -> None:
    world.mlflow.add("churn", 1)
    world.sync().receive(delivery("model_version.created", name="churn", version="1"))
    world.deployments.request_promotion("churn", "1", "production", requester="alice")
    world.mlflow.move("churn", "champion", 1)  # already there, set by someone before modelbot followed it
    with world.db.write() as session:  # the write row was never needed: MLflow already agrees
        session.execute(sa.update(OutboxMessage).where(OutboxMessage.kind == KIND).values(status="delivered"))
    assert world.sync().poll().outcomes[0].external == []
    (state,) = alias_states(world.registry, SETTINGS, "churn", "production")
    assert state.describe() == "MLflow alias champion → v1 ✓"
    world.mlflow.move("churn", "champion", None)
    assert "was deleted outside modelbot: production stays at v1" in world.sync().poll().outcomes[0].summary()
    (state,) = alias_states(world.registry, SETTINGS, "churn", "production")
    assert state.status == "drift" and "not set, but production serves v1" in state.describe()
