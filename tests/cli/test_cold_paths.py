"""The read verbs start light: a cold `modelbot show/list/history/compare/status` (and `--help`)
never imports the heavy libraries that only ingestion, charts and the server need.

Each command runs as a real `python -X importtime -m bot.cli …` process, and the modules it
imported are read from the interpreter's own import log, so a module imported anywhere on the
path (a verb module, the services, a renderer) is caught. How fast they are is measured by
`python -m bench.registry` (cold-start table), not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.domain.registry import NewVersion, Registry
from storage.db import Database, DatabaseSettings

HEAVY = ("pandas", "numpy", "matplotlib", "pyarrow", "fastapi")
COMMANDS = [
    ["--help"],
    ["show", "--help"],
    ["show", "churn"],
    ["show", "churn", "@production"],
    ["list"],
    ["list", "churn"],
    ["history", "churn"],
    ["compare", "churn", "1", "2"],
    ["status"],
    ["status", "churn"],
    ["status", "churn", "production", "--json"],
]
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cold') / 'modelbot.db'}"
    db = Database(DatabaseSettings(url=url))
    db.upgrade()
    registry = Registry(db)
    for auc in (0.81, 0.84):
        registry.register(NewVersion(model="churn", artifact_uri="s3://m/churn", actor="ci",
                                     metrics={"auc": auc, "latency_p95_ms": 20.0}, params={"depth": str(int(auc * 10))}))
    registry.promote("churn", "1", "production", actor="ci")
    registry.promote("churn", "2", "production", actor="ci")
    db.dispose()
    return url


def imported_modules(db_url: str, args: list[str], cwd: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELBOT_", "SLACK_"))}
    env["MODELBOT_DATABASE_URL"] = db_url
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "bot.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {m.group(1) for line in done.stderr.splitlines() if (m := _IMPORTED.match(line))}
    assert "bot.cli.main" in modules  # the log really is the CLI's
    return modules


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_read_verbs_do_not_import_heavy_libraries(db_url: str, tmp_path: Path, args: list[str]) -> None:
    modules = imported_modules(db_url, args, tmp_path)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, f"`modelbot {' '.join(args)}` imported {heavy[:10]}"


def test_the_import_log_shows_a_heavy_import() -> None:
    """The check can fail: a process that imports the monitoring maths shows pandas in its log."""
    probe = subprocess.run([sys.executable, "-X", "importtime", "-c", "import bot.domain.monitoring.drift"],
                           capture_output=True, text=True, timeout=120, check=False)
    modules = {m.group(1) for line in probe.stderr.splitlines() if (m := _IMPORTED.match(line))}
    assert {"pandas", "numpy"} <= modules
