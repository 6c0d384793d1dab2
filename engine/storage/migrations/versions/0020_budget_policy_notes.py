"""error-budget policy decisions get their own append-only table: they are notes about a
provider's rollout, not toggle changes (the toggle audit showed them as "enforce -> enforce")

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'budget_policy_notes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('slo', sa.String(length=63), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_budget_policy_notes_provider', 'budget_policy_notes', ['provider', 'id'])
    # earlier policy notes were written to the toggle audit as no-op changes: copy them over
    # (the toggle audit is append-only, so the originals stay; readers skip them there)
    op.execute("INSERT INTO budget_policy_notes (provider, slo, note, at) "
               "SELECT provider, '', reason, at FROM toggle_audit "
               "WHERE actor = 'slo-policy' AND from_mode = to_mode ORDER BY id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER budget_policy_notes_append_only BEFORE UPDATE OR DELETE ON "
                   "budget_policy_notes FOR EACH ROW EXECUTE FUNCTION paysignal_reject_change()")
        op.execute("CREATE TRIGGER budget_policy_notes_no_truncate BEFORE TRUNCATE ON "
                   "budget_policy_notes FOR EACH STATEMENT EXECUTE FUNCTION "
                   "paysignal_reject_change()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER budget_policy_notes_no_{action.lower()} BEFORE {action} "
                       "ON budget_policy_notes BEGIN SELECT RAISE(ABORT, 'table "
                       "budget_policy_notes is append-only'); END")
        op.execute("CREATE TRIGGER budget_policy_notes_no_replace BEFORE INSERT ON "
                   "budget_policy_notes WHEN EXISTS (SELECT 1 FROM budget_policy_notes WHERE "
                   "id = NEW.id) BEGIN SELECT RAISE(ABORT, 'table budget_policy_notes is "
                   "append-only'); END")


def downgrade() -> None:
    op.drop_index('ix_budget_policy_notes_provider', table_name='budget_policy_notes')
    op.drop_table('budget_policy_notes')
