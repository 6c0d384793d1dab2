"""reconciliation breaks and checkpoints

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recon_break_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('break_id', sa.String(length=64), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recon_break_audit', schema=None) as batch_op:
        batch_op.create_index('ix_recon_break_audit_break', ['break_id', 'id'], unique=False)

    op.create_table('recon_breaks',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('settled_on', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('provider_reference', sa.String(length=128), nullable=False),
    sa.Column('payment_id', sa.String(length=64), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('expected_minor', sa.BigInteger(), nullable=True),
    sa.Column('actual_minor', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider', 'kind', 'provider_reference', name='uq_recon_breaks_identity')
    )
    with op.batch_alter_table('recon_breaks', schema=None) as batch_op:
        batch_op.create_index('ix_recon_breaks_status', ['status', 'provider', 'settled_on'], unique=False)

    op.create_table('recon_checkpoints',
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('settled_on', sa.Date(), nullable=False),
    sa.Column('matched_count', sa.Integer(), nullable=False),
    sa.Column('matched_minor', sa.BigInteger(), nullable=False),
    sa.Column('break_count', sa.Integer(), nullable=False),
    sa.Column('break_minor', sa.BigInteger(), nullable=False),
    sa.Column('reconciled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signed_off_by', sa.String(length=128), nullable=True),
    sa.Column('signed_off_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sign_off_override', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('provider', 'settled_on')
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER recon_break_audit_append_only BEFORE UPDATE OR DELETE ON "
                   "recon_break_audit FOR EACH ROW EXECUTE FUNCTION paysignal_reject_change()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER recon_break_audit_no_{action.lower()} BEFORE {action} ON "
                       "recon_break_audit BEGIN SELECT RAISE(ABORT, 'table recon_break_audit is "
                       "append-only'); END")


def downgrade() -> None:
    op.drop_table('recon_checkpoints')
    with op.batch_alter_table('recon_breaks', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_breaks_status')

    op.drop_table('recon_breaks')
    with op.batch_alter_table('recon_break_audit', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_break_audit_break')

    op.drop_table('recon_break_audit')
