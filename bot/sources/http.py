"""HTTP for metric sources and the MLflow client: one retry policy, bounded waits, bounded
answers, and errors people can act on.

Every source talks HTTP through `make_session` and `get` / `get_json` so they all behave alike:
a connect/read timeout on every request and a deadline for the whole answer (a source that
hangs or trickles must not stall the scheduler); the one retry policy of modelbot's HTTP
clients (`retry_policy`, which the MLflow client uses too): exponential backoff on connection
errors, 429 and 5xx (the transient failures; a 404 or malformed body will not heal by asking
again), a cap on how long a `Retry-After` may make us wait; at most `MAX_REDIRECTS` redirects;
answers read up to `HttpOptions.max_bytes` (10 MB unless a source sets `max_response_mb`) and
refused beyond; and one error type, `SourceError`, whose message names the source, the URL
(credentials redacted) and what happened ("did not answer within 5 s").
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot.config.sources import DEFAULT_BACKOFF_S, DEFAULT_MAX_RESPONSE_BYTES, HttpOptions
from bot.domain.names import preview
from bot.redaction import redact_text, redact_url

RETRY_AFTER_MAX_S = 30.0
BACKOFF_MAX_S = 10.0
MAX_REDIRECTS = 3
RETRY_STATUSES = (429, 500, 502, 503, 504)
USER_AGENT = "modelbot-sources/1"
_CHUNK = 64 * 1024


class SourceError(Exception):
    """A source could not deliver: `source` names it, the message says what to check.

    The message is redacted here, once, so no URL credential can reach `last_error`, a log
    line, `/model status` or a digest through it, whatever a library put into the text."""

    def __init__(self, source: str, message: str, *, unreachable: bool = False) -> None:
        message = redact_text(message)
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message
        # True when the server itself did not answer: asking it the next query is pointless
        self.unreachable = unreachable


class CappedRetry(Retry):
    """urllib3's Retry, but a server's `Retry-After` is honoured only up to RETRY_AFTER_MAX_S:
    an hour would park the scheduler thread (or an interactive import)."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), RETRY_AFTER_MAX_S)


def retry_policy(retries: int, backoff_s: float = DEFAULT_BACKOFF_S) -> Retry:
    """The one retry policy for modelbot's HTTP clients (metric sources, MLflow).

    Connection errors and 429/5xx answers are retried `retries` times with exponential backoff
    (`backoff_s`, doubling, at most BACKOFF_MAX_S); only GET and HEAD, which are safe to repeat.
    Read timeouts are not retried: a server that stalls once usually stalls again, and retrying
    would multiply the time a caller blocks. The last 429/5xx answer is returned, not raised, so
    callers can quote what the server said.
    """
    return CappedRetry(
        total=None,  # the per-kind limits below apply
        connect=retries,
        read=False,  # re-raise the read timeout itself (0 would wrap it as a connection error)
        status=retries,
        other=0,
        redirect=MAX_REDIRECTS,
        backoff_factor=backoff_s,
        backoff_max=BACKOFF_MAX_S,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )


@dataclass(frozen=True)
class Answer:
    """An HTTP answer read in full (within the size cap)."""

    status: int
    body: bytes


DEFAULT_OPTIONS = HttpOptions()


def make_session(options: HttpOptions = DEFAULT_OPTIONS) -> requests.Session:
    """A session with the one retry policy, at most MAX_REDIRECTS redirects and JSON accepted."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry_policy(options.retries, options.backoff_s))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = MAX_REDIRECTS
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


def describe(what: str, url: str) -> str:
    """'Prometheus at http://host:9090/api/v1/query': the subject of every error sentence."""
    return f"{what} at {redact_url(url)}"


def get(
    session: requests.Session,
    url: str,
    *,
    source: str,
    what: str,
    timeout_s: float,
    params: dict[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Answer:
    """GET with the errors turned into `SourceError`; any HTTP status is returned as is, with
    at most `max_bytes` of body (a larger answer is an error, read no further than the cap)."""
    subject = describe(what, url)
    try:
        response = session.get(url, params=params, timeout=(timeout_s, timeout_s), stream=True)
    except requests.exceptions.ConnectTimeout:
        raise SourceError(source, f"{subject} did not accept a connection within {_seconds(timeout_s)}.",
                          unreachable=True) from None
    except requests.exceptions.ReadTimeout:
        raise SourceError(source, f"{subject} did not answer within {_seconds(timeout_s)}.",
                          unreachable=True) from None
    except requests.exceptions.TooManyRedirects:
        raise SourceError(source, f"{subject} redirected more than {MAX_REDIRECTS} times; give the final URL.") from None
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
    with response:
        return Answer(response.status_code, _read(response, subject, source, timeout_s, max_bytes))


def _read(response: requests.Response, subject: str, source: str, timeout_s: float, max_bytes: int) -> bytes:
    too_large = SourceError(source, f"{subject} answered more than {max_bytes / 1024 / 1024:g} MB; ask for less, "
                                    "or raise max_response_mb for this source.")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    deadline = time.monotonic() + max(timeout_s, 1.0) * 2
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            if time.monotonic() > deadline:
                raise SourceError(source, f"{subject} did not finish its answer within {_seconds(timeout_s * 2)}.",
                                  unreachable=True)
            chunks.append(chunk)
    except requests.exceptions.RequestException as exc:
        raise SourceError(source, f"{subject} broke off its answer ({_reason(exc)}).", unreachable=True) from None
    return b"".join(chunks)


def get_json(
    session: requests.Session,
    url: str,
    *,
    source: str,
    what: str,
    timeout_s: float,
    params: dict[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Any:
    """GET a JSON document; a non-2xx status or a body that is not JSON is a `SourceError`."""
    answer = get(session, url, source=source, what=what, timeout_s=timeout_s, params=params, max_bytes=max_bytes)
    subject = describe(what, url)
    if not 200 <= answer.status < 300:
        raise SourceError(source, f"{subject} answered {answer.status}{_body_hint(answer.body)}.")
    try:
        return json.loads(answer.body)
    except json.JSONDecodeError as exc:
        raise SourceError(
            source, f"{subject} answered malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})."
        ) from None
    except UnicodeDecodeError:
        raise SourceError(source, f"{subject} answered a body that is not UTF-8 text, so not JSON.") from None
    except RecursionError:
        raise SourceError(source, f"{subject} answered JSON nested too deeply to read.") from None


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


def _body_hint(body: bytes) -> str:
    """A short piece of the body: Prometheus and most APIs say what was wrong there."""
    text = body[:4096].decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return f": {preview(text, 120)}" if text else ""
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if isinstance(data.get(key), str):
                return f": {preview(data[key], 160)}"
    return ""
