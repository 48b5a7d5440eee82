"""Engine, transactions and locks.

Writers serialise in the database, never in Python: on SQLite every write transaction
starts with `BEGIN IMMEDIATE` (one writer at a time, others wait up to the busy timeout);
on PostgreSQL writers take row locks (`SELECT … FOR UPDATE`) on the rows they change.
Reads use deferred transactions so they never wait for writers (WAL on SQLite).

On SQLite the writers of one process also take turns before they ask for the file lock
(`_write_turns`). SQLite's busy handler is no queue: a waiting writer sleeps and retries,
and under fifty concurrent writers an unlucky one kept losing to newcomers until its
timeout ran out (a 503 in a few thousand registers). With one contender per process the
database lock still decides, but nobody starves.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

DEFAULT_URL = "sqlite:///modelbot.db"
# Newest Alembic revision shipped with this code. tests/storage/test_migrations.py asserts
# it equals the migration scripts' head, so the cheap start-up check cannot drift.
HEAD_REVISION = "0010_audit_subject_token_names"
_WRITE_OPTION = "modelbot_write"
WRITE_QUEUE_FACTOR = 6


class DatabaseBusy(Exception):
    """The database stayed locked by another writer past the lock timeout."""


class DatabaseUnreachable(Exception):
    """The database URL is wrong or the server does not answer."""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = DEFAULT_URL
    lock_timeout_s: float = 5.0
    pool_size: int = 10


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (`postgres://`, `postgresql://`) and pick our driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Database:
    """One engine per process and URL; sessions are handed out by `read()` and `write()`."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.url = normalise_url(settings.url)
        self.engine = _create_engine(self.url, settings)
        self.dialect = self.engine.dialect.name
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._write_turn = threading.Lock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with _translate_errors(), Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any exception."""
        with (
            self._write_turns(),
            _translate_errors(),
            Session(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextlib.contextmanager
    def _write_turns(self) -> Iterator[None]:
        """SQLite: wait for this process's previous writers before asking the database for its
        lock. The queue moves as long as writers finish, so a place in it may wait longer than
        the lock timeout (WRITE_QUEUE_FACTOR times it), which then bounds the database lock
        itself. PostgreSQL: nothing (row locks queue fairly)."""
        if self._write_turn is None:
            yield
            return
        if not self._write_turn.acquire(timeout=self.settings.lock_timeout_s * WRITE_QUEUE_FACTOR):
            raise DatabaseBusy("The database stayed locked by another writer; try again in a moment.")
        try:
            yield
        finally:
            self._write_turn.release()

    def upsert_insert(self, table: Any) -> Any:
        """The dialect's INSERT (it has `on_conflict_do_nothing`); imported on use, so a
        SQLite process never loads the PostgreSQL dialect (and asyncio with it)."""
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(table)

    def lock_for_update(self, statement: sa.Select) -> sa.Select:
        """Row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already excludes other writers."""
        return statement if self.is_sqlite else statement.with_for_update()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    def upgrade(self) -> None:
        """Bring the schema to HEAD_REVISION; cheap when it is already there."""
        if self.current_revision() == HEAD_REVISION:
            return
        from storage.migrations.runner import upgrade_to_head

        with self._migration_lock():
            upgrade_to_head(self.engine)

    def current_revision(self) -> str | None:
        with _translate_errors(), self.engine.connect() as conn:
            try:
                return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            except sa.exc.ProgrammingError:  # PostgreSQL: no such table yet
                return None
            except OperationalError as exc:  # SQLite: no such table yet
                if "no such table" in str(exc.orig):
                    return None
                raise

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Two processes starting on an empty database must not both create tables."""
        if self.is_sqlite:
            path = self.engine.url.database
            if not path or path == ":memory:":
                yield
                return
            with open(f"{path}.migrate-lock", "w") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_lock(727274001)")
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(727274001)")
                conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str, settings: DatabaseSettings) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise DatabaseUnreachable(f"The folder {parent} for the SQLite database does not exist.")
        engine = sa.create_engine(
            url,
            connect_args={"timeout": settings.lock_timeout_s, "check_same_thread": False},
            pool_size=settings.pool_size,
            max_overflow=20,
        )
        _install_sqlite_hooks(engine)
        return engine
    lock_ms = int(settings.lock_timeout_s * 1000)
    return sa.create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5, "options": f"-c lock_timeout={lock_ms}"},
    )


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy's `begin` event emit BEGIN itself, so writers can ask for IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextlib.contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        text = str(exc.orig).lower()
        if "database is locked" in text or "lock timeout" in text or "canceling statement due to lock" in text:
            raise DatabaseBusy("The database stayed locked by another writer; try again in a moment.") from exc
        if "could not connect" in text or "connection refused" in text or "unable to open database" in text:
            raise DatabaseUnreachable(f"Cannot reach the database: {exc.orig}") from exc
        raise

