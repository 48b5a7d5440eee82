"""Fuzzing `/model` over signed HTTP (issue 3, acceptance 4).

Whatever people type — random Unicode, stray and typographic quotes, mrkdwn, 10 KB pastes —
the bot acks with 200 (never 5xx, which Slack shows as a failure), always answers at the
response_url with a reply the strict fake accepts as Block Kit, never with "something went
wrong", and answers text the grammar rejects with a usage hint.
"""

from __future__ import annotations

import html
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import commands
from bot.blocks.registry import PAGE_ACTION
from tests.slack_support import (  # noqa: F401  (the *_fixture names register fixtures)
    RunningBot,
    bot_fixture,
    section_texts,
    seed_registry,
    slack_fixture,
)

WORDS = st.sampled_from([
    "help", "list", "ls", "show", "compare", "diff", "history", "log", "share", "SHARE", "?",
    "churn", "fraud", "Churn", "v1", "2", "v999999999", "0", "-1", "latest", "@production", "@staging", "@nope",
    "production", '"needs retraining"', "“quoted”", "‘single’", '"', "'", "“", "’", "\\", "--", "-h",
    "<!channel>", "<@U123>", "&amp;", "&lt;", "*bold*", "`code`", "\u200b", "\x00", "\t", "\n", "🚀", "ß", "İ",
])
GRAMMARISH = st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=14).map(" ".join)
HUGE = st.builds(
    lambda prefix, unit, n: (prefix + " " + unit * n)[:10_240],
    st.sampled_from(["", "list", "show", "compare churn", "history churn"]),
    st.text(min_size=1, max_size=8),
    st.integers(1_300, 10_240),
)
TEXT = st.one_of(GRAMMARISH, st.text(max_size=300), HUGE)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def seeded(bot: RunningBot) -> RunningBot:
    seed_registry(bot.registry)
    return bot


def rejected_by_grammar(text: str) -> bool:
    """The oracle: the same parser the listener uses, on the text as the listener sees it."""
    try:
        commands.parse(html.unescape(text))
    except commands.UsageError:
        return True
    return False


@FUZZ
@given(text=TEXT)
def test_any_command_text_is_acked_and_answered(seeded: RunningBot, text: str) -> None:
    name = seeded.unique("fuzz")
    response = seeded.signed_post(seeded.slack.slash_command_body(text, response_name=name))
    assert response.status_code == 200, (response.status_code, response.text[:200])
    reply = seeded.slack.wait_for_responses(name, 1, timeout=10)[0]
    body = "\n".join(section_texts(reply.blocks))
    assert "Something went wrong" not in body, (text[:200], body)
    assert "<!channel>" not in json.dumps(reply.body, ensure_ascii=False)
    if rejected_by_grammar(text):
        assert reply.response_type == "ephemeral"
        assert body.startswith(":warning:") and "Usage: `/model" in body, (text[:200], body)


@FUZZ
@given(value=st.one_of(st.text(max_size=300), st.builds(
    lambda c, o: json.dumps({"c": c, "o": o}), GRAMMARISH, st.one_of(st.integers(-10, 10**12), st.text(max_size=5)),
)))
def test_any_page_button_value_is_acked_and_answered(seeded: RunningBot, value: str) -> None:
    """Button values come back from Slack's servers, but they are still input: never trust them."""
    name = seeded.unique("fuzz-click")
    response = seeded.signed_post(seeded.slack.block_actions_body(PAGE_ACTION, value, response_name=name))
    assert response.status_code == 200, (response.status_code, response.text[:200])
    reply = seeded.slack.wait_for_responses(name, 1, timeout=10)[0]
    assert "Something went wrong" not in "\n".join(section_texts(reply.blocks)), value[:200]
