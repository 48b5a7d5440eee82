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
