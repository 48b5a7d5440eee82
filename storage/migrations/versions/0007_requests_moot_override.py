"""change requests: moot status, override time, canary weight

Revision ID: 0007_requests_moot_override
Revises: 0006_mlflow_sync
Create Date: 2026-12-06 06:00:00

A request whose version already serves its environment is closed as `moot`; an admin's gate
override is recorded once with its time (`override_at`); a request to start a canary carries
the weight it starts at (`weight`).
"""
from alembic import op
import sqlalchemy as sa

revision = '0007_requests_moot_override'
down_revision = '0006_mlflow_sync'
branch_labels = None
depends_on = None

OLD_STATUSES = "'pending', 'approved', 'rejected', 'expired', 'superseded', 'cancelled'"
NEW_STATUSES = OLD_STATUSES + ", 'moot'"
CHECK = "ck_change_requests_status"


def _sqlite_check(old: str, new: str) -> None:
    """Change the CHECK's list of statuses in place. A batch rebuild would drop and re-create
    change_requests, which the foreign keys of request_votes forbid inside a transaction; SQLite
    documents editing the schema text for changes that every existing row still satisfies
    (https://www.sqlite.org/lang_altertable.html#otheralter)."""
    conn = op.get_bind()
    sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'change_requests'").scalar_one()
    if f"status in ({old})" not in sql:
        raise RuntimeError(f"change_requests has an unexpected status check: {sql}")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'change_requests'",
        (sql.replace(f"status in ({old})", f"status in ({new})"),),
    )
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _statuses(old: str, new: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_check(old, new)
        return
    op.drop_constraint(CHECK, "change_requests", type_="check")
    op.create_check_constraint(CHECK, "change_requests", f"status in ({new})")


def upgrade() -> None:
    op.add_column('change_requests', sa.Column('override_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('change_requests', sa.Column('weight', sa.Integer(), nullable=True))
    _statuses(OLD_STATUSES, NEW_STATUSES)


def downgrade() -> None:
    op.execute("UPDATE change_requests SET status = 'cancelled' WHERE status = 'moot'")
    _statuses(NEW_STATUSES, OLD_STATUSES)
    # plain DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch rebuild would trip request_votes' foreign key
    op.execute("ALTER TABLE change_requests DROP COLUMN weight")
    op.execute("ALTER TABLE change_requests DROP COLUMN override_at")
