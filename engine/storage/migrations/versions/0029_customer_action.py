"""a payment the provider asks the customer to act on (3-D Secure, a redirect, an approval)
keeps what brings the customer back

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('payments', sa.Column('customer_action', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments') as batch:
        batch.drop_column('customer_action')
