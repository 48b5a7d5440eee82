"""The `/model` grammar for digest subscriptions.

    subscribe MODEL|* [#channel|dm] daily|weekly|hourly [DAY] [HH:MM] [TZ]
    unsubscribe MODEL|* [#channel|dm] [daily|weekly|hourly]
    subscriptions [#channel|dm|all]

After MODEL the words may come in any order; each is recognised by its shape (a channel link,
id or `#name`, `dm`, a frequency, a weekday, HH:MM, else a time zone), so `subscribe churn
daily 9:30 Europe/Berlin` and `subscribe churn 9:30 daily Europe/Berlin` mean the same. The
target defaults to the channel the command is typed in (typed in a DM: your DM). Links and ids
become ids here; a `#name` stays a name, which the handler looks up in Slack (no network in a
parser); `dm` (or `me`) is the DM of whoever types it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.commands.grammar import Command, CommandSpec, UsageError, command, expect
from bot.domain.channels import CHANNEL_ID, CHANNEL_NAME, channel_id
from bot.domain.errors import InvalidInput
from bot.domain.names import model_name, preview
from bot.domain.schedule import FREQUENCIES, TZ_EXAMPLE, is_weekday, parse_time, parse_timezone, parse_weekday
from bot.domain.subscriptions import ALL_MODELS

# In declaration order: the order of `/model help`.
SPECS: list[CommandSpec] = []

_TIME_SHAPE = re.compile(r"^\d{1,2}:\d{1,2}$")
_CHANNEL_SHAPE = re.compile(r"^(<#.*>|#.*|[CGD][A-Z0-9]{6,})$")
DM = "dm"
_DM_WORDS = ("dm", "me")
EXAMPLE = "`subscribe churn daily 09:00 Europe/Berlin`"


@dataclass(frozen=True)
class Subscribe(Command):
    model: str
    frequency: str
    channel: str | None = None
    at_time: str | None = None
    weekday: int | None = None
    timezone: str | None = None

    @property
    def name(self) -> str:
        return "subscribe"


@dataclass(frozen=True)
class Unsubscribe(Command):
    model: str
    channel: str | None = None
    frequency: str | None = None

    @property
    def name(self) -> str:
        return "unsubscribe"


@dataclass(frozen=True)
class ListSubscriptions(Command):
    channel: str | None = None
    everywhere: bool = False

    @property
    def name(self) -> str:
        return "subscriptions"


def channel_token(token: str) -> str:
    """An id from a link or an id; a `#name` as typed (the handler looks it up)."""
    name = CHANNEL_NAME.match(token)
    if name and not CHANNEL_ID.match(name.group(1)):
        return "#" + name.group(1).lower()
    return channel_id(token)


def _model(token: str) -> str:
    if token in (ALL_MODELS, "all"):
        return ALL_MODELS
    return model_name(token)


@dataclass
class _Words:
    """What the words after MODEL said, each at most once."""

    channel: str | None = None
    frequency: str | None = None
    weekday: int | None = None
    time: str | None = None
    timezone: str | None = None

    def set(self, what: str, value: object, token: str) -> None:
        if getattr(self, what) is not None:
            raise UsageError(f"'{preview(token)}' gives the {what} a second time: give it once.")
        setattr(self, what, value)


def _classify(tokens: list[str], *, allowed: set[str]) -> _Words:
    words = _Words()
    for token in tokens:
        lowered = token.lower()
        if lowered in _DM_WORDS and "channel" in allowed:
            words.set("channel", DM, token)
        elif _CHANNEL_SHAPE.match(token) and "channel" in allowed:
            words.set("channel", channel_token(token), token)
        elif lowered in FREQUENCIES and "frequency" in allowed:
            words.set("frequency", lowered, token)
        elif is_weekday(token) and "weekday" in allowed:
            words.set("weekday", parse_weekday(token), token)
        elif _TIME_SHAPE.match(token) and "time" in allowed:
            words.set("time", parse_time(token), token)
        elif "timezone" in allowed:
            try:
                zone = parse_timezone(token)
            except InvalidInput:
                raise UsageError(
                    f"'{preview(token)}' is not a channel, frequency, weekday, HH:MM time or time zone. "
                    f"Time zones are IANA names ({TZ_EXAMPLE}); for example {EXAMPLE}."
                ) from None
            words.set("timezone", zone, token)
        else:
            raise UsageError(f"'{preview(token)}' was not expected here.")
    return words


@command(
    SPECS,
    "subscribe", "subscribe MODEL|* [#channel|dm] daily|weekly|hourly [DAY] [HH:MM] [TZ]",
    "a digest of a model's (or every model's) numbers, with a chart, on a schedule",
    details="Defaults: this channel, 09:00, UTC, Mondays for weekly. `dm` sends it to you instead. TZ is an IANA "
    "zone such as Europe/Berlin (the time stays 09:00 there across daylight saving). Hourly digests use only the "
    "minutes of HH:MM. Subscribing again with the same model, channel and frequency changes its time. Deployers "
    "and admins subscribe channels; anyone may subscribe their own DM; only the subscriber or an admin changes or "
    f"removes a digest. Example: {EXAMPLE}.",
)
def _parse_subscribe(args: list[str]) -> Command:
    expect(args, 1, 6, f"the model (or * for every model) and how often, for example {EXAMPLE}")
    words = _classify(args[1:], allowed={"channel", "frequency", "weekday", "time", "timezone"})
    if words.frequency is None:
        raise UsageError(f"Say how often: daily, weekly or hourly, for example {EXAMPLE}.")
    if words.weekday is not None and words.frequency != "weekly":
        raise UsageError("A weekday only goes with weekly digests, for example `subscribe churn weekly fri 16:00`.")
    return Subscribe(_model(args[0]), words.frequency, channel=words.channel, at_time=words.time,
                     weekday=words.weekday, timezone=words.timezone)


@command(
    SPECS,
    "unsubscribe", "unsubscribe MODEL|* [#channel|dm] [daily|weekly|hourly]", "stop a digest",
    details="Without a frequency every digest of that model in the channel stops. Only the subscriber or an admin "
    "may remove a digest.",
)
def _parse_unsubscribe(args: list[str]) -> Command:
    expect(args, 1, 3, "the model (or *), for example `unsubscribe churn daily`")
    words = _classify(args[1:], allowed={"channel", "frequency"})
    return Unsubscribe(_model(args[0]), channel=words.channel, frequency=words.frequency)


@command(
    SPECS,
    "subscriptions", "subscriptions [#channel|dm|all]",
    "the digests this channel (or your DM, or every channel) gets, and when next",
    aliases=("digests",),
)
def _parse_subscriptions(args: list[str]) -> Command:
    expect(args, 0, 1, "a channel or `all`")
    if not args:
        return ListSubscriptions()
    if args[0].lower() == "all":
        return ListSubscriptions(everywhere=True)
    if args[0].lower() in _DM_WORDS:
        return ListSubscriptions(channel=DM)
    return ListSubscriptions(channel=channel_token(args[0]))
