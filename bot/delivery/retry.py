"""Which failures are worth another attempt, and when.

Slack answers problems two ways: HTTP status codes (429 with Retry-After, 5xx) and HTTP 200
with `{"ok": false, "error": code}`. Codes that describe the request or the workspace
(`channel_not_found`, `invalid_auth`, `invalid_blocks`, …) will fail the same way forever,
so they fail the row at once and show up in `modelbot outbox --failed`; everything that
describes Slack's own state is retried with exponential backoff and jitter.
"""

from __future__ import annotations

import http.client
import random
import urllib.error
from email.utils import parsedate_to_datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.delivery.jobs import Outcome

# HTTP 200 errors that mean "Slack had a problem", not "your request is wrong".
RETRYABLE_SLACK_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout",
                                    "ratelimited"})
# Network failures: the request may or may not have reached the other side.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError, ConnectionError, urllib.error.URLError, http.client.HTTPException, OSError,
)
DEFAULT_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 3600.0


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": between half and all of min(cap, base·2^(attempt-1)).

    Jitter spreads the retries of many rows that failed in the same second (an outage) so they
    do not hit Slack again in the same second; keeping half the delay fixed bounds it from below.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def parse_retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); 1 s when missing or bad."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            from datetime import UTC, datetime

            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER_S
    if seconds != seconds:
        return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def classify_slack_error(exc: SlackApiError, *, method: str, maybe_sent: bool, sending: bool,
                         channel: str | None = None) -> Outcome:
    """Turn a SlackApiError into retry-or-fail.

    `maybe_sent` is what we knew before this call; `sending` says whether this call was the one
    that changes Slack (a post or update), so an ambiguous failure of it leaves the row uncertain.
    """
    response = exc.response
    status = getattr(response, "status_code", None) or 0
    error = _error_code(response) or f"HTTP {status}"
    headers = getattr(response, "headers", None) or {}
    if status == 429 or error == "ratelimited":
        retry_after = parse_retry_after(_header(headers, "Retry-After"))
        return Outcome.retry(f"{method}: rate limited (Retry-After {retry_after:g} s)", maybe_sent=maybe_sent,
                             retry_after=retry_after,
                             rate_limited_channel=channel if method == "chat.postMessage" else None)
    if status >= 500 or status == 408 or (status == 200 and error in RETRYABLE_SLACK_ERRORS):
        return Outcome.retry(f"{method}: {error}" + (f" (HTTP {status})" if status != 200 else ""),
                             maybe_sent=maybe_sent or sending)
    return Outcome.failed(f"{method}: {error}" + (f" (HTTP {status})" if status != 200 else ""))


def transport_failure(exc: BaseException, *, method: str, maybe_sent: bool, sending: bool) -> Outcome:
    reason = getattr(exc, "reason", None) or exc
    return Outcome.retry(f"{method}: {type(exc).__name__}: {reason}", maybe_sent=maybe_sent or sending,
                         transport=True)


def _error_code(response: Any) -> str | None:
    try:
        data = response.data if response is not None else None
    except AttributeError:
        return None
    if isinstance(data, dict):
        error = data.get("error")
        return str(error)[:200] if error else None
    return None


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers).items():
        if str(key).lower() == name.lower():
            return value[0] if isinstance(value, list) and value else value
    return None
