"""Parity matrix for alerts, subscriptions and tokens (issue 10 defects 9–11, the alert actions of
its rule book, and issue 12's operations without Slack): each case through every door that
offers it — signed Slack HTTP, the shell, the CLI, REST — with the same outcome, database state
and audit rows, on SQLite and PostgreSQL.

Every cell's model: v1 and v2 registered, v2 serving production with v1 before it. Alert cases
add the rule `error_rate > 0.05` and a sample of 0.09, and evaluate once, so an alert fires and
its card (Acknowledge, Silence, Roll back to v1) is posted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.domain.alerting.actions import AlertActions
from bot.domain.alerting.engine import AlertEngine, AlertSettings
from bot.domain.alerting.rules import AlertRules, parse_rule
from bot.domain.monitoring.samples import SampleIn, Samples
from bot.domain.policy import default_policy
from bot.domain.schedule import Schedule
from bot.domain.subscriptions import Subscriptions
from bot.domain.tokens import SCOPES, Tokens
from storage.models import AlertGroup, ApiToken, AuditEvent, RegisteredModel, Subscription
from tests.parity.doors import DOORS, PERSONAS, Cell, Persona, World, both, running_world
from tests.parity.operation_acts import (
    DIGEST_CHANNEL,
    DIGEST_CHANNEL_NAME,
    Acknowledge,
    AddRule,
    ReadModel,
    RemoveRule,
    RollBackFromCard,
    RotateToken,
    SilenceAlerts,
    Subscribe,
    Unsilence,
    Unsubscribe,
    token_name,
)
from tests.parity.table import Case, Expect, Setup, run_case

POLICY = f"""
[roles]
admins = {both("admin")}
deployers = {both("alice", "dave", "admin")}

[environments.staging]
approvals = 0

[environments.production]
approvals = 0

[alerts]
channel = "C0ALERTS"
"""
EVERY_SCOPE = ",".join(SCOPES)
PUSHER, READER = "pusher", "reader"  # tokens of the token cases: metrics:write only, and read only
# every persona's token holds every scope (alerts:write included), so the policy's roles decide
OPS_PERSONAS = {**{name: Persona(p.name, p.slack_id, EVERY_SCOPE) for name, p in PERSONAS.items()},
                PUSHER: Persona(PUSHER, "U0PUSHER", "metrics:write"), READER: Persona(READER, "U0READER", "read")}

REST_HAS_NO_SUBSCRIPTIONS = {"rest": "the REST API has no subscription routes (digests are set up in Slack, the "
                                     "shell or the CLI)"}
DM_IS_SLACK_ONLY = {"cli": "a DM digest goes to a Slack user; the CLI acts as a name", **REST_HAS_NO_SUBSCRIPTIONS}
RULES_NOT_IN_REST = {"rest": "alert rules are written in Slack, the shell, the CLI or modelbot.toml; REST lists them"}
CARD_ONLY = {"shell": "the Roll back button is on the alert card; the shell rolls back with `rollback`",
             "cli": "the Roll back button is on the alert card; the CLI rolls back with `modelbot rollback`",
             "rest": "the Roll back button is on the alert card; REST rolls back with POST …/rollback"}
TOKENS_ARE_REST = {"slack": "API tokens act only on the REST API", "shell": "API tokens act only on the REST API",
                   "cli": "API tokens act only on the REST API"}
ROTATE_IS_CLI = {"slack": "tokens are managed with `modelbot token`", "shell": "tokens are managed with `modelbot token`",
                 "rest": "tokens are managed with `modelbot token`"}


# ---- setups (through the domain, as the door under test knows the personas) ---------------------------------


def base(s: Setup) -> None:
    s.versions(0.90, 0.92)
    s.serve(1, "production")
    s.serve(2, "production")


def with_(*steps: Callable[[Setup], None]) -> Callable[[Setup], None]:
    def setup(s: Setup) -> None:
        base(s)
        for step in steps:
            step(s)
    return setup


def subscribed(who: str) -> Callable[[Setup], None]:
    def step(s: Setup) -> None:
        Subscriptions(s.services.registry, s.services.policy).subscribe(
            model=s.cell.model, channel=DIGEST_CHANNEL, schedule=Schedule("daily"), actor=s.cell.me(who))
    return step


def firing(s: Setup) -> None:
    """A rule on the model, a breach, one evaluation: the alert fires and its card is posted."""
    services, model = s.services, s.cell.model
    now = services.clock()
    Samples(services.registry).record([SampleIn(model, "production", "error_rate", 0.09, now, 2)], source="parity")
    AlertRules(services.registry, services.policy).add(
        parse_rule(model, "production", "error_rate", op=">", threshold="0.05"), actor=PERSONAS["admin"].slack_id,
        now=now)
    AlertEngine(services.registry, AlertSettings(default_channel="C0ALERTS", group_wait=timedelta(0))).evaluate()


def silenced(who: str) -> Callable[[Setup], None]:
    def step(s: Setup) -> None:
        AlertActions(s.services.registry, s.services.policy).silence(
            s.cell.model, "production", "2h", actor=s.cell.me(who), now=s.services.clock(), reason="parity")
    return step


def acknowledged(who: str) -> Callable[[Setup], None]:
    def step(s: Setup) -> None:
        actions = AlertActions(s.services.registry, s.services.policy)
        actions.acknowledge(_alert(s.cell), actor=s.cell.me(who), now=s.services.clock())
    return step


def ended(s: Setup) -> None:
    actions = AlertActions(s.services.registry, default_policy())
    from tests.parity.operation_acts import silence_number

    actions.unsilence(silence_number(s.cell), actor="setup", now=s.services.clock())


def promoted_meanwhile(s: Setup) -> None:
    """Someone moved production after the card was posted: the card is stale."""
    s.versions(0.93)
    s.serve(3, "production")


def token(s: Setup) -> None:
    Tokens(s.services.registry).create(token_name(s.cell), "read,metrics:write", actor="setup",
                                       now=s.services.clock())


# ---- checks on the cell beyond the audit rows ------------------------------------------------------------------


def _alert(cell: Cell) -> int:
    from tests.parity.operation_acts import alert_number

    return alert_number(cell)


def digests(*expected: tuple[str, str, str]) -> Callable[[Cell], None]:
    """The model's subscriptions as (target, time, subscriber), targets and people as persona names."""
    def check(cell: Cell) -> None:
        with cell.services.db.read() as session:
            rows = session.execute(sa.select(Subscription.channel, Subscription.at_time, Subscription.created_by)
                                   .join(RegisteredModel, RegisteredModel.id == Subscription.model_id)
                                   .where(RegisteredModel.name_key == cell.model.lower())
                                   .order_by(Subscription.id)).all()
        assert [(cell._who(t), at, cell._who(by)) for t, at, by in rows] == list(expected)
    return check


def acknowledged_by(who: str | None) -> Callable[[Cell], None]:
    def check(cell: Cell) -> None:
        with cell.services.db.read() as session:
            by = session.execute(sa.select(AlertGroup.acknowledged_by).where(AlertGroup.id == _alert(cell))).scalar()
        assert cell._who(by) == who
    return check


def silences(count: int) -> Callable[[Cell], None]:
    def check(cell: Cell) -> None:
        now = cell.services.clock()
        assert len(AlertActions(cell.services.registry).silences(now, cell.model)) == count
    return check


def rules(count: int) -> Callable[[Cell], None]:
    def check(cell: Cell) -> None:
        assert len(AlertRules(cell.services.registry).list(cell.model)) == count
    return check


def serving(version: int) -> Callable[[Cell], None]:
    def check(cell: Cell) -> None:
        assert cell.services.registry.environment_state(cell.model, "production").stable == version
    return check


def rotated(cell: Cell) -> None:
    """One active token of the name (a new secret), the old one revoked, one audit row."""
    name = token_name(cell)
    with cell.services.db.read() as session:
        states = session.execute(sa.select(ApiToken.revoked_at.is_(None)).where(ApiToken.name == name)  # type: ignore[union-attr]
                                 .order_by(ApiToken.id)).scalars().all()
        rows = session.execute(sa.select(AuditEvent.actor, AuditEvent.action).where(
            AuditEvent.subject == f"token {name}").order_by(AuditEvent.id)).all()
    assert states == [False, True]
    assert [(cell._who(a), action) for a, action in rows] == [("setup", "token_create"), ("admin", "token_rotate")]


CASES = [
    # ---- subscriptions (defect 9) ---------------------------------------------------------------------------
    Case("subscribe-channel-deployer", base, (Subscribe("alice"),), Expect("done", "daily"), ("subscribe",),
         not_offered=REST_HAS_NO_SUBSCRIPTIONS, then=digests((DIGEST_CHANNEL, "09:00", "alice"))),
    Case("subscribe-channel-not-deployer", base, (Subscribe("bob"),),
         Expect("refused", "Only deployers (alice, alice, dave, dave, admin, admin) and admins (admin, admin) may "
                           "subscribe a channel to digests"),
         ("subscribe_refused",), not_offered=REST_HAS_NO_SUBSCRIPTIONS, then=digests()),
    Case("subscribe-own-dm", base, (Subscribe("bob", dm=True),), Expect("done", "daily"),
         ("subscribe",), not_offered=DM_IS_SLACK_ONLY, then=digests(("bob", "09:00", "bob"))),
    Case("change-someone-elses-digest", with_(subscribed("alice")), (Subscribe("dave", at="07:00"),),
         Expect("refused", "was set up by alice: only they or an admin may change it"), ("subscribe_refused",),
         not_offered=REST_HAS_NO_SUBSCRIPTIONS, then=digests((DIGEST_CHANNEL, "09:00", "alice"))),
    Case("change-own-digest", with_(subscribed("alice")), (Subscribe("alice", at="07:00"),),
         Expect("done", "07:00"), ("subscription_change",), not_offered=REST_HAS_NO_SUBSCRIPTIONS,
         then=digests((DIGEST_CHANNEL, "07:00", "alice"))),
    Case("unsubscribe-someone-elses", with_(subscribed("alice")), (Unsubscribe("dave"),),
         Expect("refused", "was set up by alice: only they or an admin may remove it"), ("unsubscribe_refused",),
         not_offered=REST_HAS_NO_SUBSCRIPTIONS, then=digests((DIGEST_CHANNEL, "09:00", "alice"))),
    Case("unsubscribe-by-admin", with_(subscribed("alice")), (Unsubscribe("admin"),), Expect("done", "daily"),
         ("unsubscribe",), not_offered=REST_HAS_NO_SUBSCRIPTIONS, then=digests()),
    Case("unsubscribe-own", with_(subscribed("alice")), (Unsubscribe("alice"),), Expect("done", "daily"),
         ("unsubscribe",), not_offered=REST_HAS_NO_SUBSCRIPTIONS, then=digests()),
    # ---- alert actions by a non-deployer and a deployer (the rule book) ----------------------------------------
    Case("ack-not-deployer", with_(firing), (Acknowledge("bob"),),
         Expect("refused", "You may not acknowledge alerts: only deployers"), ("alert_ack_refused",),
         then=acknowledged_by(None)),
    Case("ack", with_(firing), (Acknowledge("alice"),), Expect("done"), ("alert_ack",),
         then=acknowledged_by("alice")),
    Case("ack-twice", with_(firing, acknowledged("alice")), (Acknowledge("dave"),),
         Expect("unchanged", "already"), (), then=acknowledged_by("alice")),
    Case("silence-not-deployer", with_(firing), (SilenceAlerts("bob"),),
         Expect("refused", "You may not silence alerts: only deployers"), ("alert_silence_refused",),
         then=silences(0)),
    Case("silence", with_(firing), (SilenceAlerts("dave"),), Expect("done", "ilenced"), ("alert_silence",),
         then=silences(1)),
    Case("silence-too-long", with_(firing), (SilenceAlerts("dave", duration="45d"),),
         Expect("invalid", "Silences last at most 30 days"), (), then=silences(0)),
    Case("unsilence-not-deployer", with_(firing, silenced("alice")), (Unsilence("bob"),),
         Expect("refused", "You may not end silences: only deployers"), ("alert_unsilence_refused",),
         then=silences(1)),
    Case("unsilence", with_(firing, silenced("alice")), (Unsilence("dave"),), Expect("done"),
         ("alert_unsilence",), then=silences(0)),
    Case("unsilence-ended", with_(firing, silenced("alice"), ended), (Unsilence("dave"),),
         Expect("refused", "has already ended"), ("alert_unsilence_refused",), then=silences(0)),
    Case("rule-add-not-deployer", with_(firing), (AddRule("bob"),),
         Expect("refused", "You may not add alert rules: only deployers"), ("alert_rule_add_refused",),
         not_offered=RULES_NOT_IN_REST, then=rules(1)),
    Case("rule-add", with_(firing), (AddRule("alice"),), Expect("done", "error_rate > 0.2 for 5m"),
         ("alert_rule_add",), not_offered=RULES_NOT_IN_REST, then=rules(2)),
    Case("rule-remove-not-deployer", with_(firing), (RemoveRule("bob"),),
         Expect("refused", "You may not remove alert rules"), ("alert_rule_remove_refused",),
         not_offered=RULES_NOT_IN_REST, then=rules(1)),
    Case("rule-remove", with_(firing), (RemoveRule("dave"),), Expect("done", "error_rate > 0.05"), ("alert_rule_remove",),
         not_offered=RULES_NOT_IN_REST, then=rules(0)),
    Case("roll-back-from-card", with_(firing), (RollBackFromCard("alice"),), Expect("done"), ("rollback",),
         not_offered=CARD_ONLY, then=serving(1)),
    Case("roll-back-from-card-not-deployer", with_(firing), (RollBackFromCard("bob"),), Expect("refused"),
         ("rollback_refused",), not_offered=CARD_ONLY, then=serving(2)),
    Case("roll-back-from-stale-card", with_(firing, promoted_meanwhile), (RollBackFromCard("alice"),),
         Expect("refused", "changed since the alert: it serves v3 now, not v2. Nothing was rolled back."),
         ("alert_rollback_refused",), not_offered=CARD_ONLY, then=serving(3)),
    # ---- tokens (defects 10 and 11) ---------------------------------------------------------------------------
    Case("read-without-the-read-scope", base, (ReadModel(PUSHER),),
         Expect("invalid", f"Token {PUSHER} lacks the scope read"), (), not_offered=TOKENS_ARE_REST),
    Case("read-with-the-read-scope", base, (ReadModel(READER),), Expect("done", '"name": "M"'), (),
         not_offered=TOKENS_ARE_REST),
    Case("token-rotate", with_(token), (RotateToken("admin"),), Expect("done", "tok-"), (), not_offered=ROTATE_IS_CLI,
         then=rotated),
]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(request.param, POLICY, tmp_path_factory.mktemp("parity-ops"), personas=OPS_PERSONAS) as started:
        started.slack.add_channel(DIGEST_CHANNEL, name=DIGEST_CHANNEL_NAME)
        started.slack.add_channel("C0ALERTS", name="alerts")
        yield started


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_operations_parity(world: World, case: Case) -> None:
    run_case(world, case)


def test_the_table_names_each_case_once_and_only_real_doors() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    for case in CASES:
        assert set(case.not_offered) <= {d.name for d in DOORS}, case.id
