"""settlement lines carry the provider's own line identity (a line is never imported twice),
their net, net currency and payout; files can be superseded, with an audit trail; a break's
identity includes the settlement line or expected entry it is about

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('settlement_files') as batch:
        batch.add_column(sa.Column('duplicate_lines', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('status', sa.String(length=16), nullable=False,
                                   server_default='imported'))
        batch.add_column(sa.Column('superseded_by', sa.String(length=64), nullable=True))
    with op.batch_alter_table('settlement_lines') as batch:
        batch.add_column(sa.Column('line_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('net_minor', sa.BigInteger(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('net_currency', sa.String(length=3), nullable=True))
        batch.add_column(sa.Column('payout_reference', sa.String(length=128), nullable=True))
        batch.alter_column('kind', type_=sa.String(length=24), existing_nullable=False)
    # lines imported before lines had an identity keep one of their own
    op.execute("UPDATE settlement_lines SET line_id = 'legacy:' || CAST(id AS VARCHAR(32)), "
               "net_minor = amount_minor - fee_minor, net_currency = currency")
    with op.batch_alter_table('settlement_lines') as batch:
        batch.alter_column('line_id', existing_type=sa.String(length=255), nullable=False)
        batch.create_index('uq_settlement_lines_line', ['provider', 'line_id'], unique=True)
    op.create_table(
        'settlement_file_audit',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('file_id', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('note', sa.String(length=1000), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_settlement_file_audit_file', 'settlement_file_audit', ['file_id', 'id'])
    _guard('settlement_file_audit')
    with op.batch_alter_table('recon_breaks') as batch:
        batch.add_column(sa.Column('line_key', sa.String(length=255), nullable=False,
                                   server_default=''))
        batch.drop_constraint('uq_recon_breaks_identity', type_='unique')
        batch.create_unique_constraint('uq_recon_breaks_identity',
                                       ['provider', 'kind', 'provider_reference', 'line_key'])


def _guard(table: str) -> None:
    """Append-only, like the other audit tables."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION paysignal_reject_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION paysignal_reject_change()")
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                   f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only'); END")
    op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
               f"WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id) "
               f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only'); END")


def downgrade() -> None:
    with op.batch_alter_table('recon_breaks') as batch:
        batch.drop_constraint('uq_recon_breaks_identity', type_='unique')
        batch.create_unique_constraint('uq_recon_breaks_identity',
                                       ['provider', 'kind', 'provider_reference'])
        batch.drop_column('line_key')
    op.drop_index('ix_settlement_file_audit_file', table_name='settlement_file_audit')
    op.drop_table('settlement_file_audit')
    with op.batch_alter_table('settlement_lines') as batch:
        batch.drop_index('uq_settlement_lines_line')
        batch.drop_column('payout_reference')
        batch.drop_column('net_currency')
        batch.drop_column('net_minor')
        batch.drop_column('line_id')
        batch.alter_column('kind', type_=sa.String(length=16), existing_nullable=False)
    with op.batch_alter_table('settlement_files') as batch:
        batch.drop_column('superseded_by')
        batch.drop_column('status')
        batch.drop_column('duplicate_lines')
