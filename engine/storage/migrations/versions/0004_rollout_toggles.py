"""rollout toggles for idempotency enforcement, with an append-only audit

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollout_toggles",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("payment_method", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("provider", "payment_method"),
    )
    op.create_table(
        "toggle_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("payment_method", sa.String(length=64), nullable=False),
        sa.Column("from_mode", sa.String(length=16), nullable=False),
        sa.Column("to_mode", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER toggle_audit_append_only BEFORE UPDATE OR DELETE ON toggle_audit "
                   "FOR EACH ROW EXECUTE FUNCTION paysignal_reject_change()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER toggle_audit_no_{action.lower()} BEFORE {action} ON "
                       "toggle_audit BEGIN SELECT RAISE(ABORT, 'table toggle_audit is "
                       "append-only'); END")


def downgrade() -> None:
    op.drop_table("toggle_audit")
    op.drop_table("rollout_toggles")
