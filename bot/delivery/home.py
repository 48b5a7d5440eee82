"""Deliver a `home` outbox row: publish the App Home again for the people a change concerns.

The row says only what changed (`{"environment": …, "request": …}`); who should see a new
Home and what it shows are decided at send time by a `HomeRenderer` (`bot.handlers.home.
HomeRefresher`, which reads the current state), so a late or retried refresh can only ever
publish the present. That also makes a refresh idempotent: publishing a Home twice shows the
same thing, so a retry after an unknown outcome simply publishes again (no lookup needed,
unlike messages). Rows of one environment share a topic, and the worker skips a row when a
newer one of its topic is waiting (`superseded_refresh`): a burst of votes costs one publish
per person, not one per vote.

A worker built without a renderer (tests that only look at messages) marks the rows as
skipped; `build_worker` always passes one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session, col, select

from bot.delivery.jobs import Job, Outcome
from bot.domain.errors import Unavailable
from storage.models import OutboxMessage

HOME_KIND = "home"
# a person who left the workspace, or a workspace with the Home tab turned off: nothing to refresh
SKIPPED_ERRORS = frozenset({"user_not_found", "not_enabled"})

# SlackSender._call: (job, method, call, *, sending, channel=None) -> response; raises to end the send
Caller = Callable[..., Any]


class HomeRenderer(Protocol):
    def audience(self, data: Mapping[str, Any]) -> Sequence[str]:
        """The Slack user ids whose Home this row refreshes."""
        ...

    def view(self, user_id: str) -> dict[str, Any]:
        """That person's Home view, from current state."""
        ...


def send_home(client: WebClient, job: Job, call: Caller, renderer: HomeRenderer | None) -> Outcome:
    if renderer is None:
        return Outcome.delivered({"skipped": "this worker publishes no App Home"}, label="skipped")
    try:
        users = list(renderer.audience(job.data))
    except Unavailable as exc:
        return Outcome.retry(f"home refresh: {exc.message}", maybe_sent=False)
    published, skipped = [], []
    for user in users:
        try:
            view = renderer.view(user)
        except Unavailable as exc:
            return Outcome.retry(f"home refresh for {user}: {exc.message}", maybe_sent=False)

        def publish(user: str = user, view: dict[str, Any] = view) -> Any:
            try:
                return client.views_publish(user_id=user, view=view)
            except SlackApiError as exc:
                if exc.response is not None and exc.response.get("error") in SKIPPED_ERRORS:
                    return None
                raise

        if call(job, "views.publish", publish, sending=False) is None:
            skipped.append(user)
        else:
            published.append(user)
    return Outcome.delivered({"published": published, "skipped_users": skipped})


def superseded_refresh(session: Session, row: OutboxMessage) -> Outcome | None:
    """A newer refresh of the same topic is waiting: this one would publish nothing new."""
    newer = session.exec(
        select(OutboxMessage.id).where(OutboxMessage.topic == row.topic, OutboxMessage.kind == HOME_KIND,
                                       col(OutboxMessage.id) > row.id, OutboxMessage.status == "pending")
        .limit(1)
    ).first()
    if newer is None:
        return None
    return Outcome.delivered({"skipped": f"superseded by outbox row {newer}"}, label="skipped")
