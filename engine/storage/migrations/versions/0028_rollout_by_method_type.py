"""rollout toggles are keyed by provider x payment-method type (card, wallet, ...) and
optionally a merchant, no longer by one payment-method token; payments keep their method type

Every payment method paysignal could take before this revision was a card (each connector sent
card payment sources only), so each provider's token-keyed toggles become one `card` toggle.
Where a provider's tokens had different modes, the card toggle takes the most protective
(enforce, then shadow, then off). Each move is written to the toggle audit, whose earlier rows
stay as they were (append-only): their payment_method holds the token they were set for.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

PROTECTION = {"enforce": 0, "shadow": 1, "off": 2}
ANY = "*"


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column('payments', sa.Column('method_type', sa.String(length=16), nullable=True))
    op.execute("UPDATE payments SET method_type = 'card'")
    op.add_column('toggle_audit', sa.Column('merchant_id', sa.String(length=64), nullable=True))

    rows = bind.execute(sa.text("SELECT provider, payment_method, mode FROM rollout_toggles "
                                "WHERE payment_method <> '*' ORDER BY provider, payment_method")
                        ).all()
    by_provider: dict[str, list[tuple[str, str]]] = {}
    for provider, token, mode in rows:
        by_provider.setdefault(provider, []).append((token, mode))
    bind.execute(sa.text("DELETE FROM rollout_toggles WHERE payment_method <> '*'"))

    if bind.dialect.name == "postgresql":  # altered in place: the roles' grants stay
        op.execute("ALTER TABLE rollout_toggles RENAME COLUMN payment_method TO method_type")
        op.execute("ALTER TABLE rollout_toggles ALTER COLUMN method_type TYPE varchar(16)")
        op.add_column('rollout_toggles', sa.Column('merchant_id', sa.String(length=64),
                                                   nullable=False, server_default=ANY))
        op.execute("ALTER TABLE rollout_toggles DROP CONSTRAINT rollout_toggles_pkey")
        op.execute("ALTER TABLE rollout_toggles ADD CONSTRAINT rollout_toggles_pkey "
                   "PRIMARY KEY (provider, method_type, merchant_id)")
    else:  # SQLite cannot change a primary key: a new table takes the rows
        _new_toggles_table('rollout_toggles_new', 'method_type',
                           ('provider', 'method_type', 'merchant_id'), with_merchant=True)
        op.execute("INSERT INTO rollout_toggles_new (provider, method_type, merchant_id, mode, "
                   "updated_at, updated_by) SELECT provider, payment_method, '*', mode, "
                   "updated_at, updated_by FROM rollout_toggles")
        op.drop_table('rollout_toggles')
        op.rename_table('rollout_toggles_new', 'rollout_toggles')

    now = datetime.now(UTC)
    for provider, tokens in by_provider.items():
        mode = min((m for _, m in tokens), key=lambda m: PROTECTION.get(m, 0))
        bind.execute(sa.text(
            "INSERT INTO rollout_toggles (provider, method_type, merchant_id, mode, updated_at, "
            "updated_by) VALUES (:p, 'card', '*', :m, :at, 'migration 0028')"),
            {"p": provider, "m": mode, "at": now})
        for token, was in tokens:
            bind.execute(sa.text(
                "INSERT INTO toggle_audit (provider, payment_method, merchant_id, from_mode, "
                "to_mode, actor, reason, at) VALUES (:p, 'card', '*', :was, :m, "
                "'migration 0028', :why, :at)"),
                {"p": provider, "was": was, "m": mode, "at": now,
                 "why": f"toggles are keyed by method type: {token[:120]} is a card"})


def _new_toggles_table(name: str, keyed_by: str, key: tuple[str, ...],
                       with_merchant: bool) -> None:
    op.create_table(
        name,
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column(keyed_by, sa.String(length=16 if with_merchant else 64), nullable=False),
        *([sa.Column('merchant_id', sa.String(length=64), nullable=False, server_default=ANY)]
          if with_merchant else []),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )


def downgrade() -> None:
    """Type- and merchant-keyed toggles have no token to go back to: only the providers' own
    toggles survive a downgrade."""
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM rollout_toggles WHERE method_type <> '*' "
                         "OR merchant_id <> '*'"))
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE rollout_toggles DROP CONSTRAINT rollout_toggles_pkey")
        op.drop_column('rollout_toggles', 'merchant_id')
        op.execute("ALTER TABLE rollout_toggles RENAME COLUMN method_type TO payment_method")
        op.execute("ALTER TABLE rollout_toggles ALTER COLUMN payment_method TYPE varchar(64)")
        op.execute("ALTER TABLE rollout_toggles ADD CONSTRAINT rollout_toggles_pkey "
                   "PRIMARY KEY (provider, payment_method)")
    else:
        _new_toggles_table('rollout_toggles_old', 'payment_method',
                           ('provider', 'payment_method'), with_merchant=False)
        op.execute("INSERT INTO rollout_toggles_old (provider, payment_method, mode, updated_at, "
                   "updated_by) SELECT provider, method_type, mode, updated_at, updated_by FROM "
                   "rollout_toggles")
        op.drop_table('rollout_toggles')
        op.rename_table('rollout_toggles_old', 'rollout_toggles')
    op.drop_column('toggle_audit', 'merchant_id')
    op.drop_column('payments', 'method_type')
