"""Validation of the identifiers people type in Slack and CI scripts.

Names are checked before anything touches the database, so a bad name never writes.
Error messages never echo a hostile value back in full: they quote a short, sanitised
preview so a 100 KB name or `<!channel>` cannot end up verbatim in a reply.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable

from bot.domain.errors import InvalidInput

MODEL_NAME_MAX = 64
MODEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/-]{0,127}")
ENV_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
ACTOR_MAX = 128
TEXT_MAX = 4000
VALUE_MAX = 1000
URI_MAX = 2000


def preview(value: str, limit: int = 40) -> str:
    """A short printable rendering of user input for error messages."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def did_you_mean(value: str, known: Iterable[str], limit: int = 3) -> str:
    """` Did you mean production?` for a near miss (a prefix, or a close spelling), else ''.
    Only names that exist are suggested, so nothing the user typed is echoed back."""
    candidates = list(dict.fromkeys(known))
    lowered = value.lower()
    by_lower = {c.lower(): c for c in candidates}
    close = [c for c in candidates if lowered and c.lower().startswith(lowered)]
    close += [by_lower[c] for c in difflib.get_close_matches(lowered, list(by_lower), n=limit, cutoff=0.6)]
    picked = list(dict.fromkeys(close))[:limit]
    if not picked:
        return ""
    return f" Did you mean {' or '.join(picked)}?"


def model_name(value: str) -> str:
    """Return the name as typed, or raise InvalidInput saying what a name may contain."""
    if not value:
        raise InvalidInput("The model name is empty: use 1–64 letters, digits, '.', '_' or '-'.")
    if len(value) > MODEL_NAME_MAX:
        raise InvalidInput(
            f"The model name is {len(value)} characters long: use at most {MODEL_NAME_MAX} "
            "letters, digits, '.', '_' or '-'."
        )
    if not MODEL_NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"'{preview(value)}' is not a valid model name: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (for example churn-v2)."
        )
    return value


def key(value: str, what: str) -> str:
    """A metric, param or tag name."""
    if not value:
        raise InvalidInput(f"The {what} name is empty: write NAME=VALUE, for example auc=0.91.")
    if not KEY_RE.fullmatch(value):
        raise InvalidInput(
            f"'{preview(value)}' is not a valid {what} name: start with a letter or '_' and use "
            "letters, digits, '_', '.', ':', '/' or '-' (at most 128)."
        )
    return value


def metric_value(name: str, raw: str | float) -> float:
    """Parse a metric value; NaN and infinities are refused because they break comparisons."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"The value of metric {name} is '{preview(str(raw))}', not a number: write for example {name}=0.91."
        ) from None
    if not math.isfinite(value):
        raise InvalidInput(f"The value of metric {name} must be a finite number, not {raw}.")
    return value


def text(value: str | None, what: str, limit: int = TEXT_MAX) -> str | None:
    """Free text (description, reason): bounded, control characters other than newline refused."""
    if value is None:
        return None
    if len(value) > limit:
        raise InvalidInput(f"The {what} is {len(value):,} characters long: keep it under {limit:,}.")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in value):
        raise InvalidInput(f"The {what} contains control characters: remove them and try again.")
    return value


def short(value: str | None, what: str, limit: int = VALUE_MAX) -> str | None:
    """Single-line values (tag values, params, run ids, sources)."""
    value = text(value, what, limit)
    if value is not None and "\n" in value:
        raise InvalidInput(f"The {what} must be on one line.")
    return value


def actor(value: str | None) -> str:
    """Who acts: a Slack user id, a CI job name, a token name."""
    if not value or not value.strip():
        raise InvalidInput("Say who is acting: add --actor NAME (for example --actor ci-pipeline).")
    checked = short(value.strip(), "actor", ACTOR_MAX)
    assert checked is not None
    return checked


def environment(value: str, known: tuple[str, ...]) -> str:
    """Environments are a closed list from the policy file; say which exist."""
    candidate = value.strip().lower()
    if candidate.startswith("@"):
        candidate = candidate[1:]
    if candidate not in known:
        raise InvalidInput(
            f"There is no environment '{preview(value)}': use one of {', '.join(known)}."
            + did_you_mean(candidate, known)
        )
    return candidate


def environment_name(value: str) -> str:
    """Shape check for environment names declared in the policy file."""
    if not ENV_RE.fullmatch(value):
        raise InvalidInput(
            f"'{preview(value)}' is not a valid environment name: use lower-case letters, digits, '_' or '-'."
        )
    return value
