"""journal transactions by kind and time (reconciliation reads one provider-day at a time)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_journal_transactions_kind_at', 'journal_transactions', ['kind', 'at'])


def downgrade() -> None:
    op.drop_index('ix_journal_transactions_kind_at', table_name='journal_transactions')
