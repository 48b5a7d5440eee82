"""mlflow sync: webhook deliveries, last known aliases, poll status

Revision ID: 0006_mlflow_sync
Revises: 0005
Create Date: 2026-12-06 06:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0006_mlflow_sync'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mlflow_deliveries',
    sa.Column('delivery_id', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('delivery_id')
    )
    with op.batch_alter_table('mlflow_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_mlflow_deliveries_received', ['received_at'], unique=False)

    op.create_table('mlflow_aliases',
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('alias', sa.String(length=255), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['registered_models.id'], ),
    sa.PrimaryKeyConstraint('model_id', 'alias')
    )
    op.create_table('mlflow_sync_status',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('models_checked', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('mlflow_sync_status')
    op.drop_table('mlflow_aliases')
    with op.batch_alter_table('mlflow_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_mlflow_deliveries_received')
    op.drop_table('mlflow_deliveries')
