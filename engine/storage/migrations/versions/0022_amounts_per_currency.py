"""reconciliation amounts per currency: a checkpoint's matched and break amounts move to one
row per currency (they were summed across currencies), and a break stores the currency we
expected beside the one the provider settled in

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'recon_checkpoint_amounts',
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('settled_on', sa.Date(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('matched_count', sa.Integer(), nullable=False),
        sa.Column('matched_minor', sa.BigInteger(), nullable=False),
        sa.Column('break_count', sa.Integer(), nullable=False),
        sa.Column('break_minor', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('provider', 'settled_on', 'currency'),
    )
    # The old sums mixed currencies and cannot be split: the next reconciliation of each day
    # writes its per-currency rows. Until then a day has counts but no amounts.
    with op.batch_alter_table('recon_checkpoints') as batch:
        batch.drop_column('matched_minor')
        batch.drop_column('break_minor')
    with op.batch_alter_table('recon_breaks') as batch:
        batch.add_column(sa.Column('expected_currency', sa.String(length=3), nullable=True))
    op.execute("UPDATE recon_breaks SET expected_currency = currency "
               "WHERE expected_minor IS NOT NULL AND kind <> 'currency_mismatch'")


def downgrade() -> None:
    with op.batch_alter_table('recon_breaks') as batch:
        batch.drop_column('expected_currency')
    with op.batch_alter_table('recon_checkpoints') as batch:
        batch.add_column(sa.Column('matched_minor', sa.BigInteger(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('break_minor', sa.BigInteger(), nullable=False,
                                   server_default='0'))
    op.drop_table('recon_checkpoint_amounts')
