"""Operations without Slack through the `modelbot` CLI: tokens, alerts, silences, acknowledgements
and subscriptions — the same domain decisions as in Slack, each audited, refusals included."""

from __future__ import annotations

import json

import pytest

from storage.db import Database, DatabaseSettings
from storage.queries import audit as audit_queries
from tests.cli.test_cli import cli  # noqa: F401  (the fixture)


def audit_rows(url: str) -> list[tuple[str, str, str | None]]:
    db = Database(DatabaseSettings(url=url))
    try:
        with db.read() as session:
            return [(r.actor, r.action, r.subject) for r in reversed(audit_queries.recent(session, limit=100))]
    finally:
        db.dispose()


def test_token_rotate_keeps_the_name_and_revoked_names_come_back(cli, database_url: str) -> None:  # noqa: F811
    code, secret, _ = cli("token", "create", "--name", "ci-churn", "--scopes", "read,versions:write", "--actor", "ops")
    assert code == 0 and secret.startswith("mbt_")
    code, out, err = cli("token", "create", "--name", "ci-churn", "--scopes", "read", "--actor", "ops")
    assert (code, out) == (2, "")
    assert err == ("modelbot: A token named ci-churn is active: `modelbot token rotate ci-churn` gives it a new "
                   "secret, or revoke it first.\n")
    code, out, _ = cli("token", "rotate", "ci-churn", "--actor", "ops", "--json")
    rotated = json.loads(out)
    assert code == 0 and rotated["name"] == "ci-churn" and rotated["scopes"] == ["read", "versions:write"]
    assert rotated["token"] != secret.strip() and rotated["revoked"]["revoked_at"] is not None
    assert cli("token", "revoke", "ci-churn", "--actor", "ops")[1] == "token ci-churn revoked\n"
    code, _, err = cli("token", "rotate", "ci-churn", "--actor", "ops")
    assert code == 2 and "Token ci-churn was revoked at" in err and "modelbot token create --name ci-churn" in err
    assert cli("token", "create", "--name", "ci-churn", "--scopes", "read", "--actor", "ops")[0] == 0
    listing = json.loads(cli("token", "list", "--json")[1])["tokens"]
    assert [(t["name"], t["revoked_at"] is None) for t in listing] == [
        ("ci-churn", True), ("ci-churn", False), ("ci-churn", False)]
    assert audit_rows(database_url) == [
        ("ops", "token_create", "token ci-churn"), ("ops", "token_create_refused", "token ci-churn"),
        ("ops", "token_rotate", "token ci-churn"), ("ops", "token_revoke", "token ci-churn"),
        ("ops", "token_rotate_refused", "token ci-churn"), ("ops", "token_create", "token ci-churn")]


@pytest.mark.parametrize(("args", "message"), [
    (["token", "rotate", "nobody"], "There is no token named nobody: `modelbot token list` shows them."),
    (["token", "create", "--name", "<!channel>", "--scopes", "read"], "is not a token name"),
    (["token", "create", "--name", "ci", "--scopes", "read,root"], "Unknown scope root"),
])
def test_token_bad_input_changes_nothing(cli, database_url: str, args: list[str], message: str) -> None:  # noqa: F811
    code, out, err = cli(*args)
    assert (code, out) == (2, "") and message in err and len(err.splitlines()) == 1
    assert audit_rows(database_url) == []


POLICY = """
[roles]
admins = ["admin"]
deployers = ["dave", "admin"]

[alerts]
channel = "C0ALERTS"
"""


@pytest.fixture
def ops(cli, database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # noqa: F811
    """The CLI under a policy with roles, a model whose error rate breaches a rule (alert 1 fires)."""
    from datetime import UTC, datetime, timedelta

    from bot.config.settings import Settings
    from bot.domain.alerting.engine import AlertEngine, AlertSettings
    from bot.domain.monitoring.samples import SampleIn, Samples
    from bot.services import open_services

    policy = tmp_path / "modelbot.toml"
    policy.write_text(POLICY)
    monkeypatch.setenv("MODELBOT_CONFIG", str(policy))
    assert cli("register", "churn", "--artifact", "s3://m/1")[0] == 0
    services = open_services(Settings(database_url=database_url, config_path=policy))
    Samples(services.registry).record([SampleIn("churn", "production", "error_rate", 0.09, datetime.now(UTC))],
                                      source="test")
    services.close()
    assert cli("alert", "add", "churn", "error_rate", ">", "0.05", "critical", "--actor", "dave")[0] == 0
    services = open_services(Settings(database_url=database_url, config_path=policy))
    AlertEngine(services.registry, AlertSettings(default_channel="C0ALERTS", group_wait=timedelta(0))).evaluate()
    services.close()
    return cli


def test_alerts_without_slack(ops, database_url: str) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = ops("alerts")
    assert code == 0 and "firing" in out and "churn" in out and "0.09 > 0.05" in out
    firing = json.loads(ops("alerts", "--json")[1])["firing"]
    assert [(a["alert"], a["metric"], a["severity"]) for a in firing] == [(1, "error_rate", "critical")]
    rules = json.loads(ops("alert", "list", "churn", "--json")[1])["rules"]
    assert [(r["id"], r["description"], r["origin"], r["created_by"]) for r in rules] == [
        (1, "error_rate > 0.05", "cli", "dave")]
    assert ops("ack", "1", "--actor", "bob")[2] == ("modelbot: You may not acknowledge alerts: only deployers "
                                                     "(dave, admin) and admins (admin) may.\n")
    assert ops("ack", "1", "--actor", "dave")[1] == "alert 1 acknowledged\n"
    assert ops("ack", "1", "--actor", "admin")[1] == "alert 1 was already acknowledged by dave\n"
    silenced = json.loads(ops("silence", "churn@production", "2h", "--reason", "retraining", "--actor", "dave",
                              "--json")[1])
    assert (silenced["model"], silenced["environment"], silenced["reason"]) == ("churn", "production", "retraining")
    assert "retraining" in ops("silences")[1]
    assert json.loads(ops("alerts", "--json")[1])["silenced"][0]["metric"] == "error_rate"
    assert ops("unsilence", str(silenced["id"]), "--actor", "admin")[1] == f"silence {silenced['id']} ended; " \
                                                                          "notifications resume\n"
    assert ops("alert", "rm", "1", "--actor", "dave")[1] == "rule 1 removed: error_rate > 0.05\n"
    assert [action for _, action, _ in audit_rows(database_url) if action.startswith("alert")] == [
        "alert_rule_add", "alert_ack_refused", "alert_ack", "alert_silence", "alert_unsilence", "alert_rule_remove"]


@pytest.mark.parametrize(("args", "message"), [
    (["silence", "churn", "45d", "--actor", "dave"], "Silences last at most 30 days"),
    (["silence", "churn@moon", "1h", "--actor", "dave"], "There is no environment 'moon'"),
    (["alert", "add", "churn", "error_rate", "=>", "1", "--actor", "dave"], "is not a comparison"),
    (["alert", "add", "churn", "error_rate", ">", "1"], "alert add needs --actor NAME"),
    (["ack", "99", "--actor", "dave"], "There is no alert 99"),
    (["subscribe", "churn", "#ml-team", "daily", "--actor", "dave"], "cannot look up #ml-team without a Slack"),
    (["subscribe", "churn", "C0MODELS", "fortnightly", "--actor", "dave"], "is not a channel, frequency"),
])
def test_bad_input_changes_nothing(ops, database_url: str, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    before = audit_rows(database_url)
    code, out, err = ops(*args)
    assert out == "" and message in err and len(err.splitlines()) == 1
    assert code == (1 if "without a Slack" in message else 2)  # no Slack to ask is the environment's failure
    assert audit_rows(database_url) == before


def test_subscriptions_by_role_and_channel_names_through_slack(ops, database_url: str,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.slack_fake import SlackFake

    assert "Only deployers (dave, admin) and admins (admin) may subscribe a channel" in ops(
        "subscribe", "churn", "C0MODELS", "daily", "--actor", "bob")[2]
    with SlackFake(channels={"C0MLTEAM": {"name": "ml-team"}}) as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
        monkeypatch.setenv("MODELBOT_SLACK_API_URL", slack.api_url)
        code, out, _ = ops("subscribe", "churn", "#ML-Team", "daily", "09:30", "Europe/Berlin", "--actor", "dave",
                           "--json")
        assert code == 0 and json.loads(out)["channel"] == "C0MLTEAM" and json.loads(out)["created"]
        assert "There is no public channel named #nope" in ops("subscribe", "churn", "#nope", "daily", "--actor",
                                                               "dave")[2]
        listed = json.loads(ops("subscriptions", "#ml-team", "--json")[1])["subscriptions"]
        assert [(s["model"], s["at"], s["timezone"], s["created_by"]) for s in listed] == [
            ("churn", "09:30", "Europe/Berlin", "dave")]
        assert "only they or an admin may remove it" in ops("unsubscribe", "churn", "#ml-team", "--actor", "bob")[2]
        assert ops("unsubscribe", "churn", "#ml-team", "--actor", "admin")[0] == 0
    assert [a for _, a, _ in audit_rows(database_url) if "subscri" in a] == [
        "subscribe_refused", "subscribe", "unsubscribe_refused", "unsubscribe"]
