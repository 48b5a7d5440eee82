"""Environment variables: read once, in bot/config/settings.py; a bad value stops start-up naming it."""

from __future__ import annotations

import pytest

from bot.config.settings import ConfigError, Settings


def test_defaults_and_values() -> None:
    default = Settings.from_env({})
    assert (default.api_rate_per_second, default.actor, default.scheduler, default.delivery,
            default.scheduler_leader_interval_s, default.digest_test_every_s) == (20.0, None, True, True, 5.0, None)
    chosen = Settings.from_env({
        "MODELBOT_API_RATE_PER_SECOND": "0.5", "MODELBOT_ACTOR": "ci-bot", "MODELBOT_SCHEDULER": "off",
        "MODELBOT_DELIVERY": "NO", "MODELBOT_SCHEDULER_LEADER_INTERVAL_S": "60", "MODELBOT_TEST_DIGEST_EVERY_S": "2",
    })
    assert (chosen.api_rate_per_second, chosen.actor, chosen.scheduler, chosen.delivery,
            chosen.scheduler_leader_interval_s, chosen.digest_test_every_s) == (0.5, "ci-bot", False, False, 10.0, 2)


@pytest.mark.parametrize(("env", "colour"), [
    ({}, True), ({"TERM": "xterm-256color"}, True), ({"NO_COLOR": ""}, True),
    ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False),
])
def test_the_shell_user_and_the_terminals_colour(env: dict[str, str], colour: bool) -> None:
    settings = Settings.from_env({**env, "MODELBOT_SHELL_USER": "U0DAVE"})
    assert (settings.shell_user, settings.terminal_colour) == ("U0DAVE", colour)
    assert Settings.from_env(env).shell_user is None


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MODELBOT_API_RATE_PER_SECOND", "fast", "MODELBOT_API_RATE_PER_SECOND must be a number of requests per second"),
    ("MODELBOT_API_RATE_PER_SECOND", "0", "must be a positive number of requests per second"),
    ("MODELBOT_TEST_DIGEST_EVERY_S", "-3", "MODELBOT_TEST_DIGEST_EVERY_S must be a whole number of seconds"),
    ("MODELBOT_SLACK_API_URL", "slack.com", "must be an http(s) URL"),
])
def test_a_bad_value_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({name: value})
