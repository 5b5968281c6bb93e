"""phone numbers: the senders and the inbound routes of every dialect

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 00:30:00

A number is unique across Pigeon; an account's numbers are listed from (account_id, number).
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('phone_numbers',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sms', sa.Boolean(), nullable=False),
    sa.Column('mms', sa.Boolean(), nullable=False),
    sa.Column('voice', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=True),
    sa.Column('consent_policy_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_phone_numbers_account_id_accounts')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_phone_numbers_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_numbers')),
    sa.UniqueConstraint('number', name=op.f('uq_phone_numbers_number'))
    )
    with op.batch_alter_table('phone_numbers', schema=None) as batch_op:
        batch_op.create_index('ix_phone_numbers_account', ['account_id', 'number'], unique=False)
        batch_op.create_index('ix_phone_numbers_user', ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_numbers_consent_policy_id'), ['consent_policy_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('phone_numbers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_numbers_consent_policy_id'))
        batch_op.drop_index('ix_phone_numbers_user')
        batch_op.drop_index('ix_phone_numbers_account')
    op.drop_table('phone_numbers')
