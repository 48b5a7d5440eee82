"""Which bot scope each Slack feature we use needs.

The manifest must request exactly these (tests/test_manifest.py scans the code for the Web
API methods it calls and compares). Methods mapped to None need no scope of their own.
"""

from __future__ import annotations

METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None,
    "views.publish": None,
    "views.open": None,
    "views.update": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.getPermalink": None,
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.upload.v2": "files:write",
    "files.uploadV2": "files:write",  # client.files_upload_v2 as tests/test_manifest.py spells it (digest charts)
    "usergroups.users.list": "usergroups:read",
    "usergroups.list": "usergroups:read",
    "users.info": "users:read",
    "conversations.info": "channels:read",
    # `#channel-name` in commands → channel id (public channels; bot/slack/channels.py)
    "conversations.list": "channels:read",
    # The outbox worker reads history to find a message an interrupted attempt may already have
    # posted (idempotent retries). Public channels need channels:history; a private approval
    # channel would also need groups:history, which we do not request until one is supported.
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
}
# Features that need a scope without a Web API call: slash commands need `commands`.
FEATURE_SCOPES = {"slash_commands": "commands"}
