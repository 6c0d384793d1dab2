"""reconciliation sign-offs as append-only records: a second sign-off supersedes the first and
both stay visible

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'recon_sign_offs',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('settled_on', sa.Date(), nullable=False),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('override', sa.String(length=1000), nullable=True),
        sa.Column('open_breaks', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_recon_sign_offs_day', 'recon_sign_offs', ['provider', 'settled_on', 'id'])
    op.execute("INSERT INTO recon_sign_offs (provider, settled_on, actor, at, override, "
               "open_breaks) SELECT provider, settled_on, signed_off_by, signed_off_at, "
               "sign_off_override, 0 FROM recon_checkpoints WHERE signed_off_by IS NOT NULL")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER recon_sign_offs_append_only BEFORE UPDATE OR DELETE ON "
                   "recon_sign_offs FOR EACH ROW EXECUTE FUNCTION paysignal_reject_change()")
        op.execute("CREATE TRIGGER recon_sign_offs_no_truncate BEFORE TRUNCATE ON "
                   "recon_sign_offs FOR EACH STATEMENT EXECUTE FUNCTION paysignal_reject_change()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER recon_sign_offs_no_{action.lower()} BEFORE {action} ON "
                       "recon_sign_offs BEGIN SELECT RAISE(ABORT, 'table recon_sign_offs is "
                       "append-only'); END")
        op.execute("CREATE TRIGGER recon_sign_offs_no_replace BEFORE INSERT ON recon_sign_offs "
                   "WHEN EXISTS (SELECT 1 FROM recon_sign_offs WHERE id = NEW.id) "
                   "BEGIN SELECT RAISE(ABORT, 'table recon_sign_offs is append-only'); END")


def downgrade() -> None:
    op.drop_index('ix_recon_sign_offs_day', table_name='recon_sign_offs')
    op.drop_table('recon_sign_offs')
