"""Signed deploy webhooks: what we send, how receivers verify it, and which answers we retry.

Each delivery is a JSON POST with these headers:

- `X-Modelbot-Event`: the event name (`deployment.changed`, `canary.changed`, …)
- `X-Modelbot-Delivery`: the outbox row id. Delivery is at-least-once (a worker may die after
  the receiver answered but before we recorded it), so receivers should ignore a delivery id
  they have already processed.
- `X-Modelbot-Timestamp`: unix seconds when this attempt was signed
- `X-Modelbot-Signature`: `v1=` + hex HMAC-SHA256(secret, f"{timestamp}.{raw_body}")

Signing the timestamp with the body lets receivers refuse replays older than a few minutes.
The secret is read from the environment variable the policy names, at send time: it is never
stored in the database, never logged, and rotating it needs no migration. The same holds for
credentials inside a webhook URL (`https://user:password@…`, `?token=…`): outbox rows store
the URL redacted, and the sender finds the policy's webhook with that redacted URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import requests

from bot.config.settings import named_secret
from bot.delivery.jobs import Job, Outcome
from bot.delivery.retry import parse_retry_after
from bot.redaction import REDACTED, redact_text, redact_url

SIGNATURE_VERSION = "v1"
USER_AGENT = "modelbot-webhooks/1"
# answers that say "try again later"; every other 4xx needs a person (fix, then `modelbot outbox retry`)
_RETRYABLE_STATUS = frozenset({408, 425, 429})
# how much of a refusal's body is read, to quote its start in the error
SNIPPET_BYTES = 1024


def sign_webhook(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The `X-Modelbot-Signature` value for one delivery."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + raw, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_webhook(
    secret: str, headers: Mapping[str, str], body: bytes | str, tolerance: int = 300, *, now: float | None = None
) -> bool:
    """True when the signature matches the raw body and the timestamp is within `tolerance` seconds.

    Header names are matched case-insensitively (frameworks differ). The signature header may
    list several comma-separated `v1=` values, so a sender can sign with an old and a new secret
    while a rotation is rolled out.
    """
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    timestamp = lowered.get("x-modelbot-timestamp", "").strip()
    signatures = lowered.get("x-modelbot-signature", "")
    if not timestamp.isdigit() or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = sign_webhook(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in signatures.split(","))


def encode_body(body: object) -> bytes:
    """The exact bytes we sign and send: compact, key-sorted JSON in UTF-8."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


class WebhookSender:
    """POSTs webhook rows with `requests`; one Session per sending thread (Sessions are not thread-safe)."""

    def __init__(self, *, clock: Callable[[], datetime], timeout_s: float = 10.0,
                 env: Mapping[str, str] | None = None, urls: Sequence[str] = ()) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        self._env = env  # None: the process environment, read by the settings module
        # the policy's webhook URLs by their redacted form, which is what rows store
        self._urls = {redact_url(url): url for url in reversed(urls)}
        self._local = threading.local()

    def send(self, job: Job) -> Outcome:
        shown = job.data.get("url")
        if not isinstance(shown, str) or not shown.startswith(("http://", "https://")):
            return Outcome.failed("webhook row has no http(s) url")
        url = self._urls.get(shown) or (None if REDACTED in shown else shown)
        if url is None:
            return Outcome.failed(
                f"webhook {shown}: the credentials of this URL are not stored, and the policy this worker loaded "
                f"has no webhook with this URL; fix the policy, then run `modelbot outbox retry {job.id}`"
            )
        secret_env = job.data.get("secret_env")
        secret: str | None = None
        if secret_env:
            secret = named_secret(str(secret_env), self._env)
            if not secret:
                return Outcome.failed(
                    f"webhook secret variable {secret_env} is not set in the delivery process: set it, then run "
                    f"`modelbot outbox retry {job.id}`"
                )
        body = job.data.get("body") or {}
        raw = encode_body(body)
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Modelbot-Event": str(body.get("event") if isinstance(body, dict) and body.get("event") else job.template),
            "X-Modelbot-Delivery": str(job.id),
            "X-Modelbot-Timestamp": str(timestamp),
        }
        if secret:
            headers["X-Modelbot-Signature"] = sign_webhook(secret, timestamp, raw)
        try:
            # stream: only the first bytes of an answer are ever read, whatever the receiver sends
            response = self._session().post(url, data=raw, headers=headers, timeout=self._timeout_s,
                                            allow_redirects=False, stream=True)
        except requests.RequestException as exc:
            # the receiver may have processed it before the connection broke: it dedupes on the delivery id
            return Outcome.retry(f"webhook {shown}: {type(exc).__name__}", maybe_sent=True, transport=True)
        try:
            return _classify(response, shown)
        finally:
            response.close()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


def _classify(response: requests.Response, shown: str) -> Outcome:
    status = response.status_code
    where = f"webhook {shown} answered HTTP {status}"
    if 200 <= status < 300:
        return Outcome.delivered({"status": status})
    if status == 410:
        return Outcome.failed(f"{where} (Gone: the receiver asks us to stop)")
    if status in _RETRYABLE_STATUS:
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if status == 429 else None
        return Outcome.retry(where, maybe_sent=False, retry_after=retry_after)
    if status >= 500:
        return Outcome.retry(where, maybe_sent=True)
    try:
        head = response.raw.read(SNIPPET_BYTES, decode_content=True) or b""
    except (requests.RequestException, OSError, ValueError):
        head = b""
    snippet = redact_text(head.decode("utf-8", errors="replace")[:200]).replace("\n", " ").strip()
    return Outcome.failed(f"{where}" + (f": {snippet}" if snippet else ""))

