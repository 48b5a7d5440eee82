"""A sender that shows outbox rows in a terminal instead of calling Slack (the shell's preview).

It stands beside `SlackSender` in the same `DeliveryWorker`: the same rows are claimed in the
same order, rendered by the same templates (`bot.blocks.templates.render`), and recorded the
same way, so what the shell shows is what Slack would receive, when it would receive it. What
differs is only the last step: a post gets a made-up message id (`shell.<row id>`, remembered
under the row's message key exactly as a Slack `ts` is, so later updates and thread replies
find their card), charts are written to a folder instead of uploaded, App Home refreshes are
rendered for each person they concern, and webhooks and MLflow alias writes are shown, not sent.

The sender does not print: it hands each `Preview` to a callback (the shell numbers buttons
and knows people's names). Use it only on a database no real modelbot delivers from: the rows
it shows are recorded as delivered.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.blocks.base import Message
from bot.blocks.templates import render
from bot.delivery.home import HomeRenderer
from bot.delivery.jobs import Job, Outcome

PREVIEW_TS_PREFIX = "shell."
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Preview:
    """One thing the bot would send. `message_id` is the id a post gets (and that an update or a
    thread reply refers to as `parent`); `user_id` is who sees an ephemeral or an App Home."""

    kind: str  # post | update | thread | ephemeral | upload | home | webhook | mlflow_alias
    channel: str | None = None
    user_id: str | None = None
    message_id: str | None = None
    parent: str | None = None
    message: Message | None = None
    view: dict[str, Any] | None = None
    path: Path | None = None
    url: str | None = None
    event: str | None = None


Show = Callable[[Preview], None]


class PreviewSender:
    def __init__(self, show: Show, *, charts_dir: Path, home: HomeRenderer | None = None) -> None:
        self._show = show
        self._charts_dir = charts_dir
        self._home = home

    def send(self, job: Job) -> Outcome:
        handler = {"post": self._post, "update": self._keyed, "thread": self._keyed, "ephemeral": self._ephemeral,
                   "upload": self._upload, "home": self._home_view, "webhook": self._webhook,
                   "mlflow_alias": self._mlflow_alias}.get(job.kind)
        if handler is None:
            return Outcome.failed(f"the preview cannot show outbox rows of kind {job.kind!r}")
        return handler(job)

    def _post(self, job: Job) -> Outcome:
        if not job.channel:
            return Outcome.failed("post row without a channel")
        message_id = f"{PREVIEW_TS_PREFIX}{job.id}"
        self._show(Preview("post", channel=job.channel, message_id=message_id, message=render(job.template, job.data)))
        return Outcome.delivered({"channel": job.channel, "ts": message_id}, remember=(job.channel, message_id))

    def _keyed(self, job: Job) -> Outcome:
        """An edit of the keyed card, or a reply in its thread."""
        if job.target is None:
            return Outcome.failed(f"no message is recorded under {job.message_key!r} for this {job.kind}")
        self._show(Preview(job.kind, channel=job.target.channel, parent=job.target.ts,
                           message=render(job.template, job.data)))
        return Outcome.delivered({"channel": job.target.channel, "ts": job.target.ts})

    def _ephemeral(self, job: Job) -> Outcome:
        if not job.channel or not job.user_id:
            return Outcome.failed("ephemeral row without a channel and a user")
        self._show(Preview("ephemeral", channel=job.channel, user_id=job.user_id,
                           parent=job.target.ts if job.target else None, message=render(job.template, job.data)))
        return Outcome.delivered({"channel": job.channel})

    def _upload(self, job: Job) -> Outcome:
        """The chart goes to `charts_dir/<file name>` (the upload row's own name, made safe)."""
        try:
            content = base64.b64decode(str(job.data["png_b64"]), validate=True)
        except (KeyError, binascii.Error, ValueError):
            return Outcome.failed("upload row without valid base64 file content (data.png_b64)")
        name = _SAFE_NAME.sub("-", str(job.data.get("filename") or f"modelbot-{job.id}.png")).strip("-.")
        self._charts_dir.mkdir(parents=True, exist_ok=True)
        path = self._charts_dir / (name or f"modelbot-{job.id}.png")
        path.write_bytes(content)
        self._show(Preview("upload", channel=job.target.channel if job.target else job.channel,
                           parent=job.target.ts if job.target else None, path=path))
        return Outcome.delivered({"path": str(path)})

    def _home_view(self, job: Job) -> Outcome:
        if self._home is None:
            return Outcome.delivered({"skipped": "this preview renders no App Home"}, label="skipped")
        users = list(self._home.audience(job.data))
        for user in users:
            self._show(Preview("home", user_id=user, view=self._home.view(user)))
        return Outcome.delivered({"published": users})

    def _mlflow_alias(self, job: Job) -> Outcome:
        d = job.data
        self._show(Preview("mlflow_alias", event=f"{d.get('model')} {d.get('environment')}: stable "
                                                  f"{d.get('stable')}, canary {d.get('canary')}"))
        return Outcome.delivered({"shown": True})

    def _webhook(self, job: Job) -> Outcome:
        self._show(Preview("webhook", url=str(job.data.get("url") or ""), event=job.template))
        return Outcome.delivered({"shown": True})
