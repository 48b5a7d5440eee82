"""Send one outbox row to Slack: post, update, thread reply, ephemeral, upload or App Home refresh.

Idempotency: every post, thread reply and card update carries Slack message metadata naming
its outbox row. When an earlier attempt's outcome is unknown (a timeout, a 5xx, or a worker
that died mid-send), the retry first looks for that metadata in the channel
(`conversations.history`) or the thread (`conversations.replies`); if the message is there,
its ts is recorded instead of posting again. Ephemeral messages cannot be looked up (Slack
keeps no history of them), so they are delivered at least once: a rare retry after a timeout
may show the requester the same link twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackObjectFormationError

from bot.blocks.templates import render
from bot.delivery.home import HomeRenderer, send_home
from bot.delivery.jobs import Job, Outcome, SlackTarget, metadata_outbox_id, outbox_metadata
from bot.delivery.retry import TRANSPORT_ERRORS, classify_slack_error, transport_failure

log = logging.getLogger("modelbot.delivery")

# Look this far before a row's creation for its message: covers clock skew between our hosts and Slack.
LOOKBACK = timedelta(seconds=60)
HISTORY_PAGE = 200
HISTORY_MAX_PAGES = 10


class _Stop(Exception):
    """Ends a send early with the outcome to record."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


class SlackSender:
    def __init__(self, client: WebClient, *, clock: Callable[[], datetime], http_timeout_s: float,
                 home: HomeRenderer | None = None) -> None:
        self._client = client
        self._home_renderer = home
        self._clock = clock
        self._http_timeout = timedelta(seconds=http_timeout_s)

    def send(self, job: Job) -> Outcome:
        handler = {"post": self._post, "thread": self._thread, "update": self._update,
                   "ephemeral": self._ephemeral, "upload": self._upload, "home": self._home}.get(job.kind)
        if handler is None:
            return Outcome.failed(f"the delivery worker cannot send outbox rows of kind {job.kind!r}")
        try:
            return handler(job)
        except _Stop as stop:
            return stop.outcome

    # ---- kinds --------------------------------------------------------------------------
    # Calls are spelled `client.<method>(...)` so tests/test_manifest.py sees every Web API
    # method this module needs and checks its scope is in manifest.yml.

    def _post(self, job: Job) -> Outcome:
        if not job.channel:
            return Outcome.failed("post row without a channel")
        client, channel = self._client, job.channel
        payload = self._render(job, job.data)
        if job.maybe_sent:
            found = self._find_in_channel(job, channel)
            if found is not None:
                return Outcome.delivered({"channel": channel, "ts": found, "found": "history"},
                                         remember=(channel, found))
        response = self._call(job, "chat.postMessage", lambda: client.chat_postMessage(
            channel=channel, metadata=outbox_metadata(job.id), **payload), sending=True, channel=channel)
        posted_in, ts = str(response["channel"]), str(response["ts"])
        return Outcome.delivered({"channel": posted_in, "ts": ts}, remember=(posted_in, ts))

    def _thread(self, job: Job) -> Outcome:
        client, target = self._client, self._require_target(job)
        payload = self._render(job, job.data)
        if job.maybe_sent:
            found = self._find_in_thread(job, target)
            if found is not None:
                return Outcome.delivered({"channel": target.channel, "ts": found, "found": "replies"})
        response = self._call(job, "chat.postMessage", lambda: client.chat_postMessage(
            channel=target.channel, thread_ts=target.ts, metadata=outbox_metadata(job.id), **payload),
            sending=True, channel=target.channel)
        return Outcome.delivered({"channel": str(response["channel"]), "ts": str(response["ts"]),
                                  "thread_ts": target.ts})

    def _update(self, job: Job) -> Outcome:
        """Edit the card in place. The metadata names the last row applied, so a retry after an
        unknown outcome can tell whether this very update already landed."""
        client, target = self._client, self._require_target(job)
        payload = self._render(job, job.data)
        if job.maybe_sent and self._already_updated(job, target):
            return Outcome.delivered({"channel": target.channel, "ts": target.ts, "found": "history"})
        self._call(job, "chat.update", lambda: client.chat_update(
            channel=target.channel, ts=target.ts, metadata=outbox_metadata(job.id), **payload), sending=True)
        return Outcome.delivered({"channel": target.channel, "ts": target.ts})

    def _upload(self, job: Job) -> Outcome:
        """A file into the keyed message's thread (digest charts): see bot.delivery.upload."""
        from bot.delivery.upload import send_upload

        return send_upload(self._client, job, self._call)

    def _home(self, job: Job) -> Outcome:
        """Publish the App Home again for the people a change concerns: see bot.delivery.home."""
        return send_home(self._client, job, self._call, self._home_renderer)

    def _ephemeral(self, job: Job) -> Outcome:
        if not job.channel or not job.user_id:
            return Outcome.failed("ephemeral row without a channel and a user")
        client, channel, user, card = self._client, job.channel, job.user_id, job.target
        data = job.data
        if job.template == "approval_link" and card is not None:
            link = self._call(job, "chat.getPermalink", lambda: client.chat_getPermalink(
                channel=card.channel, message_ts=card.ts), sending=False)
            data = {**data, "permalink": str(link["permalink"])}
        payload = self._render(job, data)
        response = self._call(job, "chat.postEphemeral", lambda: client.chat_postEphemeral(
            channel=channel, user=user, **payload), sending=True)
        return Outcome.delivered({"channel": channel, "message_ts": str(response.get("message_ts") or "")})

    # ---- idempotency lookups ------------------------------------------------------------

    def _find_in_channel(self, job: Job, channel: str) -> str | None:
        client, oldest = self._client, f"{(job.created_at - LOOKBACK).timestamp():.6f}"

        def page(cursor: str | None) -> Any:
            return client.conversations_history(channel=channel, oldest=oldest, include_all_metadata=True,
                                                limit=HISTORY_PAGE, cursor=cursor)

        for message in self._pages(job, "conversations.history", page):
            if metadata_outbox_id(message) == job.id:
                return str(message["ts"])
        return None

    def _find_in_thread(self, job: Job, target: SlackTarget) -> str | None:
        client, oldest = self._client, f"{(job.created_at - LOOKBACK).timestamp():.6f}"

        def page(cursor: str | None) -> Any:
            return client.conversations_replies(channel=target.channel, ts=target.ts, oldest=oldest,
                                                include_all_metadata=True, limit=HISTORY_PAGE, cursor=cursor)

        for message in self._pages(job, "conversations.replies", page):
            if message.get("ts") != target.ts and metadata_outbox_id(message) == job.id:
                return str(message["ts"])
        return None

    def _already_updated(self, job: Job, target: SlackTarget) -> bool:
        client = self._client
        response = self._call(job, "conversations.history", lambda: client.conversations_history(
            channel=target.channel, oldest=target.ts, latest=target.ts, inclusive=True, limit=1,
            include_all_metadata=True), sending=False)
        return any(m.get("ts") == target.ts and metadata_outbox_id(m) == job.id for m in response["messages"])

    def _pages(self, job: Job, method: str, page: Callable[[str | None], Any]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        for _ in range(HISTORY_MAX_PAGES):
            response = self._call(job, method, lambda c=cursor: page(c), sending=False)
            yield from response.get("messages") or []
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or not cursor:
                return

    # ---- helpers ------------------------------------------------------------------------

    def _require_target(self, job: Job) -> SlackTarget:
        if job.target is None:
            raise _Stop(Outcome.failed(
                f"no Slack message is recorded under {job.message_key!r} for this {job.kind}"))
        return job.target

    def _render(self, job: Job, data: dict[str, Any]) -> dict[str, Any]:
        try:
            message = render(job.template, data)
        except (ValueError, KeyError, TypeError, SlackObjectFormationError) as exc:
            raise _Stop(Outcome.failed(
                f"could not render template {job.template!r}: {type(exc).__name__}: {exc}")) from None
        payload = message.payload()
        payload.pop("response_type", None)
        return payload

    def _call(self, job: Job, method: str, call: Callable[[], Any], *, sending: bool,
              channel: str | None = None) -> Any:
        """One Web API call; a failure ends the send with the outcome to record.

        No call starts unless it can finish (one HTTP timeout) before the lease runs out, so no
        other worker can take the row over while this one may still be talking to Slack.
        `sending` marks the call that changes Slack, whose ambiguous failure leaves the row uncertain.
        """
        if self._clock() + self._http_timeout > job.lease_until:
            raise _Stop(Outcome.retry(f"{method}: lease nearly over before the call; trying again",
                                      maybe_sent=job.maybe_sent, retry_after=0))
        try:
            return call()
        except SlackApiError as exc:
            raise _Stop(classify_slack_error(exc, method=method, maybe_sent=job.maybe_sent, sending=sending,
                                             channel=channel)) from None
        except TRANSPORT_ERRORS as exc:
            raise _Stop(transport_failure(exc, method=method, maybe_sent=job.maybe_sent,
                                          sending=sending)) from None
