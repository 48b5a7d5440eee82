"""The one place credentials are taken out of URLs and text before anyone can see them.

URLs reach modelbot from the policy file and the environment (metric sources, webhooks, the
MLflow tracking server, the database), and any of them may carry a credential: a password
in `user:password@`, a token as the user name, a `?token=` or `?sig=` query value, or a
token as a path segment (Slack and Discord incoming-webhook URLs). Errors, log lines,
`last_error` columns, outbox rows, `modelbot outbox` and Slack messages show URLs only as
`redact_url` leaves them, and free text (an exception message that quotes a URL) only as
`redact_text` leaves it.

This module imports nothing from modelbot, so every layer, storage included, may use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

REDACTED = "[redacted]"

# RFC 3986, appendix B: scheme, authority, path, query (the fragment is dropped).
_RFC3986 = re.compile(r"^([^:/?#]+:)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#.*)?$", re.DOTALL)

# Query parameter names whose values are credentials (matched as substrings, case-insensitively).
_SECRET_PARAMS = re.compile(
    r"token|secret|passw|pwd|key|auth|sig|credential|session|cookie|code|ticket|jwt|bearer", re.IGNORECASE
)
# A path segment that looks like a generated token rather than a name people chose: long, with
# digits, and either mixed-case (base62/base64 secrets) or hex (digests); readable names are
# mostly one case (`churn-model-2024`, `test_run_12`).
_TOKEN_SEGMENT = re.compile(
    r"^(?=.*[0-9])(?:(?=.*[a-z])(?=.*[A-Z])[A-Za-z0-9_\-]{20,}|[0-9a-fA-F]{32,})$"
)
# Slack tokens by prefix (bot, user, app-level, refresh, …).
_SLACK_TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")
# A URL inside free text: a scheme, then everything up to whitespace, a quote or a parenthesis.
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>()]+", re.IGNORECASE)
# `scheme://user:password@`, up to the last `@` before the path: a password may hold quotes and
# parentheses that end a URL in text, or a URL may not parse at all (a broken port, say).
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.\-]*://)([^:/@\s]*)(:[^\s/]*)?@", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with every credential replaced by `[redacted]`; never raises, and changes nothing
    else (a URL without credentials comes back byte for byte, less its fragment).

    Kept: scheme, host, port, user name (when a password follows it), readable path segments,
    and the names of query parameters (so people can still tell which endpoint it is). The URL
    is split with RFC 3986's own regular expression rather than a validating parser, so a
    malformed URL (a bad port, brackets in a password) is still redacted.
    """
    parts = _RFC3986.match(str(url))
    assert parts is not None  # every group is optional: the expression matches any string
    scheme, authority, path, query = parts.group(1) or "", parts.group(2), parts.group(3), parts.group(4)
    if authority is not None and "@" in authority:
        userinfo, _, hostport = authority.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        authority = f"{user}:{REDACTED}@{hostport}" if has_password else f"{REDACTED}@{hostport}"
    path = "/".join(REDACTED if _TOKEN_SEGMENT.match(segment) else segment for segment in path.split("/"))
    out = scheme + ("" if authority is None else f"//{authority}") + path
    if query is not None:
        out += "?" + "&".join(_query_pair(pair) for pair in query.split("&"))
    return out


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Free text (an error message, a log line) with every URL redacted, Slack tokens cut to their
    prefix, and each of `secrets` (values known to be secret, such as the bot token) removed."""
    out = str(text)
    for secret in sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True):
        out = out.replace(secret, REDACTED)
    out = _USERINFO.sub(_userinfo_match, out)
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), out)
    return _SLACK_TOKEN.sub(lambda m: f"{m.group(1)}-{REDACTED}", out)


def carries_credentials(url: str) -> bool:
    """True when `redact_url` would hide something: the URL itself must not be stored or shown."""
    return redact_url(url) != url.split("#", 1)[0]


def _query_pair(pair: str) -> str:
    """One raw `name=value` of a query string, kept byte for byte unless its value is a credential."""
    name, equals, value = pair.partition("=")
    return f"{name}={REDACTED}" if equals and value and _SECRET_PARAMS.search(unquote_plus(name)) else pair


def _userinfo_match(match: re.Match[str]) -> str:
    """For `redact_text`: the password (or a lone user name, which may be a token) of a URL in text."""
    scheme, user, password = match.group(1), match.group(2), match.group(3)
    return f"{scheme}{user}:{REDACTED}@" if password else f"{scheme}{REDACTED}@"
