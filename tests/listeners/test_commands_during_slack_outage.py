"""A command that arrives while Slack's Web API fails is still carried out (issue 11: no decision lost).

Found by the fault soak (`bench.soak`): right after a restart, Bolt's built-in authorization
asked Slack `auth.test` before running any listener; during a Slack outage that call failed
and the command, already acknowledged with 200, was dropped. Authorization is local now.
"""

from __future__ import annotations

from tests.delivery.support import eventually
from tests.slack_support import (  # noqa: F401  (the *_fixture names register fixtures)
    RunningBot,
    bot_fixture,
    seed_registry,
    slack_fixture,
)


def test_a_promotion_typed_during_a_slack_outage_is_recorded(bot: RunningBot) -> None:
    seed_registry(bot.registry)
    before = bot.registry.environment_state("churn", "staging").stable
    target = "5" if before != 5 else "4"
    bot.slack.set_outage("fail", status=500)  # the first request of a fresh app meets a failing Slack API
    response = bot.signed_post(bot.slack.slash_command_body(f"promote churn {target} staging during the outage"))
    assert response.status_code == 200
    eventually(lambda: bot.registry.environment_state("churn", "staging").stable == int(target), timeout=10,
               what="the promotion is carried out although Slack's API fails")
    assert not bot.slack.calls_to("auth.test")  # nothing to ask Slack before acting
    bot.slack.clear_outage()
