"""The serving feed: every pointer move committed through any connection reaches the
subscribers (PostgreSQL NOTIFY from the migration's trigger; SQLite's audit poll), nothing
else does, and `sync()` returns only after what was committed before it was delivered."""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Iterator

from bot.domain.registry import NewVersion, Registry
from storage.db import Database, DatabaseSettings
from storage.serving_feed import Change, ServingFeed


def _drain(inbox: queue.Queue[list[Change] | None]) -> list[Change]:
    found: list[Change] = []
    while True:
        try:
            batch = inbox.get_nowait()
        except queue.Empty:
            return found
        found += batch or []


@contextlib.contextmanager
def listening(db: Database) -> Iterator[tuple[ServingFeed, queue.Queue[list[Change] | None]]]:
    """A feed whose subscriber is a queue, once it listens (PostgreSQL: its LISTEN connection is up)."""
    feed = ServingFeed(db)
    inbox: queue.Queue[list[Change] | None] = queue.Queue()
    feed.subscribe(inbox.put)
    try:
        deadline = time.monotonic() + 30
        while not feed.sync():
            assert time.monotonic() < deadline, "the feed never started listening"
            time.sleep(0.05)  # polling a condition with a deadline
        _drain(inbox)
        yield feed, inbox
    finally:
        feed.close()


def test_pointer_moves_from_another_connection_reach_the_subscriber(db: Database) -> None:
    writer_db = Database(DatabaseSettings(url=db.url))
    writer = Registry(writer_db)
    for n in (1, 2):
        writer.register(NewVersion(model="Churn", artifact_uri=f"s3://m/{n}", actor="ci"))
    try:
        with listening(db) as (feed, inbox):
            writer.promote("churn", "1", "production", actor="ci")
            writer.promote("churn", "2", "production", actor="ci")
            writer.promote("churn", "1", "staging", actor="ci")
            writer.register(NewVersion(model="Churn", artifact_uri="s3://m/3", actor="ci"))  # not a move
            assert _receive(inbox, 3) == [Change("churn", "production", 1), Change("churn", "production", 2),
                                          Change("churn", "staging", 1)]
            assert feed.sync() and _drain(inbox) == []  # the register signalled nothing
    finally:
        writer_db.dispose()


def _receive(inbox: queue.Queue[list[Change] | None], count: int, timeout_s: float = 30) -> list[Change]:
    """At least `count` changes, waiting on the queue with a deadline."""
    got: list[Change] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        try:
            got += inbox.get(timeout=max(0.0, deadline - time.monotonic())) or []
        except queue.Empty:
            break
    return got


def test_sync_returns_after_what_was_committed_before_it_is_delivered(db: Database) -> None:
    registry = Registry(db)
    registry.register(NewVersion(model="churn", artifact_uri="s3://m/1", actor="ci"))
    with listening(db) as (feed, inbox):
        # five moves, then a fence: all five are in the inbox when sync() returns, without waiting
        registry.promote("churn", "1", "production", actor="ci")
        for n in range(2, 6):
            registry.register(NewVersion(model="churn", artifact_uri=f"s3://m/{n}", actor="ci"))
            registry.promote("churn", str(n), "production", actor="ci")
        assert feed.sync()
        assert [c.revision for c in _drain(inbox)] == [1, 2, 3, 4, 5]


def test_a_feed_nobody_subscribed_to_costs_nothing_and_syncs_at_once(db: Database) -> None:
    feed = ServingFeed(db)
    assert feed.sync()
    feed.close()
