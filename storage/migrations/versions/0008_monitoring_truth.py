"""monitoring truth: prediction-log cursors on source_status, minimum label coverage on alert rules

Revision ID: 0008_monitoring_truth
Revises: 0007_requests_moot_override
Create Date: 2026-12-07 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0008_monitoring_truth'
down_revision = '0007_requests_moot_override'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('source_status', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'cursor', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_coverage', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.drop_column('min_coverage')
    with op.batch_alter_table('source_status', schema=None) as batch_op:
        batch_op.drop_column('cursor')
