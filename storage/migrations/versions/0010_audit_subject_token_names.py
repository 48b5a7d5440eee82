"""audit subject; token names unique among active tokens

Revision ID: 0010_audit_subject_token_names
Revises: 0009_serving_notify
Create Date: 2026-12-06 07:00:00

Decisions about things that are not a model (a token, a subscription, a silence, an alert
card) name what they were about in `audit_events.subject` ("token ci-churn", "subscription 4").

A token's name is the approver identity the policy file lists, so it must outlive one secret:
the name is unique among *active* tokens only (a partial unique index), and `token rotate`
replaces a token by a new one with the same name.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0010_audit_subject_token_names'
down_revision = '0009_serving_notify'
branch_labels = None
depends_on = None

ACTIVE_NAME = "uq_api_tokens_active_name"


def upgrade() -> None:
    op.add_column('audit_events', sa.Column('subject', sa.String(length=128), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop the unnamed UNIQUE(name) in place: rebuild the table (nothing refers to it)
        op.create_table('api_tokens_new', *_columns(), sa.PrimaryKeyConstraint('id'),
                        sa.UniqueConstraint('token_hash'))
        op.execute("INSERT INTO api_tokens_new SELECT id, name, token_hash, prefix, scopes, created_by, created_at, "
                   "last_used_at, revoked_at FROM api_tokens")
        op.drop_table('api_tokens')
        op.rename_table('api_tokens_new', 'api_tokens')
    else:
        op.drop_constraint('api_tokens_name_key', 'api_tokens', type_='unique')
    op.create_index(ACTIVE_NAME, 'api_tokens', ['name'], unique=True,
                    sqlite_where=sa.text('revoked_at IS NULL'), postgresql_where=sa.text('revoked_at IS NULL'))


def _columns() -> list[sa.Column]:
    return [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  nullable=False),
        sa.Column('created_by', sa.String(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    ]


def downgrade() -> None:
    op.drop_index(ACTIVE_NAME, table_name='api_tokens')
    op.create_unique_constraint('api_tokens_name_key', 'api_tokens', ['name'])
    op.execute("ALTER TABLE audit_events DROP COLUMN subject")
