"""The `modelbot` CLI as CI scripts use it: stdout, stderr, exit codes, nothing written on error."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import main
from storage.db import Database, DatabaseSettings
from storage.queries import registry as queries


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `modelbot ARGS` in-process against the test database; returns (code, stdout, stderr)."""
    monkeypatch.setenv("MODELBOT_DATABASE_URL", database_url)

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
            return queries.row_counts(session)
    finally:
        db.dispose()


def test_acceptance_register_promote_rollback_history(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("register", "churn", "--artifact", "s3://b/churn/1", "--metric", "auc=0.91",
               "--metric", "f1=0.80") == (0, "1\n", "")
    assert cli("register", "churn", "--artifact", "s3://b/churn/2")[1] == "2\n"
    assert cli("promote", "churn", "1", "production", "--actor", "carol")[0] == 0
    assert cli("promote", "churn", "2", "production", "--actor", "alice")[0] == 0
    assert cli("rollback", "churn", "production", "--actor", "bob")[0] == 0
    _, out, _ = cli("show", "churn", "@production", "--json")
    state = json.loads(out)["environment"]
    assert (state["stable"], state["previous"]) == (1, 2)
    _, text, _ = cli("show", "churn", "@production")  # the serving state in text too
    assert text.splitlines()[1:4] == ["stable    v1    s3://b/churn/1", "canary    –",
                                      "previous  v2    s3://b/churn/2  kept warm: `rollback` switches back to it"]
    assert text.startswith("churn in production  (revision 3, updated ")
    _code, out, _ = cli("history", "churn", "--json")
    events = json.loads(out)["events"]
    assert [(e["action"], e["from_version"], e["to_version"], e["actor"]) for e in events] == [
        ("promote", None, 1, "carol"), ("promote", 1, 2, "alice"), ("rollback", 2, 1, "bob")]


def test_reads_have_tables_and_json(cli) -> None:  # type: ignore[no-untyped-def]
    cli("register", "churn", "--artifact", "s3://1", "--metric", "auc=0.9", "--metric", "loss=0.4",
        "--param", "depth=5")
    cli("register", "churn", "--artifact", "s3://2", "--metric", "auc=0.88", "--metric", "loss=0.3",
        "--param", "depth=7")
    code, out, _ = cli("compare", "churn", "1", "2")
    assert code == 0 and "▲" in out and "▼" in out and "depth" in out
    doc = json.loads(cli("compare", "churn", "1", "latest", "--json")[1])
    verdicts = {m["metric"]: m["deltas"]["v2"]["verdict"] for m in doc["metrics"]}
    assert verdicts == {"auc": "worse", "loss": "better"}
    assert json.loads(cli("list", "--json")[1])["models"][0]["name"] == "churn"
    assert cli("register", "CHURN", "--artifact", "s3://3") == (0, "3\n", "")  # names match in any case
    assert json.loads(cli("show", "Churn", "--json")[1])["model"] == "churn"
    assert [v["version"] for v in json.loads(cli("list", "churn", "--json")[1])["versions"]] == [3, 2, 1]
    assert json.loads(cli("show", "churn", "v1", "--json")[1])["params"] == {"depth": "5"}


BAD = [
    (["promote", "nope", "1", "production", "--actor", "a"], "no model named"),
    (["promote", "churn", "7", "production", "--actor", "a"], "no version 7"),
    (["promote", "churn", "1", "moon", "--actor", "a"], "no environment"),
    (["register", "churn", "--artifact", "s3://x", "--metric", "auc=abc"], "not a number"),
    (["register", "churn", "--artifact", "s3://x", "--metric", "=1"], "name is empty"),
    (["register", "churn", "--artifact", "s3://x", "--metric", "auc"], "has no '='"),
    (["register", "", "--artifact", "s3://x"], "empty"),
    (["register", "x" * 10_000, "--artifact", "s3://x"], "10000 characters"),
    (["register", "a/b", "--artifact", "s3://x"], "not a valid model name"),
    (["register", "a b", "--artifact", "s3://x"], "not a valid model name"),
    (["register", "a\x01b", "--artifact", "s3://x"], "not a valid model name"),
    (["register", "<!channel>", "--artifact", "s3://x"], "not a valid model name"),
    (["register", "churn", "--artifact", "s3://x", "--description", "d" * 100_000], "100,000 characters"),
    (["register", "churn"], "--artifact"),
    (["rollback", "churn", "production", "--actor", "a", "--to", "9"], "no version 9"),
    (["list", "churn", "--limit", "0"], "page size"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a)[:40] for a, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_written(cli, database_url: str, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    cli("register", "churn", "--artifact", "s3://b/churn/1")
    before = counts(database_url)
    code, out, err = cli(*args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and message in err
    assert len(err) < 400  # a 10,000-character name is not echoed back
    assert counts(database_url) == before


def test_bad_input_in_a_real_process(tmp_path: Path) -> None:
    """A real process: one line on stderr, nothing on stdout, exit status 2, no traceback."""
    env = {**os.environ, "MODELBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    assert run("register", "churn", "--artifact", "s3://x").stdout == "1\n"
    for args, message in [BAD[0], BAD[3], BAD[8], BAD[12], BAD[13], BAD[16]]:
        result = run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)


def test_locked_database_exits_1_after_timeout(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    env = {**os.environ, "MODELBOT_DATABASE_URL": f"sqlite:///{path}", "MODELBOT_DB_LOCK_TIMEOUT": "0.3"}
    subprocess.run([sys.executable, "-m", "bot.cli", "register", "churn", "--artifact", "s3://x"], env=env,
                   check=True, capture_output=True, timeout=60)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = subprocess.run([sys.executable, "-m", "bot.cli", "register", "churn", "--artifact", "s3://y"],
                                env=env, capture_output=True, text=True, timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "locked" in result.stderr
    assert counts(f"sqlite:///{path}")["model_versions"] == 1
