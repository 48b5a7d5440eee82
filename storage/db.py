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
import errno
import fcntl
import os
import sqlite3
import stat
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

from bot.redaction import redact_text, redact_url

DEFAULT_URL = "sqlite:///modelbot.db"
# Newest Alembic revision shipped with this code. tests/storage/test_migrations.py asserts
# it equals the migration scripts' head, so the cheap start-up check cannot drift.
HEAD_REVISION = "0011_outbox_destinations"
_WRITE_OPTION = "modelbot_write"
WRITE_QUEUE_FACTOR = 6
# the database, its WAL and lock files: the owner only (they hold audit trails and hashed tokens)
PRIVATE_FILE_MODE = 0o600


class DatabaseBusy(Exception):
    """The database stayed locked by another writer past the lock timeout."""


class DatabaseUnreachable(Exception):
    """The database URL is wrong or the server does not answer."""


class DatabaseUrlError(ValueError):
    """The database URL cannot work (not a URL, an unsupported backend, an in-memory SQLite):
    a configuration mistake, reported in one line that says what to write instead."""


EXAMPLE_URLS = "sqlite:///modelbot.db or postgresql://user:password@host:5432/modelbot"


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


def check_url(url: str) -> sa.engine.URL:
    """The parsed URL of a database modelbot can use, or DatabaseUrlError naming the problem.

    Messages show the URL only through `redact_url`: a password pasted into it stays out of
    the terminal, CI logs and bug reports.
    """
    shown = redact_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise DatabaseUrlError(f"MODELBOT_DATABASE_URL '{shown}' is not a database URL: write {EXAMPLE_URLS}.") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseUrlError(f"MODELBOT_DATABASE_URL '{shown}' is a {backend} database; modelbot supports SQLite and "
                               f"PostgreSQL: write {EXAMPLE_URLS}.")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise DatabaseUrlError(f"MODELBOT_DATABASE_URL '{shown}' is an in-memory SQLite database, which would lose "
                               "everything when modelbot stops and is not shared between processes: name a file, "
                               "for example sqlite:///modelbot.db.")
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise DatabaseUrlError(f"MODELBOT_DATABASE_URL '{shown}' asks for the {parsed.get_driver_name()} driver; "
                               "modelbot ships psycopg 3: write postgresql://… without a driver name.")
    return parsed


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
            fd = open_lock_file(f"{path}.migrate-lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
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
    parsed = check_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database:
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise DatabaseUrlError(f"MODELBOT_DATABASE_URL names a file in {parent}, a folder that does not "
                                       "exist: create it, or point the URL at a file in an existing folder.")
            _private_sqlite_files(Path(database).expanduser())
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
        if "could not connect" in text or "connection refused" in text or "unable to open database" in text \
                or "connection failed" in text or "authentication failed" in text:
            raise DatabaseUnreachable(f"Cannot reach the database: {_one_line(exc.orig)}") from exc
        raise


def open_lock_file(path: str | Path) -> int:
    """A lock file's descriptor: created 0600, never through a symbolic link (someone who can write
    the folder must not be able to point our lock, and the truncation of its content, elsewhere)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DatabaseUnreachable(f"The lock file {path} is a symbolic link; modelbot does not follow links for "
                                      "its lock files: remove the link.") from None
        raise DatabaseUnreachable(f"Cannot open the lock file {path}: {exc.strerror}.") from None


def _private_sqlite_files(database: Path) -> None:
    """The database readable by its owner only, whatever the umask: create it 0600 when missing,
    and take group/other access away from an existing one and its WAL and shared-memory files
    (SQLite creates those with the database file's mode)."""
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass
    except OSError as exc:
        raise DatabaseUnreachable(f"Cannot create the SQLite database {database}: {exc.strerror}.") from None
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            path.chmod(stat.S_IMODE(info.st_mode) & ~0o077)


def _one_line(error: BaseException) -> str:
    """A driver's message (psycopg's span lines) as one line, URLs in it redacted."""
    return redact_text(" ".join(str(error).split()))
