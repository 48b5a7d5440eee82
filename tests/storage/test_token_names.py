"""The migration that lets a token's name outlive its secret: existing tokens survive it, and
afterwards a name is unique among active tokens only (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from storage.db import Database, DatabaseSettings
from storage.migrations.runner import alembic_config

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = ("INSERT INTO api_tokens (name, token_hash, prefix, scopes, created_by, created_at, revoked_at) "
         "VALUES (:name, :hash, 'mbt_x', '[\"read\"]', 'ops', :now, :revoked)")


def test_existing_tokens_survive_and_names_come_back_after_revocation(database_url: str) -> None:
    db = Database(DatabaseSettings(url=database_url))
    try:
        command.upgrade(alembic_config(db.engine), "0005")
        with db.engine.begin() as conn:
            conn.execute(sa.text(TOKEN), {"name": "ci", "hash": "a" * 64, "now": NOW, "revoked": None})
            conn.execute(sa.text(TOKEN), {"name": "old", "hash": "b" * 64, "now": NOW, "revoked": NOW})
        db.upgrade()
        with db.engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT name, token_hash, revoked_at IS NULL FROM api_tokens ORDER BY id")).all()
            assert [(n, h[:1], bool(a)) for n, h, a in rows] == [("ci", "a", True), ("old", "b", False)]
            conn.execute(sa.text(TOKEN), {"name": "old", "hash": "c" * 64, "now": NOW, "revoked": None})
        with pytest.raises(IntegrityError), db.engine.begin() as conn:  # a second active "ci"
            conn.execute(sa.text(TOKEN), {"name": "ci", "hash": "d" * 64, "now": NOW, "revoked": None})
        with pytest.raises(IntegrityError), db.engine.begin() as conn:  # a secret is still unique
            conn.execute(sa.text(TOKEN), {"name": "new", "hash": "a" * 64, "now": NOW, "revoked": NOW})
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM audit_events WHERE subject IS NOT NULL")).scalar() == 0
    finally:
        db.dispose()
