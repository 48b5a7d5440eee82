"""Where a message goes: a Slack channel (public `C…`, private `G…`, a conversation `D…`) or a
person's DM with the bot (their user id `U…`/`W…`, which Slack's chat.postMessage accepts).

People name channels three ways: a link Slack made when they picked it with `#`
(`<#C0123ABCD|ml-team>`, the manifest sets `should_escape`), its id (`C0123ABCD`, from the
channel's details or typed in a shell), or its name as typed (`#ml-team`). Links and ids are
read here; a name needs Slack's conversations API, so front ends resolve it with a
`ChannelResolver` (bot/slack/channels.py) before they call the domain, never inside a
transaction. Without a Slack connection (a CLI with no bot token) names cannot be resolved
and the error says to give the id.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.domain import names
from bot.domain.errors import InvalidInput, Unavailable

CHANNEL_LINK = re.compile(r"^<#([CGD][A-Z0-9]{2,30})(?:\|[^>]{0,80})?>$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
# Slack channel names: lower-case letters, digits, '-', '_' and some Unicode; at most 80
CHANNEL_NAME = re.compile(r"^#([^\s#<>@,&]{1,80})$")
HINT = "pick it with # in Slack so it becomes a link, or give its id (like C0123ABCD, from the channel's details)"

# name (without '#') → channel id; raises NotFound for an unknown name, Unavailable when Slack cannot answer
ChannelResolver = Callable[[str], str]


def no_channel_names(name: str) -> str:
    raise Unavailable(f"I cannot look up #{names.preview(name)} without a Slack connection (SLACK_BOT_TOKEN): "
                      "give the channel's id instead, like C0123ABCD (from the channel's details).")


def looks_like_channel(raw: str) -> bool:
    """A link, an id or a `#name`: what the grammars recognise as a channel by its shape."""
    return bool(CHANNEL_LINK.match(raw) or CHANNEL_ID.match(raw) or raw.startswith("#"))


def is_user(target: str) -> bool:
    return bool(USER_ID.match(target))


def channel_id(raw: str) -> str:
    """The id in a link or a bare id; anything else (a `#name` included) is refused with the hint.
    For places that cannot call Slack: the policy file, and domain checks after resolution."""
    text = raw.strip()
    link = CHANNEL_LINK.match(text)
    if link:
        return link.group(1)
    if CHANNEL_ID.match(text.removeprefix("#")):  # Slack names are lower-case: `#C0123ABCD` is an id
        return text.removeprefix("#")
    if CHANNEL_NAME.match(text):
        raise InvalidInput(f"'{names.preview(text)}' is a channel name I have not looked up: {HINT}.")
    raise InvalidInput(f"'{names.preview(text)}' is not a channel I can post to: {HINT}.")


def resolve(raw: str, resolver: ChannelResolver) -> str:
    """A channel id from a link, an id or a `#name` (looked up through `resolver`)."""
    text = raw.strip()
    name = CHANNEL_NAME.match(text)
    if name and not CHANNEL_ID.match(name.group(1)):
        return resolver(name.group(1).lower())
    return channel_id(text)
