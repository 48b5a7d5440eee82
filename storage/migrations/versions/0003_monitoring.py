"""monitoring

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:30:17.718504
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('source_status',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('samples_last_pull', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('metric_rollups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('environment', sa.String(length=32), nullable=False),
    sa.Column('metric', sa.String(length=128), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('minimum', sa.Float(), nullable=False),
    sa.Column('maximum', sa.Float(), nullable=False),
    sa.Column('last', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'environment', 'metric', 'version', 'hour', name='uq_metric_rollups_bucket')
    )
    with op.batch_alter_table('metric_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_metric_rollups_series_hour', ['model_id', 'environment', 'metric', 'hour'], unique=False)

    op.create_table('metric_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('environment', sa.String(length=32), nullable=False),
    sa.Column('metric', sa.String(length=128), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('metric_samples', schema=None) as batch_op:
        batch_op.create_index('ix_metric_samples_at', ['at'], unique=False)
        batch_op.create_index('ix_metric_samples_series_at', ['model_id', 'environment', 'metric', 'at'], unique=False)

    op.create_table('subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('model_key', sa.String(length=64), nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('at_time', sa.String(length=5), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("frequency in ('hourly', 'daily', 'weekly')", name='ck_subscriptions_frequency'),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'model_key', 'frequency', name='uq_subscriptions_channel_model_freq')
    )


def downgrade() -> None:
    op.drop_table('subscriptions')
    with op.batch_alter_table('metric_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_samples_series_at')
        batch_op.drop_index('ix_metric_samples_at')

    op.drop_table('metric_samples')
    with op.batch_alter_table('metric_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_metric_rollups_series_hour')

    op.drop_table('metric_rollups')
    op.drop_table('source_status')
