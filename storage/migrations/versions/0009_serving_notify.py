"""serving notify: PostgreSQL tells listeners when a serving state changes

Revision ID: 0009_serving_notify
Revises: 0008_monitoring_truth
Create Date: 2026-12-07 06:00:00.000000

Every pointer move appends exactly one audit row carrying the deployment's new revision
(the registry's invariant). On PostgreSQL a trigger on that insert sends
`NOTIFY modelbot_serving` with the model's name key, the environment and the revision,
delivered when the move commits, so a watcher on any replica hears it at once
(storage/serving_feed.py). SQLite has no notifications: its processes read the new audit
rows instead, so nothing changes there.
"""
from alembic import op

revision = '0009_serving_notify'
down_revision = '0008_monitoring_truth'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION modelbot_notify_serving() RETURNS trigger AS $$ "
        "BEGIN "
        "PERFORM pg_notify('modelbot_serving', json_build_object("
        "'model', (SELECT name_key FROM registered_models WHERE id = NEW.model_id), "
        "'environment', NEW.environment, 'revision', NEW.revision)::text); "
        "RETURN NULL; "
        "END $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE TRIGGER audit_events_notify_serving AFTER INSERT ON audit_events "
        "FOR EACH ROW WHEN (NEW.revision IS NOT NULL AND NEW.environment IS NOT NULL) "
        "EXECUTE FUNCTION modelbot_notify_serving()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("DROP TRIGGER IF EXISTS audit_events_notify_serving ON audit_events")
    op.execute("DROP FUNCTION IF EXISTS modelbot_notify_serving()")
