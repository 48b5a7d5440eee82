"""The leader lock: which one of several modelbot processes runs the scheduler.

APScheduler 3.x cannot share a job store between running schedulers (each would run every
job), so replicas elect one: the holder of this lock.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated
  connection kept open for as long as we lead. The server releases it the moment that
  session ends, including when the process is killed (SIGKILL closes the socket), so a
  successor can take over at its next attempt. TCP keepalives and `tcp_user_timeout` bound
  how long a silently dead network path goes unnoticed; `held()` re-checks the lock on the
  connection, and any error there means we lost it.
- SQLite: `flock` on `<database>.scheduler-lock`. The kernel drops the lock when the process
  dies; only processes on the same host share an SQLite file anyway.

Each process that does not hold the lock retries every few seconds (`SchedulerRunner`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from storage.db import Database, open_lock_file

# Advisory lock keys are one bigint namespace per database; 727274001 is the migration lock.
ADVISORY_KEY = 727274002
log = logging.getLogger("modelbot.leader")


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if free (never blocks); True when this process holds it afterwards."""
        ...

    def held(self) -> bool:
        """Whether we still hold it: False once the connection or file behind it is gone."""
        ...

    def release(self) -> None: ...

    def describe(self) -> str: ...


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class PostgresLeaderLock:
    def __init__(self, url: str, *, key: int = ADVISORY_KEY, timeout_s: int = 5) -> None:
        self.key = key
        self._engine = sa.create_engine(
            url,
            poolclass=NullPool,  # the lock lives and dies with this one connection
            connect_args={
                "connect_timeout": timeout_s,
                "application_name": f"modelbot-scheduler-leader {holder_name()}"[:63],
                "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
                "tcp_user_timeout": timeout_s * 2000,
                "options": f"-c statement_timeout={timeout_s * 1000}",
            },
        )
        self._conn: sa.Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return self.held()
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.SQLAlchemyError as exc:
            # the class name only: driver messages can carry the connection string
            log.warning("leader lock: cannot reach PostgreSQL (%s); will retry", type(exc).__name__)
            return False
        try:
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
        except sa.exc.SQLAlchemyError:
            conn.invalidate()
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            count = conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                        "AND granted AND classid = :high AND objid = :low AND objsubid = 1"),
                {"high": (self.key >> 32) & 0xFFFFFFFF, "low": self.key & 0xFFFFFFFF},
            ).scalar()
        except sa.exc.SQLAlchemyError:
            self._drop()
            return False
        if not count:
            self._drop()
            return False
        return True

    def release(self) -> None:
        conn = self._conn
        if conn is None:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # a dead session took the lock with it
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        self._drop()

    def backend_pid(self) -> int | None:
        """The server process holding our session (tests terminate it to simulate a lost lock)."""
        if self._conn is None:
            return None
        return int(self._conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self.key}"

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:
                pass

    def dispose(self) -> None:
        self.release()
        self._engine.dispose()


class FileLeaderLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return self.held()
        fd = open_lock_file(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{holder_name()}\n".encode())
        self._fd = fd
        return True

    def held(self) -> bool:
        """Ours while the file we locked is still the one at `path` (deleting it would let a
        newcomer lock a fresh file and lead beside us)."""
        if self._fd is None:
            return False
        try:
            same = os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            self.release()
        return same

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def describe(self) -> str:
        return f"lock file {self.path}"


class ProcessLocalLock:
    """An in-memory SQLite database exists in one process only: it always leads."""

    def acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def describe(self) -> str:
        return "in-process lock (in-memory database)"


def leader_lock_for(db: Database) -> LeaderLock:
    if not db.is_sqlite:
        return PostgresLeaderLock(db.engine.url.render_as_string(hide_password=False))
    database = db.engine.url.database
    if not database or database == ":memory:":
        return ProcessLocalLock()
    return FileLeaderLock(Path(f"{database}.scheduler-lock"))
