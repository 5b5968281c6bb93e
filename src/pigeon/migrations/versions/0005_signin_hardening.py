"""sign-in hardening: the server key of the token hashes, failed sign-ins counted

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 15:00:00

The key is made here, once, under the migration lock, so every process sharing the database
reads the same one (it is used only when PIGEON_TOKEN_KEY is not set). Existing token hashes
stay plain SHA-256 until each user's next successful sign-in rewrites them keyed. Downgrading
drops the key: tokens hashed with it stop working (`pigeon account token` issues new ones).
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    server_keys = op.create_table('server_keys',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_server_keys'))
    )
    op.bulk_insert(server_keys, [{'name': 'token', 'value': secrets.token_hex(32)}])
    op.create_table('signin_failures',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_signin_failures'))
    )
    with op.batch_alter_table('signin_failures', schema=None) as batch_op:
        batch_op.create_index('ix_signin_failures_window_start', ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signin_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_signin_failures_window_start')
    op.drop_table('signin_failures')
    op.drop_table('server_keys')
