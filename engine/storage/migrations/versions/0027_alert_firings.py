"""every period an alert fired, start to end (alert_states keeps only the latest), so the
dashboard can draw firing periods on a time axis; backfilled from alert_states

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alert_firings',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('labels', sa.Text(), nullable=False),
        sa.Column('summary', sa.String(length=1000), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_alert_firings_fingerprint', 'alert_firings', ['fingerprint', 'starts_at'])
    op.create_index('ix_alert_firings_starts', 'alert_firings', ['starts_at'])
    op.execute("INSERT INTO alert_firings (fingerprint, name, labels, summary, starts_at, ends_at) "
               "SELECT fingerprint, name, labels, summary, starts_at, ends_at FROM alert_states")


def downgrade() -> None:
    op.drop_index('ix_alert_firings_starts', table_name='alert_firings')
    op.drop_index('ix_alert_firings_fingerprint', table_name='alert_firings')
    op.drop_table('alert_firings')
