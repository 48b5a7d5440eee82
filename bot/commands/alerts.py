"""The `/model` grammar for alert rules, firing alerts and silences.

    alert add MODEL[@ENV] METRIC OP THRESHOLD [options…]
    alert add MODEL[@ENV] METRIC anomalous [k 4] [window 7d] [options…]
        options: for D · severity warning|critical (or just the word) · #channel ·
                 stable|canary|both · no-data keep|alert|ok · keep-firing-for D · failure-limit N
    alert list [MODEL]
    alert rm RULE
    alerts [MODEL]                              firing, pending and silenced now
    ack ALERT                                   acknowledge an alert (the card's Acknowledge)
    silences [MODEL]
    silence MODEL[@ENV] DURATION [rule RULE] [reason…]
    unsilence SILENCE

ENV defaults to production. OP is one of `< <= > >= == !=`; `error_rate>0.05` written without
spaces works too. THRESHOLD is a number, or `previous-0.02` / `previous.auc - 0.02` to compare
with the previous version. The grammar checks shapes only (durations, numbers, channel links);
which models, metrics and environments exist, and who may change rules, is the domain's and
the handler's business, so a refusal for either reason stores nothing.

Channels: Slack sends a channel the user picked from the `#` list as `<#C123|name>` (the
manifest sets `should_escape: true`); a raw id (`C0123ABCD`) is accepted by shape; a `#name`
Slack did not turn into a link (typed fast, or in the shell) stays a name here, and the handler
looks it up through Slack's conversations API before the rule is added (no network in a parser).

The rule words become the domain's one rule shape (`parse_rule`, which modelbot.toml's
`[[alerts.rules]]` uses too), so `alert add` and the file accept exactly the same rules.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.commands.grammar import Command, CommandSpec, UsageError, command, env_token, expect
from bot.domain.alerting.rules import NO_DATA, OPS, TARGETS, Rule, parse_rule, parse_threshold
from bot.domain.channels import CHANNEL_LINK, CHANNEL_NAME
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInput
from bot.domain.names import preview

# In declaration order: the order of `/model help`.
SPECS: list[CommandSpec] = []

DEFAULT_ENV = "production"
_OP_SPLIT = re.compile(r"(<=|>=|==|!=|=>|=<|<>|<|>|=)")
_ID = re.compile(r"[0-9]{1,12}")
_ALERT_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,30}")  # a card goes to a channel, never a DM
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_ALIASES = {
    "no-data": "no-data", "nodata": "no-data", "no_data": "no-data",
    "keep-firing-for": "keep-firing-for", "keep_firing_for": "keep-firing-for",
    "failure-limit": "failure-limit", "failure_limit": "failure-limit",
    "min-coverage": "min-coverage", "min_coverage": "min-coverage",
    "for": "for", "severity": "severity", "k": "k", "window": "window",
}
_LABELS = {"for_": "`for` duration", "keep_firing_for": "keep-firing-for duration", "no_data": "no-data policy",
           "failure_limit": "failure limit", "anomaly_k": "k", "window": "window", "min_coverage": "min-coverage"}
ADD_USAGE = "alert add MODEL[@ENV] METRIC OP THRESHOLD [for 5m] [severity critical] [#channel] [canary|both]"
OPTIONS_HINT = ("options are: for 5m, severity warning|critical, #channel, stable|canary|both, no-data keep|alert|ok, "
                "keep-firing-for 10m, failure-limit 3, min-coverage 50% (and k 4, window 7d for anomalous)")


@dataclass(frozen=True)
class AlertAdd(Command):
    """The rule as typed, in the domain's one rule shape (its channel may still be a `#name`)."""

    rule: Rule

    @property
    def name(self) -> str:
        return "alert"


@dataclass(frozen=True)
class AlertList(Command):
    model: str | None = None

    @property
    def name(self) -> str:
        return "alert"


@dataclass(frozen=True)
class AlertRemove(Command):
    rule: str

    @property
    def name(self) -> str:
        return "alert"


@dataclass(frozen=True)
class AlertsNow(Command):
    model: str | None = None

    @property
    def name(self) -> str:
        return "alerts"


@dataclass(frozen=True)
class Acknowledge(Command):
    alert: str

    @property
    def name(self) -> str:
        return "ack"


@dataclass(frozen=True)
class SilenceAdd(Command):
    model: str
    environment: str
    duration: str
    rule: str | None = None
    reason: str | None = None

    @property
    def name(self) -> str:
        return "silence"


@dataclass(frozen=True)
class SilenceList(Command):
    model: str | None = None

    @property
    def name(self) -> str:
        return "silences"


@dataclass(frozen=True)
class Unsilence(Command):
    silence: str

    @property
    def name(self) -> str:
        return "unsilence"


# ---- helpers --------------------------------------------------------------------------------------


def model_and_env(token: str) -> tuple[str, str]:
    """`churn` → (churn, production); `churn@staging` → (churn, staging)."""
    model, at, env = token.partition("@")
    if not model:
        raise UsageError(f"'{preview(token)}' does not start with a model name: write for example churn@production.")
    return model, env_token(env) if at else DEFAULT_ENV


def channel_token(token: str) -> str | None:
    """A channel id from a link or a raw id, a `#name` as typed (looked up by the handler); None
    when the token is not channel-shaped."""
    link = CHANNEL_LINK.match(token)
    if link:
        return link.group(1)
    bare = token.removeprefix("#")
    if _ALERT_CHANNEL_ID.fullmatch(bare):
        return bare
    name = CHANNEL_NAME.match(token)
    if name:
        return "#" + name.group(1).lower()
    if token.startswith("#"):
        raise UsageError(f"'{preview(token)}' is not a channel: pick it from the list that opens when you type #, "
                         "or give its id (like C0123ABCD, from the channel's details).")
    return None


def _number_id(token: str, what: str, example: str) -> str:
    text = token.strip().lstrip("#")
    if not _ID.fullmatch(text):
        raise UsageError(f"'{preview(token)}' is not {what}: use the number from {example}.")
    return text


def _comparison_tokens(words: list[str]) -> list[str]:
    """Split `error_rate>0.05` into words; channel links (which contain < and >) stay whole."""
    out: list[str] = []
    for word in words:
        if word.startswith("<#"):
            out.append(word)
        else:
            out.extend(p for p in _OP_SPLIT.split(word) if p)
    return out


def _threshold(words: list[str], metric: str) -> tuple[str, list[str]]:
    """THRESHOLD and the words after it: a number, or previous[.METRIC] [±N] in one to three words."""
    if not words:
        raise UsageError("Missing the threshold after the comparison, for example `> 0.05`.")
    first, rest = words[0], words[1:]
    if not first.lower().startswith("previous"):
        parse_threshold(first)  # NaN, inf, words: refused here with the usage line
        return first, rest
    tail = first[len("previous"):]
    if tail.startswith("."):
        if not tail[1:].startswith(metric):
            raise UsageError(f"'{preview(first)}' compares another metric: a rule on {preview(metric)} compares "
                             f"with previous.{preview(metric)} (or just previous).")
        tail = tail[1 + len(metric):]
    if not tail and len(rest) > 1 and rest[0] in ("-", "+") and _NUMBER.match(rest[1]):
        tail, rest = rest[0] + rest[1], rest[2:]
    elif not tail and rest and rest[0][:1] in ("-", "+") and _NUMBER.match(rest[0]):
        tail, rest = rest[0], rest[1:]
    text = "previous" + tail
    parse_threshold(text)
    return text, rest


class _Options:
    """The optional words after the comparison, each at most once."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def set(self, key: str, value: object, word: str) -> None:
        if key in self.values:
            raise UsageError(f"'{preview(word)}' sets the {_LABELS.get(key, key)} a second time.")
        self.values[key] = value


def _options(words: list[str], *, anomaly: bool) -> dict[str, object]:
    found = _Options()
    i = 0
    while i < len(words):
        word = words[i]
        lower = word.lower()
        channel = channel_token(word)
        if channel is not None:
            found.set("channel", channel, word)
            i += 1
            continue
        if lower in ("warning", "critical"):
            found.set("severity", lower, word)
            i += 1
            continue
        if lower in TARGETS:
            found.set("target", lower, word)
            i += 1
            continue
        key = _ALIASES.get(lower)
        if key is None:
            raise UsageError(f"'{preview(word)}' was not expected: {OPTIONS_HINT}.")
        if i + 1 >= len(words):
            raise UsageError(f"Missing the value after '{preview(word)}'.")
        value = words[i + 1]
        if key in ("for", "keep-firing-for", "window"):
            parse_duration(value, f"`{key}` duration")  # the word's shape; the rule checks its range
            found.set({"for": "for_", "keep-firing-for": "keep_firing_for"}.get(key, key), value, word)
        elif key == "severity":
            if value.lower() not in ("warning", "critical"):
                raise UsageError(f"Severity is warning or critical, not '{preview(value)}'.")
            found.set("severity", value.lower(), word)
        elif key == "no-data":
            if value.lower() not in NO_DATA:
                raise UsageError(f"no-data is keep, alert or ok, not '{preview(value)}'.")
            found.set("no_data", value.lower(), word)
        elif key == "failure-limit":
            if not _ID.fullmatch(value) or not 1 <= int(value) <= 100:
                raise UsageError(f"failure-limit is a whole number from 1 to 100, not '{preview(value)}'.")
            found.set("failure_limit", int(value), word)
        elif key == "min-coverage":
            found.set("min_coverage", value, word)
        elif key == "k":
            if not anomaly:
                raise UsageError("k belongs to anomaly rules: `alert add MODEL METRIC anomalous k 4`.")
            try:
                k = float(value)
            except ValueError:
                k = math.nan
            if not math.isfinite(k) or not 0 < k <= 100:
                raise UsageError(f"k is a number between 0 and 100, like 4, not '{preview(value)}'.")
            found.set("anomaly_k", k, word)
        i += 2
    if "window" in found.values:
        if not anomaly:
            raise UsageError("window belongs to anomaly rules: `alert add MODEL METRIC anomalous window 7d`.")
        found.values["anomaly_window"] = found.values.pop("window")
    return found.values


# ---- parsers --------------------------------------------------------------------------------------


@command(
    SPECS,
    "alert", "alert add MODEL[@ENV] METRIC OP THRESHOLD [for D] … | alert list [MODEL] | alert rm RULE",
    "alert rules: add one, list them, remove one",
    # help renders details as mrkdwn: the comparisons are written as entities, as Slack wants them
    details="OP is &lt; &lt;= &gt; &gt;= == !=; THRESHOLD a number or previous-0.02 (against the previous version). "
    "Options: `for 5m` (pending until it held that long), `severity warning|critical`, `#channel`, "
    "`stable|canary|both` (what it watches; default stable), `no-data keep|alert|ok` (default keep: the "
    "state stays and the card says no data), `keep-firing-for 10m`, `min-coverage 50%` (a quality rule judges "
    "the newest window with at least that share of labels back), `failure-limit 3` (failing canary "
    "evaluations before a critical rule aborts the canary). Anomalies: `alert add churn latency_p95_ms "
    "anomalous k 4 window 7d`. ENV defaults to production. Deployers and admins may add and remove rules.",
    aliases=("rule",),
)
def _parse_alert(args: list[str]) -> Command:
    expect(args, 1, None, "add, list or rm, for example `alert list churn`")
    action, rest = args[0].lower(), args[1:]
    if action in ("list", "ls"):
        expect(rest, 0, 1, "model name")
        return AlertList(rest[0] if rest else None)
    if action in ("rm", "remove", "delete", "del"):
        expect(rest, 1, 1, "the rule number from `alert list`, for example `alert rm 12`")
        return AlertRemove(_number_id(rest[0], "a rule number", "`/model alert list`"))
    if action != "add":
        raise UsageError(f"'{preview(args[0], 20)}' is not an alert action: use add, list or rm.")
    try:
        return _parse_add(rest)
    except InvalidInput as exc:  # UsageError included: show the usage of `alert add`, not of all three
        raise UsageError(exc.message, f"/model {ADD_USAGE}") from None


def _parse_add(args: list[str]) -> AlertAdd:
    words = _comparison_tokens(args[1:4]) + args[4:]
    if not args or len(words) < 2:
        raise UsageError("Give the model, the metric and a condition, for example "
                         "`alert add churn error_rate > 0.05 for 5m`.", f"/model {ADD_USAGE}")
    model, env = model_and_env(args[0])
    metric, rest = words[0], words[1:]
    if rest[0].lower() in ("anomalous", "anomaly"):
        options = _options(rest[1:], anomaly=True)
        return AlertAdd(parse_rule(model, env, metric, kind="anomaly", **options))  # type: ignore[arg-type]
    op = rest[0]
    if op not in OPS:
        raise UsageError(f"'{preview(op, 10)}' is not a comparison: use one of {' '.join(OPS)}.")
    threshold, rest = _threshold(rest[1:], metric)
    options = _options(rest, anomaly=False)
    return AlertAdd(parse_rule(model, env, metric, op=op, threshold=threshold, **options))  # type: ignore[arg-type]


@command(SPECS, "alerts", "alerts [MODEL]", "what is firing, pending and silenced now", aliases=("firing",))
def _parse_alerts(args: list[str]) -> Command:
    expect(args, 0, 1, "model name")
    return AlertsNow(args[0] if args else None)


@command(SPECS, "ack", "ack ALERT", "acknowledge an alert: its card shows you are on it",
         details="ALERT is the number on the card and in `/model alerts`. Deployers and admins may acknowledge.",
         aliases=("acknowledge",))
def _parse_ack(args: list[str]) -> Command:
    expect(args, 1, 1, "the alert number from `alerts`, for example `ack 12`")
    return Acknowledge(_number_id(args[0], "an alert number", "`/model alerts`"))


@command(
    SPECS,
    "silence", "silence MODEL[@ENV] DURATION [rule RULE] [reason…]", "mute a model's alert notifications for a while",
    details="Evaluation goes on; notifications resume when the silence ends (at most 30d), and an alert still "
    "firing then notifies. ENV defaults to production. Example: `/model silence churn 2h retraining`.",
    aliases=("mute",),
)
def _parse_silence(args: list[str]) -> Command:
    expect(args, 2, None, "the model and a duration, for example `silence churn 2h retraining`")
    model, env = model_and_env(args[0])
    parse_duration(args[1], "silence duration")
    rest = args[2:]
    rule = None
    if rest and rest[0].lower() == "rule":
        if len(rest) < 2:
            raise UsageError("Missing the rule number after 'rule'.")
        rule, rest = _number_id(rest[1], "a rule number", "`/model alert list`"), rest[2:]
    return SilenceAdd(model, env, args[1], rule, " ".join(rest) or None)


@command(SPECS, "silences", "silences [MODEL]", "active silences and when they end")
def _parse_silences(args: list[str]) -> Command:
    expect(args, 0, 1, "model name")
    return SilenceList(args[0] if args else None)


@command(SPECS, "unsilence", "unsilence SILENCE", "end a silence now", aliases=("unmute",))
def _parse_unsilence(args: list[str]) -> Command:
    expect(args, 1, 1, "the silence number from `silences`, for example `unsilence 7`")
    return Unsilence(_number_id(args[0], "a silence number", "`/model silences`"))
