"""Upload rows: a digest's chart goes into the thread of its digest through the three-step upload,
waits for the digest to be posted, fails when the digest never was, and is not uploaded twice
when an earlier attempt's outcome is unknown."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.delivery.jobs import Job, SlackTarget
from bot.delivery.slack_sender import SlackSender
from storage.db import Database
from tests.delivery.support import Clock, enqueue, row, web_client, worker
from tests.slack_fake import SlackFake

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


def upload(db: Database, clock: Clock, key: str = "digest:1:p") -> int:
    return enqueue(db, clock, topic="digest:1", kind="upload", template="digest_chart", message_key=key,
                   data={"png_b64": base64.b64encode(PNG).decode(), "filename": "chart.png", "title": "Chart"})


def test_chart_goes_into_the_thread_of_the_posted_digest(db: Database, slack: SlackFake) -> None:
    clock = Clock()
    enqueue(db, clock, topic="digest:1", message_key="digest:1:p", data={"note": "the digest"})
    up = upload(db, clock)
    w = worker(db, slack, clock, post_interval_s=0)
    try:
        while w.run_once():
            clock.advance(1)
    finally:
        w.close()
    (post,) = slack.messages("C0GENERAL")[:1]
    (file,) = slack.files()
    assert file.completed and file.thread_ts == post.ts and file.content == PNG and file.title == "Chart"
    assert row(db, up).status == "delivered" and row(db, up).result["file_id"] == file.id


def test_upload_fails_when_its_digest_was_never_posted(db: Database, slack: SlackFake) -> None:
    clock = Clock()
    post = enqueue(db, clock, topic="digest:1", channel="C0NOWHERE", message_key="digest:1:p")
    up = upload(db, clock)
    w = worker(db, slack, clock, post_interval_s=0)
    try:
        for _ in range(3):
            w.run_once()
            clock.advance(1)
    finally:
        w.close()
    assert row(db, post).status == "failed"
    assert row(db, up).status == "failed" and "was never posted" in (row(db, up).last_error or "")
    assert slack.files() == []


def test_a_retry_after_an_unknown_outcome_finds_the_file_instead_of_uploading_again(slack: SlackFake) -> None:
    clock = Clock()
    client = web_client(slack)
    ts = client.chat_postMessage(channel="C0GENERAL", text="digest")["ts"]
    client.files_upload_v2(channel="C0GENERAL", thread_ts=ts, content=PNG, filename="chart.png", title="Chart")
    sender = SlackSender(client, clock=clock, http_timeout_s=5)
    job = Job(id=7, topic="digest:1", destination="slack:message:digest:1:p", kind="upload", template="digest_chart", channel="C0GENERAL", user_id=None,
              message_key="digest:1:p", data={"png_b64": base64.b64encode(PNG).decode(), "filename": "chart.png"},
              attempts=2, created_at=clock(), lease_until=clock() + timedelta(seconds=60), maybe_sent=True,
              target=SlackTarget("C0GENERAL", ts))
    outcome = sender.send(job)
    assert outcome.status == "delivered" and outcome.result["found"] == "replies"
    assert len(slack.files()) == 1
