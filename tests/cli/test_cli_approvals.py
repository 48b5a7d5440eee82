"""The approval and canary commands of `modelbot` as CI/CD uses them (both backends).

request-promotion prints the request id alone; approve/reject follow the same rules as the
buttons; errors are one line on stderr, exit 2, and write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli.main import main
from storage.db import Database, DatabaseSettings
from storage.models import OutboxMessage
from storage.queries import registry as queries

POLICY = """
[roles]
admins = ["admin-bot"]
deployers = ["ci", "alice"]

[environments.staging]
approvals = 0

[environments.production]
approvals = 2
approvers = ["alice", "bob", "carol"]
approval_channel = "C0APPROVALS"
requires = "staging"
gates = ["auc >= current.auc - 0.005"]
"""


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `modelbot ARGS` in-process with the policy above; returns (code, stdout, stderr)."""
    policy = tmp_path / "modelbot.toml"
    policy.write_text(POLICY)
    monkeypatch.setenv("MODELBOT_DATABASE_URL", database_url)
    monkeypatch.setenv("MODELBOT_CONFIG", str(policy))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exited:  # argparse's own errors
            code = int(exited.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def counts(url: str) -> dict[str, int]:
    db = Database(DatabaseSettings(url=url))
    try:
        with db.read() as session:
            rows = queries.row_counts(session)
            rows["outbox"] = session.execute(sa.select(sa.func.count()).select_from(OutboxMessage)).scalar_one()
            return rows
    finally:
        db.dispose()


def seed(cli) -> None:  # type: ignore[no-untyped-def]
    for auc in ("0.90", "0.92", "0.80"):
        assert cli("register", "churn", "--artifact", "s3://m/churn", "--metric", f"auc={auc}")[0] == 0
    for v in ("1", "2", "3"):
        assert cli("request-promotion", "churn", v, "staging", "--actor", "ci")[0] == 0
    first = cli("request-promotion", "churn", "1", "production", "--actor", "ci")[1].strip()
    for approver in ("alice", "bob"):
        assert cli("approve", first, "--actor", approver)[0] == 0
    assert json.loads(cli("show", "churn", "@production", "--json")[1])["version"] == 1


def test_request_promotion_prints_the_id_and_two_approvals_move_production(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    code, out, err = cli("request-promotion", "churn", "2", "production", "--actor", "ci", "--reason", "better auc")
    assert (code, err) == (0, "") and out.strip().isdigit()
    request = out.strip()
    code, out, _ = cli("requests", "--pending", "--json")
    pending = json.loads(out)["requests"]
    assert [(r["id"], r["status"], r["approvals_needed"]) for r in pending] == [(int(request), "pending", 2)]
    assert "pending" in cli("requests", "--pending")[1]

    assert cli("approve", request, "--actor", "alice") == (0, f"request {request}: approval recorded, 1 of 2\n", "")
    assert cli("approve", request, "--actor", "alice")[0] == 0  # a retried CI step: the vote stands
    code, out, _ = cli("approve", request, "--actor", "bob", "--json")
    assert code == 0 and json.loads(out)["result"] == "approved"
    assert json.loads(cli("show", "churn", "@production", "--json")[1])["version"] == 2
    # decided: a late vote did not count, so it is an error for a script
    code, out, err = cli("approve", request, "--actor", "carol")
    assert code == 2 and out == "" and "already approved" in err and err.count("\n") == 1


def test_staging_moves_at_once_and_prints_the_move(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("register", "churn", "--artifact", "s3://m/churn")[0] == 0
    code, out, _ = cli("request-promotion", "churn", "1", "staging", "--actor", "ci")
    assert code == 0 and out == "churn staging promoted: nothing → v1\n"


def test_reject_needs_a_reason_and_decides(cli, database_url: str) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    request = cli("request-promotion", "churn", "2", "production", "--actor", "ci")[1].strip()
    code, _, err = cli("reject", request, "--actor", "alice")
    assert code == 2 and "--reason" in err
    assert cli("reject", request, "--actor", "alice", "--reason", "drift on tenure") == (
        0, f"request {request} rejected\n", "")
    assert json.loads(cli("requests", "--json")[1])["requests"][0]["decision_reason"] == "drift on tenure"


def test_failing_gate_needs_an_admin_override_with_a_reason(cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, defects 3 and 4, where they were found: a plain approval of a request whose gate
    fails is refused (not half-counted), and an admin's override given before the last approval
    stays with the request, so the remaining approval completes it."""
    seed(cli)
    request = cli("request-promotion", "churn", "3", "production", "--actor", "ci")[1].strip()  # auc 0.80 < 0.895
    code, _, err = cli("approve", request, "--actor", "alice")
    assert code == 2 and "A gate fails, so this cannot be approved: auc >= current.auc - 0.005" in err
    assert "An admin may override" in err
    code, _, err = cli("approve", request, "--actor", "bob", "--override-reason", "ship it")
    assert code == 2 and "Only an admin" in err
    code, out, _ = cli("approve", request, "--actor", "admin-bot", "--override-reason", "new features validated",
                       "--json")
    result = json.loads(out)
    assert code == 0 and result["result"] == "counted"
    assert result["request"]["override_by"] == "admin-bot" and result["request"]["override_at"]
    code, out, _ = cli("approve", request, "--actor", "alice", "--json")
    result = json.loads(out)
    assert code == 0 and result["result"] == "approved"
    assert "gate override: new features validated" in result["audit"]["reason"]
    events = json.loads(cli("history", "churn", "--env", "production", "--json")[1])["events"]
    assert [e["action"] for e in events][-6:] == [
        "promote_requested", "approve_refused", "override_refused", "override", "approve", "promote"]


def test_canary_start_abort_and_promote(cli) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    assert cli("canary", "churn", "2", "production", "5", "--actor", "ci") == (
        0, "churn production: canary v2 at 5 % beside stable v1\n", "")
    assert cli("canary", "churn", "2", "production", "25", "--actor", "ci")[1].endswith("at 25 % beside stable v1\n")
    state = json.loads(cli("show", "churn", "@production", "--json")[1])["environment"]
    assert (state["stable"], state["canary"], state["canary_weight"]) == (1, 2, 25)
    assert cli("canary-abort", "churn", "production", "--actor", "ci", "--reason", "errors") == (
        0, "churn production: no canary; stable v1 takes 100 %\n", "")
    assert cli("canary", "churn", "2", "production", "50", "--actor", "ci")[0] == 0
    code, out, _ = cli("canary-promote", "churn", "production", "--actor", "ci")
    assert code == 0 and out.strip().isdigit()
    assert cli("approve", out.strip(), "--actor", "alice")[0] == 0
    assert cli("approve", out.strip(), "--actor", "bob")[0] == 0
    state = json.loads(cli("show", "churn", "@production", "--json")[1])["environment"]
    assert (state["stable"], state["canary"], state["canary_weight"]) == (2, None, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["request-promotion", "churn", "2", "prod", "--actor", "ci"], "no environment 'prod'"),
        (["request-promotion", "churn", "9", "production", "--actor", "ci"], "no version 9"),
        (["approve", "abc", "--actor", "alice"], "not a request id"),
        (["approve", "999", "--actor", "alice"], "no request 999"),
        (["reject", "999", "--actor", "alice", "--reason", "x"], "no request 999"),
        (["canary", "churn", "2", "production", "0", "--actor", "ci"], "0 %"),
        (["canary", "churn", "2", "production", "100", "--actor", "ci"], "promotion"),
        (["canary", "churn", "2", "production", "150", "--actor", "ci"], "between 1 and 99"),
        (["canary", "churn", "2", "production", "abc", "--actor", "ci"], "not a percentage"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(cli, database_url: str, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    before = counts(database_url)
    code, out, err = cli(*args)
    assert code == 2 and out == "" and message in err, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("modelbot")
    assert counts(database_url) == before


@pytest.mark.parametrize(
    ("args", "message", "action"),
    [
        (["request-promotion", "churn", "2", "production", "--actor", "mallory"], "only deployers", "promote_refused"),
        (["canary", "churn", "2", "production", "5", "--actor", "mallory"], "only deployers", "canary_start_refused"),
        (["canary-abort", "churn", "production", "--actor", "ci"], "No canary is running", "canary_abort_refused"),
        (["canary-promote", "churn", "production", "--actor", "ci"], "No canary is running",
         "canary_promote_refused"),
        (["rollback", "churn", "production", "--to", "3", "--actor", "ci"], "never served production",
         "rollback_refused"),
    ],
)
def test_refusals_one_line_exit_2_and_one_audit_row(cli, database_url: str, args: list[str], message: str,
                                                    action: str) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    before = counts(database_url)
    code, out, err = cli(*args)
    assert code == 2 and out == "" and message in err, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("modelbot")
    assert counts(database_url) == {**before, "audit_events": before["audit_events"] + 1}
    last = json.loads(cli("history", "churn", "--json")[1])["events"][-1]
    assert last["action"] == action and message in last["reason"]


def test_non_approver_is_refused_and_audited(cli) -> None:  # type: ignore[no-untyped-def]
    seed(cli)
    request = cli("request-promotion", "churn", "2", "production", "--actor", "alice")[1].strip()
    code, _, err = cli("approve", request, "--actor", "mallory")
    assert code == 2 and "not an approver" in err
    code, _, err = cli("approve", request, "--actor", "alice")
    assert code == 2 and "yourself" in err
    events = json.loads(cli("history", "churn", "--env", "production", "--json")[1])["events"]
    assert [(e["action"], e["actor"]) for e in events if e["action"].endswith("_refused")] == [
        ("approve_refused", "mallory"), ("approve_refused", "alice")]


def test_an_unsatisfiable_policy_stops_start_up_at_its_line(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10, defect 12: two approvals with one possible approver could never be met."""
    policy = tmp_path / "unsatisfiable.toml"
    policy.write_text("[roles]\nadmins = []\n\n[environments.production]\napprovals = 2\napprovers = [\"alice\"]\n"
                      "allow_self_approval = false\napproval_channel = \"C0APPROVALS\"\n")
    monkeypatch.setenv("MODELBOT_CONFIG", str(policy))
    code, out, err = cli("requests")
    assert (code, out) == (2, "")
    assert err.startswith(f"modelbot: {policy}:5: approvals = 2 can never be met: at most 1 of the people who may "
                          "approve in [environments.production] (alice)"), err
    assert err.count("\n") == 1
