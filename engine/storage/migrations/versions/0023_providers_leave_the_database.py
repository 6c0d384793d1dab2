"""the invented providers' books leave the engine's database: the provider sandbox keeps its
own (a provider's books were never the engine's to hold)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_sim_provider_ops_request', table_name='sim_provider_operations')
    op.drop_index('ix_sim_provider_ops_payment', table_name='sim_provider_operations')
    op.drop_table('sim_provider_operations')


def downgrade() -> None:
    op.create_table(
        'sim_provider_operations',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('request_id', sa.String(length=128), nullable=False),
        sa.Column('payment_ref', sa.String(length=64), nullable=False),
        sa.Column('operation', sa.String(length=16), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('provider_reference', sa.String(length=128), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_sim_provider_ops_request', 'sim_provider_operations',
                    ['provider', 'request_id'])
    op.create_index('ix_sim_provider_ops_payment', 'sim_provider_operations',
                    ['provider', 'payment_ref'])
