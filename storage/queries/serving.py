"""What the serving feed asks the database.

SQLite: a poll 40 times a second on a raw sqlite3 connection (SQLAlchemy's per-statement
overhead made an idle server spend 4 % of a core on it): `PRAGMA data_version` changes when
another connection commits, so a tick with no commit anywhere costs one pragma; only then
are the pointer moves after the last one seen read. PostgreSQL: a notification of our own,
to fence the listener.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

_DATA_VERSION = "PRAGMA data_version"
_NEWEST_AUDIT_ID = "SELECT coalesce(max(id), 0) FROM audit_events"
_MOVES_BETWEEN = (
    "SELECT m.name_key, a.environment, a.revision FROM audit_events AS a "
    "JOIN registered_models AS m ON m.id = a.model_id "
    "WHERE a.id > ? AND a.id <= ? AND a.revision IS NOT NULL AND a.environment IS NOT NULL "
    "ORDER BY a.id"
)
_NOTIFY = sa.select(sa.func.pg_notify(sa.bindparam("channel"), sa.bindparam("payload")))


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection (of any process) has committed to the file."""
    return int(conn.execute(_DATA_VERSION).fetchone()[0])


def newest_audit_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute(_NEWEST_AUDIT_ID).fetchone()[0])


def moves_between(conn: sqlite3.Connection, after: int, upto: int) -> list[tuple[str, str, int]]:
    """(name_key, environment, revision) of each revision-carrying audit row in (after, upto], oldest first."""
    return [(str(k), str(e), int(r)) for k, e, r in conn.execute(_MOVES_BETWEEN, (after, upto))]


def notify(conn: sa.Connection, channel: str, payload: str) -> None:
    """PostgreSQL NOTIFY through a bind parameter (the NOTIFY statement takes none)."""
    conn.execute(_NOTIFY, {"channel": channel, "payload": payload})
