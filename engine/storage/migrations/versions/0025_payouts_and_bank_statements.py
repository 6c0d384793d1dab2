"""payouts (from the providers' reports) and bank statements with their credits: the money loop
from ledger to provider report to bank

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payouts',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('reference', sa.String(length=128), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('lines_net_minor', sa.BigInteger(), nullable=False),
        sa.Column('line_count', sa.Integer(), nullable=False),
        sa.Column('paid_on', sa.Date(), nullable=False),
        sa.Column('bank_credit_id', sa.String(length=64), nullable=True),
        sa.Column('arrived_on', sa.Date(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider', 'reference', 'currency', name='uq_payouts_reference'),
    )
    op.create_index('ix_payouts_paid_on', 'payouts', ['paid_on'])
    op.create_table(
        'bank_statements',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('format', sa.String(length=16), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('credits', sa.Integer(), nullable=False),
        sa.Column('covers_to', sa.Date(), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sha256'),
    )
    op.create_table(
        'bank_credits',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('statement_id', sa.String(length=64), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('entry_ref', sa.String(length=128), nullable=False),
        sa.Column('booked_on', sa.Date(), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('reference', sa.String(length=500), nullable=False),
        sa.Column('counterparty', sa.String(length=255), nullable=False),
        sa.Column('payout_id', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account', 'entry_ref', name='uq_bank_credits_entry'),
    )
    op.create_index('ix_bank_credits_booked', 'bank_credits', ['currency', 'booked_on'])
    op.create_index('ix_settlement_lines_payout', 'settlement_lines',
                    ['provider', 'payout_reference'])


def downgrade() -> None:
    op.drop_index('ix_settlement_lines_payout', table_name='settlement_lines')
    op.drop_index('ix_bank_credits_booked', table_name='bank_credits')
    op.drop_table('bank_credits')
    op.drop_table('bank_statements')
    op.drop_index('ix_payouts_paid_on', table_name='payouts')
    op.drop_table('payouts')
