"""cardholders' disputes (chargebacks): one row per provider dispute, with the payment it is
about, its amount, fee, status and whether its funds were withdrawn

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'disputes',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('dispute_ref', sa.String(length=128), nullable=False),
        sa.Column('payment_id', sa.String(length=64), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('reason', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('funds_withdrawn', sa.Boolean(), nullable=False),
        sa.Column('fee_minor', sa.BigInteger(), nullable=False),
        sa.Column('due_by', sa.DateTime(timezone=True), nullable=True),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('provider', 'dispute_ref', name='uq_disputes_reference'),
    )
    op.create_index('ix_disputes_payment', 'disputes', ['payment_id'])
    op.create_index('ix_disputes_opened', 'disputes', ['provider', 'opened_at'])


def downgrade() -> None:
    op.drop_index('ix_disputes_opened', table_name='disputes')
    op.drop_index('ix_disputes_payment', table_name='disputes')
    op.drop_table('disputes')
