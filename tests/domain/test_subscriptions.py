"""`/model subscribe|unsubscribe|subscriptions`: the grammar, validation with clear errors, one
digest per (channel, model, frequency), and next-run times in the subscriber's zone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot import commands, handlers
from bot.commands.subscriptions import ListSubscriptions, Subscribe, Unsubscribe
from bot.domain import subscriptions as subs_module
from bot.domain.errors import Forbidden, InvalidInput, NotFound, Unavailable
from bot.domain.policy import Members, default_policy
from bot.domain.registry import NewVersion
from bot.domain.schedule import Schedule
from bot.domain.subscriptions import Subscriptions
from bot.services import Services
from bot.slack.channels import SlackChannelResolver
from bot.slack.client import make_web_client
from storage.queries import audit as audit_queries
from tests.jobs.support import make_services
from tests.slack_fake import SlackFake

NOW = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)
ALICE = handlers.Actor("U0ALICE", "C0GENERAL")


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    services = make_services(database_url, clock=lambda: NOW)
    services.registry.register(NewVersion(model="churn", artifact_uri="s3://m/churn/1", actor="ci"))
    yield services
    services.close()


def run(services: Services, text: str, actor: handlers.Actor = ALICE) -> str:
    return handlers.run_text(services, actor, text).text


# ---- grammar -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("subscribe churn daily", Subscribe("churn", "daily")),
    ("subscribe churn daily 9:30 europe/berlin",
     Subscribe("churn", "daily", at_time="09:30", timezone="Europe/Berlin")),
    ("subscribe * <#C0MODELS|models> weekly fri 16:00 America/New_York",
     Subscribe("*", "weekly", channel="C0MODELS", at_time="16:00", weekday=4, timezone="America/New_York")),
    ("subscribe all 07:15 UTC hourly C0ALERTS1", Subscribe("*", "hourly", channel="C0ALERTS1", at_time="07:15",
                                                           timezone="UTC")),
    ("unsubscribe churn <#C0MODELS>", Unsubscribe("churn", channel="C0MODELS")),
    ("unsubscribe * daily", Unsubscribe("*", frequency="daily")),
    ("subscriptions", ListSubscriptions()),
    ("digests all", ListSubscriptions(everywhere=True)),
    ("subscribe churn #ML-Team daily", Subscribe("churn", "daily", channel="#ml-team")),
    ("subscribe churn #C0MODELS daily", Subscribe("churn", "daily", channel="C0MODELS")),
    ("subscribe churn DM daily", Subscribe("churn", "daily", channel="dm")),
    ("unsubscribe churn me", Unsubscribe("churn", channel="dm")),
    ("subscriptions dm", ListSubscriptions(channel="dm")),
])
def test_grammar(text: str, expected: commands.Command) -> None:
    assert commands.parse(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("subscribe churn", "Say how often: daily, weekly or hourly"),
    ("subscribe churn daily 25:00", "'25:00' is not a time of day: write HH:MM from 00:00 to 23:59"),
    ("subscribe churn daily Berlin", "Time zones are IANA names (an IANA time zone name such as Europe/Berlin"),
    ("subscribe churn daily fri", "A weekday only goes with weekly digests"),
    ("subscribe churn daily hourly", "gives the frequency a second time"),
    ("subscribe churn #general #random daily", "gives the channel a second time"),
    ("subscribe churn <#general> daily", "pick it with # in Slack so it becomes a link, or give its id"),
    ("subscribe <!channel> daily", "is not a valid model name"),
])
def test_grammar_errors_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(commands.UsageError) as raised:
        commands.parse(text)
    assert message in raised.value.message
    assert raised.value.usage and raised.value.usage.startswith(f"/model {text.split()[0]}")


def test_help_lists_the_subscription_commands() -> None:
    usages = [usage for usage, _ in commands.help_lines()]
    assert "/model subscribe MODEL|* [#channel|dm] daily|weekly|hourly [DAY] [HH:MM] [TZ]" in usages
    assert "/model subscriptions [#channel|dm|all]" in usages


# ---- domain through the handlers -------------------------------------------------------------


def test_subscribe_defaults_to_this_channel_and_shows_the_next_run_in_its_zone(services: Services) -> None:
    text = run(services, "subscribe churn daily 09:00 Europe/Berlin")
    assert text == ("Subscribed <#C0GENERAL>: daily digest of *churn*, daily at 09:00 Europe/Berlin. "
                    "Next: Sun 29 Mar 09:00 CEST.")
    (view,) = Subscriptions(services.registry, services.policy).list_all()
    assert (view.channel, view.model, view.created_by) == ("C0GENERAL", "churn", "U0ALICE")
    assert view.next_run(NOW) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    listing = run(services, "subscriptions")
    assert listing == "Digests in this channel: 1"
    blocks = handlers.run_text(services, ALICE, "subscriptions").blocks
    assert "next Sun 29 Mar 09:00 CEST" in str(blocks)


def test_one_digest_per_channel_model_and_frequency(services: Services) -> None:
    run(services, "subscribe churn daily 09:00 Europe/Berlin")
    changed = run(services, "subscribe CHURN daily 07:30 Asia/Tokyo")
    assert changed.startswith("Changed the digest in <#C0GENERAL>")
    run(services, "subscribe churn weekly")
    run(services, "subscribe churn <#C0MODELS|models> daily")
    views = Subscriptions(services.registry, services.policy).list_all()
    assert sorted((v.channel, v.schedule.frequency, v.schedule.at_time, v.schedule.timezone) for v in views) == [
        ("C0GENERAL", "daily", "07:30", "Asia/Tokyo"), ("C0GENERAL", "weekly", "09:00", "UTC"),
        ("C0MODELS", "daily", "09:00", "UTC")]
    assert "Stopped 2 digests" in run(services, "unsubscribe churn")
    assert [v.channel for v in Subscriptions(services.registry, services.policy).list_all()] == ["C0MODELS"]


def test_unknown_model_and_missing_subscription_are_clear(services: Services) -> None:
    with pytest.raises(NotFound, match="There is no model named 'fraud'"):
        run(services, "subscribe fraud daily")
    with pytest.raises(NotFound, match="<#C0GENERAL> has no daily digest of churn"):
        run(services, "unsubscribe churn daily")
    assert "no digests in <#C0GENERAL> yet" in run(services, "subscriptions")


def test_every_model_and_no_channel_outside_slack(services: Services) -> None:
    run(services, "subscribe * hourly 00:15")
    (view,) = Subscriptions(services.registry, services.policy).list_all()
    assert view.all_models and view.schedule.describe() == "hourly at :15"
    with pytest.raises(InvalidInput, match="Name the channel"):
        run(services, "subscribe churn daily", handlers.Actor("cli-user", None))


def test_changes_notify_the_scheduler(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(subs_module, "CHANGE_LISTENERS", [lambda: calls.append("changed")])
    run(services, "subscribe churn daily")
    run(services, "unsubscribe churn daily")
    assert calls == ["changed", "changed"]


# ---- roles (issue 10, defect 9) ------------------------------------------------------------------

DEPLOYER, OTHER_DEPLOYER, ADMIN = handlers.Actor("U0DEPLOY", "C0GENERAL"), handlers.Actor("U0DEPLOY2", "C0GENERAL"), \
    handlers.Actor("U0ADMIN", "C0GENERAL")


@pytest.fixture
def roles(database_url: str) -> Iterator[Services]:
    policy = replace(default_policy(), deployers=Members(("U0DEPLOY", "U0DEPLOY2")), admins=Members(("U0ADMIN",)))
    services = make_services(database_url, clock=lambda: NOW, policy=policy)
    services.registry.register(NewVersion(model="churn", artifact_uri="s3://m/churn/1", actor="ci"))
    yield services
    services.close()


def audit_rows(services: Services) -> list[tuple[str, str, str | None]]:
    with services.registry.reading() as session:
        return [(r.actor, r.action, r.subject) for r in reversed(audit_queries.recent(session, limit=50))
                if r.action != "register"]


def test_only_deployers_and_admins_subscribe_a_channel(roles: Services) -> None:
    with pytest.raises(Forbidden, match=r"Only deployers \(U0DEPLOY, U0DEPLOY2\) and admins \(U0ADMIN\) may "
                                        r"subscribe a channel.*`subscribe MODEL daily dm` sends one to you"):
        run(roles, "subscribe churn daily")
    assert Subscriptions(roles.registry, roles.policy).list_all() == []
    assert audit_rows(roles) == [("U0ALICE", "subscribe_refused", "digests of C0GENERAL")]
    assert run(roles, "subscribe churn daily", DEPLOYER).startswith("Subscribed <#C0GENERAL>")
    assert run(roles, "subscribe * weekly <#C0MODELS|models>", ADMIN).startswith("Subscribed <#C0MODELS>")
    assert [a for _, a, _ in audit_rows(roles)] == ["subscribe_refused", "subscribe", "subscribe"]


def test_anyone_manages_their_own_dm_digest_and_nobody_elses(roles: Services) -> None:
    assert run(roles, "subscribe churn daily dm").startswith("Subscribed the DM of <@U0ALICE>")
    in_a_dm = handlers.Actor("U0BOB", "D0BOBDM")
    assert run(roles, "subscribe churn weekly", in_a_dm).startswith("Subscribed the DM of <@U0BOB>")
    assert sorted((v.channel, v.created_by) for v in Subscriptions(roles.registry, roles.policy).list_all()) == [
        ("U0ALICE", "U0ALICE"), ("U0BOB", "U0BOB")]
    assert run(roles, "subscriptions dm") == "Digests in your DM: 1"
    with pytest.raises(Forbidden, match="you may subscribe your own DM"):  # not even an admin, for someone else
        Subscriptions(roles.registry, roles.policy).subscribe(model="churn", channel="U0BOB", actor="U0ADMIN",
                                                              schedule=Schedule("daily"))
    assert "Stopped 1 digest" in run(roles, "unsubscribe churn dm")
    assert "Stopped 1 digest" in run(roles, "unsubscribe churn dm", in_a_dm)
    assert Subscriptions(roles.registry, roles.policy).list_all() == []


def test_only_the_subscriber_or_an_admin_changes_or_removes_a_digest(roles: Services) -> None:
    run(roles, "subscribe churn daily", DEPLOYER)
    before = Subscriptions(roles.registry, roles.policy).list_all()
    with pytest.raises(Forbidden, match="The daily digest of churn to <#C0GENERAL> was set up by U0DEPLOY: only "
                                        "they or an admin may remove it"):
        run(roles, "unsubscribe churn", OTHER_DEPLOYER)
    with pytest.raises(Forbidden, match="only they or an admin may change it"):
        run(roles, "subscribe churn daily 07:00", OTHER_DEPLOYER)
    with pytest.raises(Forbidden, match="only they or an admin may remove it"):  # a DM digest's owner is no admin
        run(roles, "unsubscribe churn #C0GENERAL")
    assert Subscriptions(roles.registry, roles.policy).list_all() == before  # nothing changed
    assert run(roles, "subscribe churn daily 07:00", DEPLOYER).startswith("Changed the digest")
    assert "Stopped 1 digest" in run(roles, "unsubscribe churn", ADMIN)
    (view,) = before
    subject = f"subscription {view.id}"
    assert audit_rows(roles) == [
        ("U0DEPLOY", "subscribe", subject), ("U0DEPLOY2", "unsubscribe_refused", "digests of C0GENERAL"),
        ("U0DEPLOY2", "subscribe_refused", "digests of C0GENERAL"),
        ("U0ALICE", "unsubscribe_refused", "digests of C0GENERAL"),
        ("U0DEPLOY", "subscription_change", subject), ("U0ADMIN", "unsubscribe", subject)]


def test_channel_names_are_looked_up_in_slack_before_the_domain(roles: Services) -> None:
    with pytest.raises(Unavailable, match="cannot look up #ml-team without a Slack connection"):
        run(roles, "subscribe churn #ml-team daily", DEPLOYER)
    with SlackFake(channels={"C0MLTEAM": {"name": "ml-team"}, "C0GENERAL": {"name": "general"}}) as slack:
        seconds = [0.0]
        roles.channels = SlackChannelResolver(make_web_client(slack.bot_token, slack.api_url),
                                              clock=lambda: seconds[0])
        assert run(roles, "subscribe churn #ML-Team daily", DEPLOYER).startswith("Subscribed <#C0MLTEAM>")
        with pytest.raises(NotFound, match="There is no public channel named #nope that I can see"):
            run(roles, "subscribe churn #nope daily", DEPLOYER)
        assert len(slack.calls_to("conversations.list")) == 1  # a typo does not page through the workspace
        slack.add_channel("C0NEW", name="nope")
        seconds[0] = 31.0  # a channel created since is found after a short while
        assert run(roles, "subscribe churn #nope daily", DEPLOYER).startswith("Subscribed <#C0NEW>")
        assert len(slack.calls_to("conversations.list")) == 2
    assert [v.channel for v in Subscriptions(roles.registry, roles.policy).list_all()] == ["C0MLTEAM", "C0NEW"]
