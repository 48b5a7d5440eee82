"""The one redaction helper (bot/redaction.py): what it hides, what it keeps, and that it never raises."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.redaction import REDACTED, carries_credentials, redact_text, redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:pw@prom:9090/api/v1/query", "http://user:[redacted]@prom:9090/api/v1/query"),
    ("https://ghp_token@github.com/x", "https://[redacted]@github.com/x"),
    ("https://x/metrics?model={model}&api_key=abc&token=&page=2",
     "https://x/metrics?model={model}&api_key=[redacted]&token=&page=2"),
    ("https://x/hook?sig=abc#frag", "https://x/hook?sig=[redacted]"),
    ("postgresql+psycopg://modelbot:s3cret@db:5432/modelbot", "postgresql+psycopg://modelbot:[redacted]@db:5432/modelbot"),
    ("https://hooks.slack.com/services/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",
     "https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/[redacted]"),
    ("http://a:b@host:notaport/x", "http://a:[redacted]@host:notaport/x"),
])
def test_credentials_are_replaced(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert carries_credentials(url)
    assert redact_url(shown) == shown  # redacting twice changes nothing


@pytest.mark.parametrize("url", [
    "sqlite:////var/lib/modelbot/modelbot.db", "sqlite:///relative.db", "sqlite://", "garbage", "mysql://x/y",
    "http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22x%22%7D", "https://x/hooks/churn-model-2024-deploys",
    "sqlite:////tmp/pytest-1/test_a_missing_table_in_a_pred0/logs.db",
])
def test_urls_without_credentials_are_kept_byte_for_byte(url: str) -> None:
    assert redact_url(url) == url and not carries_credentials(url)


def test_text_with_urls_and_tokens() -> None:
    text = ("GET http://u:hunter2@h/x?sig=1 failed; token xoxb-123-abc; 'https://k@x'; secret my-signing-secret")
    assert redact_text(text, ["my-signing-secret", None, "abc"]) == (
        "GET http://u:[redacted]@h/x?sig=[redacted] failed; token xoxb-[redacted]; 'https://[redacted]@x'; "
        "secret [redacted]")


SECRETS = st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=", min_size=8, max_size=40)


@settings(max_examples=300, deadline=None)
@given(password=SECRETS, user=st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8),
       host=st.sampled_from(["db", "127.0.0.1:5432", "[::1]:9090", "prom.example.com"]),
       tail=st.text(max_size=40))
def test_no_password_survives(password: str, user: str, host: str, tail: str) -> None:
    assume(password not in f"{user}{host}/{tail} error at (retrying) https://")
    url = f"https://{user}:{password}@{host}/{tail}"
    assert password not in redact_url(url).replace(REDACTED, "")
    assert password not in redact_text(f"error at {url} (retrying)").replace(REDACTED, "")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_never_raises(text: str) -> None:
    redact_url(text)
    redact_text(text)
