"""Configuration mistakes as an operator makes them (issue 11, defects 6 and 8), through the
`modelbot` program: one line on stderr naming what to fix, exit 2, no traceback, nothing
created; and the files modelbot does create are private to its user, whatever the umask.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.slack_support import REPO

SECRET = "pw-s3cret-9"


def modelbot(tmp_path: Path, *args: str, umask: int = 0o022, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `modelbot` script when there is one (the console entry point), else `python -m bot.cli`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MODELBOT_", "SLACK_", "MLFLOW_"))}
    script = shutil.which("modelbot", path=str(Path(sys.executable).parent))
    argv = [script] if script else [sys.executable, "-m", "bot.cli"]
    return subprocess.run([*argv, *args], cwd=tmp_path, env={**base, **env}, capture_output=True, text=True,
                          timeout=120, preexec_fn=lambda: os.umask(umask), check=False)


def one_line_exit_2(result: subprocess.CompletedProcess[str], *named: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("modelbot: ")
    for word in named:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("url", "named"), [
    ("garbage", ["MODELBOT_DATABASE_URL", "sqlite:///"]),
    ("sqlite://", ["in-memory", "sqlite:///modelbot.db"]),
    ("sqlite:///:memory:", ["in-memory"]),
    ("mysql://x/y", ["mysql", "SQLite and PostgreSQL"]),
    (f"mysql://admin:{SECRET}@db/modelbot", ["mysql", "admin:[redacted]@db"]),
    (f"postgresql+asyncpg://u:{SECRET}@h/db", ["asyncpg", "postgresql://"]),
    ("sqlite:////nonexistent-folder/x.db", ["/nonexistent-folder", "does not exist"]),
])
def test_a_database_url_that_cannot_work_is_one_line_and_exit_2(tmp_path: Path, url: str,
                                                                named: list[str]) -> None:
    result = modelbot(tmp_path, "list", MODELBOT_DATABASE_URL=url)
    line = one_line_exit_2(result, *named)
    assert SECRET not in line
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize(("env", "named"), [
    ({"MODELBOT_DB_LOCK_TIMEOUT": "soon"}, ["MODELBOT_DB_LOCK_TIMEOUT"]),
    ({"MODELBOT_SLACK_API_URL": "slack.com/api"}, ["MODELBOT_SLACK_API_URL"]),
    ({"SLACK_BOT_TOKEN": f"not-a-token-{SECRET}"}, ["SLACK_BOT_TOKEN"]),
    ({"MODELBOT_CONFIG": "/nonexistent/modelbot.toml"}, ["MODELBOT_CONFIG"]),
])
def test_environment_mistakes_are_one_line_and_exit_2(tmp_path: Path, env: dict[str, str],
                                                      named: list[str]) -> None:
    result = modelbot(tmp_path, "list", MODELBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}", **env)
    assert SECRET not in one_line_exit_2(result, *named)
    assert not (tmp_path / "m.db").exists()  # checked before the database is touched


@pytest.mark.parametrize(("env", "named"), [
    ({"MODELBOT_OUTBOX_CONCURRENCY": "many"}, ["MODELBOT_OUTBOX_CONCURRENCY"]),
    ({"MODELBOT_OUTBOX_CIRCUIT_FAILURES": "0"}, ["MODELBOT_OUTBOX_CIRCUIT_FAILURES"]),
    ({"MODELBOT_OUTBOX_CIRCUIT_PAUSE": "60", "MODELBOT_OUTBOX_CIRCUIT_PAUSE_CAP": "10"},
     ["MODELBOT_OUTBOX_CIRCUIT_PAUSE_CAP"]),
    ({"SLACK_BOT_TOKEN": ""}, ["SLACK_BOT_TOKEN"]),
])
def test_delivery_settings_mistakes_are_one_line_and_exit_2(tmp_path: Path, env: dict[str, str],
                                                            named: list[str]) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", **env}
    result = modelbot(tmp_path, "deliver", MODELBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}", **env)
    one_line_exit_2(result, *named)


@pytest.mark.parametrize(("policy", "named"), [
    ('[roles]\nadmins = "U0ADMIN"\n', ["modelbot.toml:2", "admins"]),
    ("[environments.production\napprovals = 2\n", ["modelbot.toml"]),
    ('[[webhooks]]\nurl = "ftp://x"\n', ["modelbot.toml", "https://"]),
    ('bogus = 1\n', ["modelbot.toml:1", "bogus"]),
])
def test_policy_file_mistakes_are_one_line_and_exit_2(tmp_path: Path, policy: str, named: list[str]) -> None:
    (tmp_path / "modelbot.toml").write_text(policy)
    result = modelbot(tmp_path, "list", MODELBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}")
    one_line_exit_2(result, *named)
    assert not (tmp_path / "m.db").exists()


def test_database_wal_and_lock_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'modelbot.db'}"
    assert modelbot(tmp_path, "register", "churn", "--artifact", "s3://b/churn/1", umask=0o000,
                    MODELBOT_DATABASE_URL=url).returncode == 0
    made = sorted(p.name for p in tmp_path.iterdir())
    assert "modelbot.db" in made and "modelbot.db.migrate-lock" in made
    for name in made:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name

    # a database made world-readable by an older version (or by hand) is taken back to 0600
    (tmp_path / "modelbot.db").chmod(0o644)
    assert modelbot(tmp_path, "list", MODELBOT_DATABASE_URL=url).returncode == 0
    assert stat.S_IMODE((tmp_path / "modelbot.db").stat().st_mode) == 0o600


def test_wal_file_of_a_running_writer_is_private(tmp_path: Path) -> None:
    """The WAL exists only while a connection is open: look at it from inside a process."""
    code = (
        "import json, os, stat\n"
        "from storage.db import Database, DatabaseSettings\n"
        f"db = Database(DatabaseSettings(url='sqlite:///{tmp_path / 'w.db'}'))\n"
        "db.upgrade()\n"
        "with db.write():\n"
        "    print(json.dumps({p: stat.S_IMODE(os.stat(p).st_mode) for p in os.listdir('.') if p.startswith('w.db')}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=lambda: os.umask(0o000),
                            check=True)
    modes = json.loads(result.stdout)
    assert "w.db-wal" in modes and set(modes.values()) == {0o600}, modes


def test_lock_files_are_not_opened_through_a_symbolic_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    (tmp_path / "modelbot.db.migrate-lock").symlink_to(target)
    result = modelbot(tmp_path, "list", MODELBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'modelbot.db'}")
    assert result.returncode == 1 and "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert target.read_text() == "precious\n"
