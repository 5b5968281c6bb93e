"""accounts under accounts: a reseller's customers, and the operator's master account

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 01:10:00

Columns are added in place (on SQLite, ALTER TABLE ... ADD COLUMN with its reference inline):
SQLite's batch mode would copy and drop the accounts table, which every user row refers to,
and an existing database's upgrade would fail on its foreign keys (tests/test_lists.py
upgrades one with rows).
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a column with its reference in place
        op.execute("ALTER TABLE accounts ADD COLUMN parent_id INTEGER "
                   "CONSTRAINT fk_accounts_parent_id_accounts REFERENCES accounts (id)")
    else:
        op.add_column('accounts', sa.Column('parent_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_accounts_parent_id_accounts'), 'accounts', 'accounts', ['parent_id'], ['id'])
    op.add_column('accounts', sa.Column('is_master', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index(op.f('ix_accounts_parent_id'), 'accounts', ['parent_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_accounts_parent_id'), table_name='accounts')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('is_master')
        batch_op.drop_column('parent_id')
