"""`[mlflow]` in modelbot.toml: a mistake stops the sync's start with file:line and what to write instead."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.config.mlflow import mlflow_config
from bot.config.policy_file import load_policy
from bot.config.settings import ConfigError
from bot.domain.mlflow.settings import AliasTarget

HEAD = """# policy
[environments.staging]
[environments.production]

[mlflow]
"""


def config_of(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "modelbot.toml"
    path.write_text(HEAD + body)
    return mlflow_config(load_policy(path))


def test_the_issue_example_parses(tmp_path: Path) -> None:
    settings = config_of(tmp_path, '''tracking_uri = "http://mlflow.internal:5000/"
token_env = "MLFLOW_TRACKING_TOKEN"
webhook_secret_env = "MODELBOT_MLFLOW_WEBHOOK_SECRET"
new_version_channel = "C0MODELS"
models = ["churn", "fraud-*"]
aliases = { staging = "staging", production = "champion" }
canary_alias_suffix = "-canary"
poll_interval = "1m"
external_moves = "report"
''')
    assert settings is not None
    assert settings.tracking_uri == "http://mlflow.internal:5000"
    assert settings.poll_interval == timedelta(minutes=1) and settings.external_moves == "report"
    assert settings.follows("fraud-eu") and settings.follows("Churn") and not settings.follows("churner")
    assert settings.targets() == {"staging": AliasTarget("staging"), "champion": AliasTarget("production"),
                                  "staging-canary": AliasTarget("staging", canary=True),
                                  "champion-canary": AliasTarget("production", canary=True)}


def test_defaults_follow_every_model_with_aliases_named_like_the_environments(tmp_path: Path) -> None:
    settings = config_of(tmp_path, 'tracking_uri = "https://mlflow.example.com"\ncanary_alias_suffix = ""\n')
    assert settings is not None and settings.models == () and settings.follows("anything")
    assert settings.aliases == {"staging": "staging", "production": "production"}
    assert settings.canary_alias_of("production") is None and settings.external_moves == "report"


def test_no_section_no_sync(tmp_path: Path) -> None:
    path = tmp_path / "modelbot.toml"
    path.write_text("[environments.production]\n")
    assert mlflow_config(load_policy(path)) is None


@pytest.mark.parametrize(("body", "line", "message"), [
    ('tracking_uri = "http://x:5000"\nwebhook_secret = "s3cret"\n', 7, "unknown key 'webhook_secret' in [mlflow]"),
    ('token_env = "X"\n', 5, "tracking_uri is required"),
    ('tracking_uri = "sqlite:///mlflow.db"\n', 6, "not an http(s) URL of an MLflow tracking server"),
    ('tracking_uri = "http://user:pw@mlflow:5000"\n', 6, "Do not put credentials in the tracking URI"),
    ('tracking_uri = "http://x"\ntoken_env = "not a name"\n', 7, "token_env must name an environment variable"),
    ('tracking_uri = "http://x"\nwebhook_secret_env = "s3cret-value!"\n', 7, "the secret itself never goes"),
    ('tracking_uri = "http://x"\nnew_version_channel = "#models"\n', 7, "must be a Slack channel id"),
    ('tracking_uri = "http://x"\nmodels = "churn"\n', 7, "models must be a list"),
    ('tracking_uri = "http://x"\nmodels = ["<!channel>"]\n', 7, "models must be a list"),
    ('tracking_uri = "http://x"\naliases = { prod = "champion" }\n', 7, "names environment \"prod\""),
    ('tracking_uri = "http://x"\naliases = { production = "latest" }\n', 7, "MLflow reserves those"),
    ('tracking_uri = "http://x"\naliases = { production = "v3" }\n', 7, "MLflow reserves those"),
    ('tracking_uri = "http://x"\naliases = { production = "cham pion" }\n', 7, "letters, digits"),
    ('tracking_uri = "http://x"\naliases = { production = "a", staging = "a" }\n', 7, "given to two environments"),
    ('tracking_uri = "http://x"\naliases = { production = "a", staging = "a-canary" }\n', 7,
     "makes alias 'a-canary'"),
    ('tracking_uri = "http://x"\ncanary_alias_suffix = " canary"\n', 7, "canary_alias_suffix must be"),
    ('tracking_uri = "http://x"\npoll_interval = "soon"\n', 7, "is not a duration"),
    ('tracking_uri = "http://x"\npoll_interval = "1s"\n', 7, "at least 5s"),
    ('tracking_uri = "http://x"\nexternal_moves = "ignore"\n', 7, "external_moves must be one of report, accept, revert"),
])
def test_mistakes_name_the_line_and_what_to_write(tmp_path: Path, body: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_of(tmp_path, body)
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'modelbot.toml'}:{line}: "), text
    assert message in text and "s3cret-value!" not in text and "pw@" not in text


def test_the_cli_stops_with_the_line_before_contacting_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "modelbot.toml"
    path.write_text(HEAD + 'tracking_uri = "http://127.0.0.1:1"\nexternal_moves = "sometimes"\n')
    monkeypatch.setenv("MODELBOT_CONFIG", str(path))
    monkeypatch.setenv("MODELBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'modelbot.db'}")
    assert main(["mlflow", "status"]) == 2
    err = capsys.readouterr().err
    assert err == (f"modelbot: {path}:7: external_moves must be one of report, accept, revert: report (tell "
                   "Slack), accept (the pointer follows) or revert (put the alias back).\n")


def test_the_commented_example_in_modelbot_example_toml_parses_once_uncommented(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parents[2] / "modelbot.example.toml").read_text()
    block = example[example.index("# [mlflow]"):]
    uncommented = "\n".join(line[2:] if line.startswith("# ") else line for line in block.splitlines())
    settings = config_of(tmp_path, uncommented.replace("[mlflow]\n", "", 1))
    assert settings is not None and settings.aliases == {"staging": "staging", "production": "champion"}
    assert settings.models == ("churn", "fraud-*") and settings.token_env == "MLFLOW_TRACKING_TOKEN"
