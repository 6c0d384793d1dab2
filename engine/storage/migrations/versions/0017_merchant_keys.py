"""merchant API keys in their own table: several per merchant during a rotation, each revocable

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'merchant_keys',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('merchant_id', sa.String(length=64), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash', name='uq_merchant_keys_hash'),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id']),
    )
    op.execute("INSERT INTO merchant_keys (id, merchant_id, key_hash, created_at) "
               "SELECT 'key_' || id, id, api_key_hash, created_at FROM merchants")
    with op.batch_alter_table('merchants') as batch:
        batch.drop_column('api_key_hash')


def downgrade() -> None:
    with op.batch_alter_table('merchants') as batch:
        batch.add_column(sa.Column('api_key_hash', sa.String(length=64), nullable=True))
    op.execute("UPDATE merchants SET api_key_hash = (SELECT min(key_hash) FROM merchant_keys "
               "WHERE merchant_keys.merchant_id = merchants.id)")
    op.drop_table('merchant_keys')
