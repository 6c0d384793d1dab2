"""append-only tables refuse TRUNCATE (PostgreSQL) and INSERT OR REPLACE (SQLite)

Row-level UPDATE/DELETE triggers do not fire on TRUNCATE, and SQLite's REPLACE deletes the old row
without firing delete triggers (unless recursive_triggers is on), so both could rewrite the ledger.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

APPEND_ONLY = ("payment_transitions", "journal_transactions", "journal_entries", "toggle_audit",
               "recon_break_audit")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION paysignal_reject_change()")
    else:
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                       f"WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id) "
                       f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only'); END")


def downgrade() -> None:
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_no_replace")
