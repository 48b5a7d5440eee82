"""HTTP for metric sources: one session factory, bounded waits, and errors people can act on.

Every source talks HTTP through `make_session` and `get_json` so they all behave alike:
a connect/read timeout on every request (a source that hangs must not stall the
scheduler), retries with exponential backoff on connection errors, 429 and 5xx (the
transient failures; a 404 or malformed body will not heal by asking again), a cap on
how long a `Retry-After` may make us wait, and one error type, `SourceError`, whose
message names the source, the URL and what happened ("did not answer within 5 s").
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot.config.sources import HttpOptions
from bot.domain.names import preview

RETRY_AFTER_MAX_S = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = "modelbot-sources/1"


class SourceError(Exception):
    """A source could not deliver: `source` names it, the message says what to check."""

    def __init__(self, source: str, message: str, *, unreachable: bool = False) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message
        # True when the server itself did not answer: asking it the next query is pointless
        self.unreachable = unreachable


class _CappedRetry(Retry):
    """A `Retry-After` of an hour would park the scheduler thread; wait at most 30 s."""

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, RETRY_AFTER_MAX_S)


DEFAULT_OPTIONS = HttpOptions()


def make_session(options: HttpOptions = DEFAULT_OPTIONS) -> requests.Session:
    """A session that retries transient failures with exponential backoff (0.5 s, 1 s, 2 s …).

    Read timeouts are not retried: a server that stalls once usually stalls again, and
    retrying would multiply the time a pull blocks.
    """
    retry = _CappedRetry(
        total=None,  # the per-kind limits below apply; redirects are not failures
        connect=options.retries,
        read=False,  # re-raise the read timeout itself (0 would wrap it as a connection error)
        status=options.retries,
        other=0,
        redirect=5,
        backoff_factor=options.backoff_s,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD", "POST"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


def display_url(url: str) -> str:
    """The URL without credentials or query string, safe to put in logs and Slack."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def describe(what: str, url: str) -> str:
    """'Prometheus at http://host:9090/api/v1/query': the subject of every error sentence."""
    return f"{what} at {display_url(url)}"


def get(
    session: requests.Session,
    url: str,
    *,
    source: str,
    what: str,
    timeout_s: float,
    params: dict[str, str] | None = None,
) -> requests.Response:
    """GET with the errors turned into `SourceError`; any HTTP status is returned as is."""
    subject = describe(what, url)
    try:
        return session.get(url, params=params, timeout=(timeout_s, timeout_s))
    except requests.exceptions.ConnectTimeout:
        raise SourceError(source, f"{subject} did not accept a connection within {_seconds(timeout_s)}.",
                          unreachable=True) from None
    except requests.exceptions.ReadTimeout:
        raise SourceError(source, f"{subject} did not answer within {_seconds(timeout_s)}.",
                          unreachable=True) from None
    except requests.exceptions.RetryError as exc:
        raise SourceError(source, f"{subject} kept failing after retries ({_reason(exc)}).") from None
    except requests.exceptions.ConnectionError as exc:
        if "ReadTimeoutError" in str(exc):
            raise SourceError(source, f"{subject} did not answer within {_seconds(timeout_s)}.",
                              unreachable=True) from None
        raise SourceError(source, f"{subject} is unreachable ({_reason(exc)}); is it running?",
                          unreachable=True) from None
    except requests.exceptions.RequestException as exc:
        raise SourceError(source, f"{subject}: request failed ({_reason(exc)}).") from None


def get_json(
    session: requests.Session,
    url: str,
    *,
    source: str,
    what: str,
    timeout_s: float,
    params: dict[str, str] | None = None,
) -> Any:
    """GET a JSON document; a non-2xx status or a body that is not JSON is a `SourceError`."""
    response = get(session, url, source=source, what=what, timeout_s=timeout_s, params=params)
    subject = describe(what, url)
    if not 200 <= response.status_code < 300:
        raise SourceError(source, f"{subject} answered {response.status_code}{_body_hint(response)}.")
    try:
        return json.loads(response.content)
    except json.JSONDecodeError as exc:
        raise SourceError(
            source, f"{subject} answered malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})."
        ) from None
    except UnicodeDecodeError:
        raise SourceError(source, f"{subject} answered a body that is not UTF-8 text, so not JSON.") from None


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _reason(exc: Exception) -> str:
    """The innermost cause, short: 'Connection refused' rather than three nested reprs."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Temporary failure in name resolution", "Connection reset by peer",
                   "too many 5", "too many 429"):
        if marker in text:
            return marker.replace("too many 5", "too many 5xx answers").replace("too many 429",
                                                                                "too many 429 answers")
    return preview(text, 120)


def _body_hint(response: requests.Response) -> str:
    """A short piece of the body: Prometheus and most APIs say what was wrong there."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return f": {preview(text, 120)}" if text else ""
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if isinstance(data.get(key), str):
                return f": {preview(data[key], 160)}"
    return ""
