"""Database fixtures: every database test runs on a real SQLite file and on a real PostgreSQL.

PostgreSQL comes from MODELBOT_TEST_POSTGRES_URL (`.ci/run` starts a server and exports it).
Without it the PostgreSQL variants skip with that reason; CI always sets it.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.domain.registry import Registry
from storage.db import Database, DatabaseSettings, normalise_url

POSTGRES_URL = os.environ.get("MODELBOT_TEST_POSTGRES_URL")
NO_POSTGRES = "MODELBOT_TEST_POSTGRES_URL is not set (run `bash .ci/run`, which starts PostgreSQL)"


def skip_without_postgres() -> None:
    """Skip on a laptop; fail in CI, where the PostgreSQL suite must run."""
    if POSTGRES_URL:
        return
    if os.environ.get("MODELBOT_REQUIRE_POSTGRES"):
        pytest.fail("MODELBOT_REQUIRE_POSTGRES is set but MODELBOT_TEST_POSTGRES_URL is not")
    pytest.skip(NO_POSTGRES)


def _postgres_database() -> Iterator[str]:
    """A fresh, empty database on the test server; dropped afterwards."""
    assert POSTGRES_URL is not None
    admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"modelbot_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(normalise_url(POSTGRES_URL)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        _drop(admin, name)
        admin.dispose()


def _drop(admin: sa.Engine, name: str) -> None:
    """Best effort: a session of another role still on the database (a superuser's tool, a
    maintenance worker) can make DROP fail; a leftover scratch database fails no test."""
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except sa.exc.DBAPIError as exc:
        warnings.warn(f"could not drop scratch database {name}: {exc.orig}", stacklevel=2)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'modelbot.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    skip_without_postgres()
    yield from _postgres_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Parametrises a test over both backends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'modelbot.db'}"
        return
    skip_without_postgres()
    yield from _postgres_database()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(DatabaseSettings(url=database_url, lock_timeout_s=10.0, pool_size=25))
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def registry(db: Database) -> Registry:
    return Registry(db)
