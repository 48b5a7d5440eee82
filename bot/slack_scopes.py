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
    "usergroups.users.list": "usergroups:read",
    "usergroups.list": "usergroups:read",
    "users.info": "users:read",
    "conversations.info": "channels:read",
}
# Features that need a scope without a Web API call: slash commands need `commands`.
FEATURE_SCOPES = {"slash_commands": "commands"}
