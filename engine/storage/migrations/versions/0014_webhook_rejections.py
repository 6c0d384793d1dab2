"""webhook rejections counted per provider, minute and reason instead of one row each

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'webhook_rejections',
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('minute', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('provider', 'minute', 'reason'),
    )
    op.execute("DELETE FROM webhook_events WHERE result IN ('bad_signature', 'malformed')")


def downgrade() -> None:
    op.drop_table('webhook_rejections')
