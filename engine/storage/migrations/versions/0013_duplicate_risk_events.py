"""duplicate-risk events: idempotent replays, conflicts, in-flight rejections, shadow detections

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('duplicate_risk_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('payment_id', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_duplicate_risk_events_at', 'duplicate_risk_events', ['at'])


def downgrade() -> None:
    op.drop_index('ix_duplicate_risk_events_at', table_name='duplicate_risk_events')
    op.drop_table('duplicate_risk_events')
