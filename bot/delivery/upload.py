"""Deliver an `upload` outbox row: a file (a digest's PNG chart) into the thread of a keyed message.

`WebClient.files_upload_v2` performs Slack's three-step external upload
(files.getUploadURLExternal → POST the bytes to the returned URL → files.completeUploadExternal
with the channel and thread_ts); the retired `files.upload` is never used.

The worker resolves the row's `message_key` to the posted message (`job.target`) at claim time,
and rows of one topic go out in order, so the digest is in Slack before its chart. Idempotency:
when an earlier attempt's outcome is unknown, the thread is searched for a file with this row's
file name (digest file names are unique per subscription and period) before uploading again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackRequestError

from bot.delivery.jobs import Job, Outcome, SlackTarget

# SlackSender._call: (job, method, call, *, sending, channel=None) -> response; raises to end the send
Caller = Callable[..., Any]


def send_upload(client: WebClient, job: Job, call: Caller) -> Outcome:
    target = job.target
    if target is None:
        return Outcome.failed(f"no Slack message is recorded under {job.message_key!r} for this upload")
    try:
        content = base64.b64decode(str(job.data["png_b64"]), validate=True)
    except (KeyError, binascii.Error, ValueError):
        return Outcome.failed("upload row without valid base64 file content (data.png_b64)")
    if not content:
        return Outcome.failed("upload row with an empty file")
    filename = str(job.data.get("filename") or f"modelbot-{job.id}.png")
    title = str(job.data.get("title") or filename)
    alt_text = job.data.get("alt_text")
    if job.maybe_sent:
        found = _find_file(client, job, target, filename, call)
        if found is not None:
            return Outcome.delivered({"channel": target.channel, "thread_ts": target.ts, "file_id": found,
                                      "found": "replies"})

    def upload() -> Any:
        try:
            return client.files_upload_v2(channel=target.channel, thread_ts=target.ts, content=content,
                                          filename=filename, title=title, alt_txt=alt_text)
        except SlackRequestError as exc:  # step 2 answered with a non-200 status: Slack's side, retry
            raise ConnectionError(str(exc)) from exc

    response = call(job, "files.upload.v2", upload, sending=True)
    file = response.get("file") or {}
    return Outcome.delivered({"channel": target.channel, "thread_ts": target.ts, "file_id": file.get("id")})


def _find_file(client: WebClient, job: Job, target: SlackTarget, filename: str, call: Caller) -> str | None:
    response = call(job, "conversations.replies", lambda: client.conversations_replies(
        channel=target.channel, ts=target.ts, limit=200), sending=False)
    for message in response.get("messages") or []:
        for file in message.get("files") or []:
            if file.get("name") == filename:
                return str(file.get("id"))
    return None
