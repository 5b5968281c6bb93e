"""accounts under accounts: a reseller's customers, and the operator's master account

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 01:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('is_master', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_accounts_parent_id'), ['parent_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_accounts_parent_id_accounts'), 'accounts', ['parent_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_accounts_parent_id_accounts'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_accounts_parent_id'))
        batch_op.drop_column('is_master')
        batch_op.drop_column('parent_id')
