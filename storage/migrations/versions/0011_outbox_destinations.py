"""outbox destinations and circuit breakers (issue 11)

Rows are ordered per destination instead of per topic; rows written before this revision
keep their topic as their destination, so what was in flight keeps its old order.

Revision ID: 0011_outbox_destinations
Revises: 0010_audit_subject_token_names
Create Date: 2026-12-08 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0011_outbox_destinations'
down_revision = '0010_audit_subject_token_names'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destination', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('circuit', sa.String(length=200), nullable=True))
    op.execute("UPDATE outbox SET destination = topic")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('destination', existing_type=sa.String(length=200), nullable=False)
        batch_op.create_index('ix_outbox_destination_id', ['destination', 'id'], unique=False)
    op.create_table('outbox_circuits',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('trips', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paused_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('notice_key', sa.String(length=200), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state in ('closed', 'open')", name='ck_outbox_circuit_state'),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('outbox_circuits')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_destination_id')
        batch_op.drop_column('circuit')
        batch_op.drop_column('destination')
