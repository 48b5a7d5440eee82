"""`modelbot mlflow setup|status`: bad input is one line on stderr, exit 2, nothing written, no secret echoed.

The verbs against a real MLflow server are in tests/domain/test_mlflow_sync.py (setup, status
with live aliases) and tests/domain/test_mlflow_import.py (MLflow refusing a loopback webhook).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.main import main
from storage.db import Database, DatabaseSettings
from storage.queries import registry as queries

SECTION = """[mlflow]
tracking_uri = "http://127.0.0.1:1"
webhook_secret_env = "MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET"
"""


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'modelbot.db'}"
    monkeypatch.setenv("MODELBOT_DATABASE_URL", url)
    monkeypatch.setenv("MODELBOT_CONFIG", str(tmp_path / "modelbot.toml"))
    monkeypatch.delenv("MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET", raising=False)

    def cli(policy: str, *args: str) -> tuple[int, str, str]:
        (tmp_path / "modelbot.toml").write_text(policy)
        try:
            code = main(list(args))
        except SystemExit as exited:
            code = int(exited.code or 0)
        out, err = capsys.readouterr()
        db = Database(DatabaseSettings(url=url))
        try:
            if db.current_revision() is not None:  # argparse refuses before the database is opened
                with db.read() as session:
                    assert sum(queries.row_counts(session).values()) == 0
        finally:
            db.dispose()
        return code, out, err

    return cli


@pytest.mark.parametrize(("policy", "args", "env", "message"), [
    ("", ["mlflow", "status"], {}, "There is no [mlflow] section in"),
    (SECTION.replace('webhook_secret_env = "MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET"\n', ""),
     ["mlflow", "setup", "--public-url", "https://bot.example.com"], {}, "Name the webhook secret's variable first"),
    (SECTION, ["mlflow", "setup", "--public-url", "https://bot.example.com"], {},
     "MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET is not set"),
    (SECTION, ["mlflow", "setup", "--public-url", "ftp://admin:hunter22@bot.example.com"],
     {"MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET": "s3cret-abcdef"}, "--public-url is not an http(s) URL"),
    (SECTION, ["mlflow", "setup", "--public-url", "https://admin:hunter22@bot.example.com"],
     {"MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET": "s3cret-abcdef"}, "without credentials, query or fragment"),
    (SECTION, ["mlflow", "setup", "--public-url", "https://<!channel> 模型"],
     {"MODELBOT_TEST_MLFLOW_WEBHOOK_SECRET": "s3cret-abcdef"}, "--public-url is not an http(s) URL"),
    (SECTION, ["mlflow", "setup"], {}, "the following arguments are required: --public-url"),
])
def test_bad_input_is_one_line_and_exit_2(run, monkeypatch: pytest.MonkeyPatch, policy: str,  # type: ignore[no-untyped-def]
                                          args: list[str], env: dict[str, str], message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = run(policy, *args)
    assert (code, out) == (2, "")
    assert message in err and err.count("\n") == 1, err
    assert "hunter22" not in err and "s3cret" not in err


def test_status_without_mlflow_reachable_says_so_and_shows_what_it_last_knew(run) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("[environments.production]\n" + SECTION, "mlflow", "status")
    assert code == 0, err
    assert "following every registered model; 0 of them in modelbot" in out
    assert "last webhook: none received" in out and "last poll: never" in out and "drift: none" in out
