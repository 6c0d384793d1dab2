"""SLO per-minute rollups, rollup marks and stored evaluations

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sli_minutes',
    sa.Column('slo', sa.String(length=128), nullable=False),
    sa.Column('minute', sa.DateTime(timezone=True), nullable=False),
    sa.Column('good', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('slo', 'minute')
    )
    op.create_table('sli_rollup_marks',
    sa.Column('slo', sa.String(length=128), nullable=False),
    sa.Column('mark', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('slo')
    )
    op.create_table('slo_evaluations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('slo', sa.String(length=128), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_slo_evaluations_slo_at', 'slo_evaluations', ['slo', 'at'])


def downgrade() -> None:
    op.drop_index('ix_slo_evaluations_slo_at', table_name='slo_evaluations')
    op.drop_table('slo_evaluations')
    op.drop_table('sli_rollup_marks')
    op.drop_table('sli_minutes')
