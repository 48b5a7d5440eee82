"""alerting

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 01:32:44.520590
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('environment', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notified_fingerprint', sa.String(length=200), nullable=True),
    sa.CheckConstraint("status in ('open', 'resolved')", name='ck_alert_groups_status'),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_groups', schema=None) as batch_op:
        batch_op.create_index('uq_alert_groups_one_open', ['model_id', 'environment'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('alert_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('environment', sa.String(length=32), nullable=False),
    sa.Column('metric', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('op', sa.String(length=2), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('baseline', sa.String(length=16), nullable=False),
    sa.Column('for_seconds', sa.Integer(), nullable=False),
    sa.Column('keep_firing_for_seconds', sa.Integer(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=True),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('no_data', sa.String(length=8), nullable=False),
    sa.Column('no_data_after_seconds', sa.Integer(), nullable=False),
    sa.Column('anomaly_k', sa.Float(), nullable=False),
    sa.Column('anomaly_window_seconds', sa.Integer(), nullable=False),
    sa.Column('failure_limit', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind in ('threshold', 'anomaly')", name='ck_alert_rules_kind'),
    sa.CheckConstraint("no_data in ('keep', 'alert', 'ok')", name='ck_alert_rules_no_data'),
    sa.CheckConstraint("op in ('<', '<=', '>', '>=', '==', '!=')", name='ck_alert_rules_op'),
    sa.CheckConstraint("severity in ('warning', 'critical')", name='ck_alert_rules_severity'),
    sa.CheckConstraint("target in ('stable', 'canary', 'both')", name='ck_alert_rules_target'),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.create_index('ix_alert_rules_model', ['model_id', 'enabled'], unique=False)

    op.create_table('alert_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('series', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('active_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('firing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_true_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_eval_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('last_threshold', sa.Float(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('no_data', sa.Boolean(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("state in ('inactive', 'pending', 'firing')", name='ck_alert_states_state'),
    sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rule_id', 'series', name='uq_alert_states_rule_series')
    )
    op.create_table('silences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('environment', sa.String(length=32), nullable=True),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(), nullable=False),
    sa.Column('reason', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], ),
    sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('silences', schema=None) as batch_op:
        batch_op.create_index('ix_silences_model_ends', ['model_id', 'ends_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('silences', schema=None) as batch_op:
        batch_op.drop_index('ix_silences_model_ends')

    op.drop_table('silences')
    op.drop_table('alert_states')
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_rules_model')

    op.drop_table('alert_rules')
    with op.batch_alter_table('alert_groups', schema=None) as batch_op:
        batch_op.drop_index('uq_alert_groups_one_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.drop_table('alert_groups')
