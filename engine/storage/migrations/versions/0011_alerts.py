"""alert states, persisted notifications and silences

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('alert_states',
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('labels', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.String(length=1000), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('starts_at', TS, nullable=False),
    sa.Column('ends_at', TS, nullable=True),
    sa.Column('last_seen_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('fingerprint')
    )
    op.create_index('ix_alert_states_status', 'alert_states', ['status', 'last_seen_at'])
    op.create_table('alert_notifications',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('receiver', sa.String(length=128), nullable=False),
    sa.Column('group_key', sa.String(length=512), nullable=False),
    sa.Column('dedup_key', sa.String(length=128), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', TS, nullable=False),
    sa.Column('delivered_at', TS, nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedup_key')
    )
    op.create_index('ix_alert_notifications_pending', 'alert_notifications',
                    ['delivered_at', 'next_attempt_at'])
    op.create_table('alert_silences',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('matchers', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=128), nullable=False),
    sa.Column('comment', sa.String(length=1000), nullable=False),
    sa.Column('starts_at', TS, nullable=False),
    sa.Column('ends_at', TS, nullable=False),
    sa.Column('expired_by', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('alert_silences')
    op.drop_index('ix_alert_notifications_pending', table_name='alert_notifications')
    op.drop_table('alert_notifications')
    op.drop_index('ix_alert_states_status', table_name='alert_states')
    op.drop_table('alert_states')
