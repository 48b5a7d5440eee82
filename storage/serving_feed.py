"""Tells a process when a serving state changes, whichever process changed it.

Every pointer move appends exactly one audit row carrying the deployment's new revision
(the registry's invariant), so that row is the signal, on both backends:

* PostgreSQL: a trigger on the insert sends `NOTIFY modelbot_serving` (migration 0009_serving_notify),
  delivered when the move commits, in commit order. One dedicated connection per process
  LISTENs; a held watch costs nothing until a notification arrives. When that connection is
  lost and comes back, changes may have been missed: subscribers hear `None` and forget
  what they cached.
* SQLite has no notifications: a thread reads the audit rows added since its last look
  every `POLL_S` (a primary-key lookup when nothing changed). Writers serialise, so audit ids
  grow in commit order and a range of ids misses nothing.

`sync()` is a fence: when it returns True, every change committed before the call has been
handed to the subscribers. The API calls it after a write, so a read that follows a write
through the same process sees the write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.db import Database
from storage.queries import serving as queries

CHANNEL = "modelbot_serving"
POLL_S = 0.025
FENCE_TIMEOUT_S = 1.0
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 10.0
_FENCE = "fence:"

log = logging.getLogger("modelbot.serving_feed")


@dataclass(frozen=True)
class Change:
    """The serving state of (model, environment) reached `revision`; `model_key` is the
    model's case-folded name, as the registry keys it."""

    model_key: str
    environment: str
    revision: int


# A list of changes, or None: "changes may have been missed, forget everything".
Subscriber = Callable[[list[Change] | None], None]


class ServingFeed:
    """One per process and database; its thread starts with the first subscriber."""

    def __init__(self, db: Database) -> None:
        self._source: _Source = _SqlitePoll(db) if db.is_sqlite else _PostgresListen(db)
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, subscriber: Subscriber) -> None:
        """May touch the database (SQLite reads where to start), so call it off the event loop."""
        with self._lock:
            self._subscribers.append(subscriber)
            if self._thread is None and not self._stop.is_set():
                self._source.prime()
                self._thread = threading.Thread(target=self._source.run, args=(self._stop, self._deliver),
                                                name="modelbot-serving-feed", daemon=True)
                self._thread.start()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._subscribers.remove(subscriber)

    def sync(self) -> bool:
        """Blocks until every change committed before the call was delivered (True), or
        gives up after FENCE_TIMEOUT_S when the feed cannot tell (False)."""
        if self._thread is None:
            return True  # nobody listens, so nobody can be behind
        return self._source.sync(self._deliver)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._source.close()

    def _deliver(self, changes: list[Change] | None) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(changes)
            except RuntimeError:  # its event loop is closed: a server that has stopped
                self.unsubscribe(subscriber)
            except Exception:
                log.exception("a serving-feed subscriber failed")


Deliver = Callable[[list[Change] | None], None]


class _Source:
    def prime(self) -> None:
        """Get ready before the thread starts."""

    def run(self, stop: threading.Event, deliver: Deliver) -> None:
        raise NotImplementedError

    def sync(self, deliver: Deliver) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


class _SqlitePoll(_Source):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()  # one poll at a time: the thread's and sync()'s
        self._conn: sqlite3.Connection | None = None
        self._version = -1
        self._last = 0
        self._failing = False

    def prime(self) -> None:
        with self._lock:
            conn = self._connection()
            self._version = queries.data_version(conn)
            self._last = queries.newest_audit_id(conn)

    def run(self, stop: threading.Event, deliver: Deliver) -> None:
        while not stop.wait(POLL_S):
            try:
                self.poll(deliver)
                self._failing = False
            except Exception as exc:  # the file is being replaced, a disk hiccup: try again next tick
                if not self._failing:
                    log.warning("serving feed: cannot read the audit log (%s); retrying", exc)
                self._failing = True
                self.close()

    def sync(self, deliver: Deliver) -> bool:
        self.poll(deliver)
        return True

    def poll(self, deliver: Deliver) -> None:
        with self._lock:
            conn = self._connection()
            version = queries.data_version(conn)
            if version == self._version:
                return  # nobody committed anything since the last look
            self._version = version
            newest = queries.newest_audit_id(conn)
            if newest <= self._last:
                return
            rows = queries.moves_between(conn, self._last, newest)
            self._last = newest
            if rows:  # delivered under the lock, so a fence cannot overtake a poll in flight
                deliver([Change(*row) for row in rows])

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _connection(self) -> sqlite3.Connection:
        """A connection of its own, in autocommit mode (the engine's connect hook sets it):
        each statement sees the latest commit."""
        if self._conn is None:
            raw = self._db.engine.raw_connection()
            self._conn = raw.driver_connection
            raw.detach()
        assert self._conn is not None
        return self._conn


class _PostgresListen(_Source):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._listening = threading.Event()
        self._fences: dict[str, threading.Event] = {}
        self._raw: Any = None

    def run(self, stop: threading.Event, deliver: Deliver) -> None:
        delay = RECONNECT_MIN_S
        while not stop.is_set():
            try:
                conn = self._listen()
            except Exception as exc:
                log.warning("serving feed: cannot LISTEN (%s); retrying in %.1f s", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            delay = RECONNECT_MIN_S
            self._listening.set()
            deliver(None)  # whatever was read before this connection listened may be stale
            try:
                while not stop.is_set():
                    for note in conn.notifies(timeout=0.5):
                        self._handle(note.payload, deliver)
            except Exception as exc:
                if not stop.is_set():
                    log.warning("serving feed: lost the LISTEN connection (%s); reconnecting", exc)
            finally:
                self._listening.clear()
                self.close()

    def sync(self, deliver: Deliver) -> bool:
        if not self._listening.is_set():
            return False
        token = f"{_FENCE}{uuid.uuid4().hex}"
        arrived = self._fences[token] = threading.Event()
        try:
            with self._db.engine.connect() as conn:
                queries.notify(conn, CHANNEL, token)
                conn.commit()
            return arrived.wait(FENCE_TIMEOUT_S)
        finally:
            self._fences.pop(token, None)

    def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.close()

    def _listen(self) -> Any:
        raw = self._db.engine.raw_connection()
        conn = raw.driver_connection
        raw.detach()  # a connection of its own, not one the pool hands to a request later
        self._raw = conn
        conn.rollback()
        conn.autocommit = True
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _handle(self, payload: str, deliver: Deliver) -> None:
        if payload.startswith(_FENCE):
            arrived = self._fences.get(payload)
            if arrived is not None:  # everything committed before it has been delivered
                arrived.set()
            return
        try:
            data = json.loads(payload)
            change = Change(str(data["model"]), str(data["environment"]), int(data["revision"]))
        except (ValueError, KeyError, TypeError):
            log.warning("serving feed: ignoring a malformed notification %.200r", payload)
            return
        deliver([change])

