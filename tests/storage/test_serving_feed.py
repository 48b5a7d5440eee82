"""The serving feed: every pointer move committed through any connection reaches the
subscribers (PostgreSQL NOTIFY from the migration's trigger; SQLite's audit poll), nothing
else does, and `sync()` returns only after what was committed before it was delivered."""

from __future__ import annotations

import queue
import time

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


def _listening(feed: ServingFeed, inbox: queue.Queue[list[Change] | None]) -> None:
    """PostgreSQL says "forget everything" (None) once its LISTEN connection is up; SQLite is ready at once."""
    deadline = time.monotonic() + 30
    while not feed.sync():
        assert time.monotonic() < deadline, "the feed never started listening"
        time.sleep(0.05)  # polling a condition with a deadline
    _drain(inbox)


def test_pointer_moves_from_another_connection_reach_the_subscriber(db: Database) -> None:
    writer_db = Database(DatabaseSettings(url=db.url))
    writer = Registry(writer_db)
    for n in (1, 2):
        writer.register(NewVersion(model="Churn", artifact_uri=f"s3://m/{n}", actor="ci"))
    feed = ServingFeed(db)
    inbox: queue.Queue[list[Change] | None] = queue.Queue()
    feed.subscribe(inbox.put)
    try:
        _listening(feed, inbox)
        writer.promote("churn", "1", "production", actor="ci")
        writer.promote("churn", "2", "production", actor="ci")
        writer.promote("churn", "1", "staging", actor="ci")
        writer.register(NewVersion(model="Churn", artifact_uri="s3://m/3", actor="ci"))  # not a move
        got: list[Change] = []
        deadline = time.monotonic() + 30
        while len(got) < 3:
            remaining = deadline - time.monotonic()
            assert remaining > 0, got
            try:
                got += inbox.get(timeout=remaining) or []
            except queue.Empty:
                break
        assert got == [Change("churn", "production", 1), Change("churn", "production", 2),
                       Change("churn", "staging", 1)]
        assert feed.sync() and _drain(inbox) == []  # the register signalled nothing
    finally:
        feed.close()
        writer_db.dispose()


def test_sync_returns_after_what_was_committed_before_it_is_delivered(db: Database) -> None:
    registry = Registry(db)
    registry.register(NewVersion(model="churn", artifact_uri="s3://m/1", actor="ci"))
    feed = ServingFeed(db)
    inbox: queue.Queue[list[Change] | None] = queue.Queue()
    feed.subscribe(inbox.put)
    try:
        _listening(feed, inbox)
        # five moves, then a fence: all five are in the inbox when sync() returns, without waiting
        registry.promote("churn", "1", "production", actor="ci")
        for n in range(2, 6):
            registry.register(NewVersion(model="churn", artifact_uri=f"s3://m/{n}", actor="ci"))
            registry.promote("churn", str(n), "production", actor="ci")
        assert feed.sync()
        assert [c.revision for c in _drain(inbox)] == [1, 2, 3, 4, 5]
    finally:
        feed.close()


def test_a_feed_nobody_subscribed_to_costs_nothing_and_syncs_at_once(db: Database) -> None:
    feed = ServingFeed(db)
    assert feed.sync()
    feed.close()
