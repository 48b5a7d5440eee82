"""`/model subscribe|unsubscribe|subscriptions`: the grammar, validation with clear errors, one
digest per (channel, model, frequency), and next-run times in the subscriber's zone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot import commands, handlers
from bot.commands.subscriptions import ListSubscriptions, Subscribe, Unsubscribe
from bot.domain import subscriptions as subs_module
from bot.domain.errors import InvalidInput, NotFound
from bot.domain.registry import NewVersion
from bot.domain.subscriptions import Subscriptions
from bot.services import Services
from tests.jobs.support import make_services

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
])
def test_grammar(text: str, expected: commands.Command) -> None:
    assert commands.parse(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("subscribe churn", "Say how often: daily, weekly or hourly"),
    ("subscribe churn daily 25:00", "'25:00' is not a time of day: write HH:MM from 00:00 to 23:59"),
    ("subscribe churn daily Berlin", "Time zones are IANA names (an IANA time zone name such as Europe/Berlin"),
    ("subscribe churn daily fri", "A weekday only goes with weekly digests"),
    ("subscribe churn daily hourly", "gives the frequency a second time"),
    ("subscribe churn #general daily", "pick it with # in Slack so it becomes a link, or give its id"),
    ("subscribe <!channel> daily", "is not a valid model name"),
])
def test_grammar_errors_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(commands.UsageError) as raised:
        commands.parse(text)
    assert message in raised.value.message
    assert raised.value.usage and raised.value.usage.startswith(f"/model {text.split()[0]}")


def test_help_lists_the_subscription_commands() -> None:
    usages = [usage for usage, _ in commands.help_lines()]
    assert "/model subscribe MODEL|* [#channel] daily|weekly|hourly [DAY] [HH:MM] [TZ]" in usages
    assert "/model subscriptions [#channel|all]" in usages


# ---- domain through the handlers -------------------------------------------------------------


def test_subscribe_defaults_to_this_channel_and_shows_the_next_run_in_its_zone(services: Services) -> None:
    text = run(services, "subscribe churn daily 09:00 Europe/Berlin")
    assert text == ("Subscribed <#C0GENERAL>: daily digest of *churn*, daily at 09:00 Europe/Berlin. "
                    "Next: Sun 29 Mar 09:00 CEST.")
    (view,) = Subscriptions(services.registry).list_all()
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
    views = Subscriptions(services.registry).list_all()
    assert sorted((v.channel, v.schedule.frequency, v.schedule.at_time, v.schedule.timezone) for v in views) == [
        ("C0GENERAL", "daily", "07:30", "Asia/Tokyo"), ("C0GENERAL", "weekly", "09:00", "UTC"),
        ("C0MODELS", "daily", "09:00", "UTC")]
    assert "Stopped 2 digests" in run(services, "unsubscribe churn")
    assert [v.channel for v in Subscriptions(services.registry).list_all()] == ["C0MODELS"]


def test_unknown_model_and_missing_subscription_are_clear(services: Services) -> None:
    with pytest.raises(NotFound, match="There is no model named 'fraud'"):
        run(services, "subscribe fraud daily")
    with pytest.raises(NotFound, match="<#C0GENERAL> has no daily digest of churn"):
        run(services, "unsubscribe churn daily")
    assert "no digests in <#C0GENERAL> yet" in run(services, "subscriptions")


def test_every_model_and_no_channel_outside_slack(services: Services) -> None:
    run(services, "subscribe * hourly 00:15")
    (view,) = Subscriptions(services.registry).list_all()
    assert view.all_models and view.schedule.describe() == "hourly at :15"
    with pytest.raises(InvalidInput, match="Name the channel"):
        run(services, "subscribe churn daily", handlers.Actor("cli-user", None))


def test_changes_notify_the_scheduler(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(subs_module, "CHANGE_LISTENERS", [lambda: calls.append("changed")])
    run(services, "subscribe churn daily")
    run(services, "unsubscribe churn daily")
    assert calls == ["changed", "changed"]
