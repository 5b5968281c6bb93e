"""OAuth: clients of an account with scopes, and the access tokens granted to them

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 00:00:00

Secrets and tokens are kept as keyed hashes (the server key of 0005). Tokens expire after an
hour and are purged by index on expires_at.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_clients',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_oauth_clients_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_clients'))
    )
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_clients_account_id'), ['account_id'], unique=False)
    op.create_table('oauth_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.id'], name=op.f('fk_oauth_tokens_client_id_oauth_clients')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_oauth_tokens'))
    )
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_tokens_client_id'), ['client_id'], unique=False)
        batch_op.create_index('ix_oauth_tokens_expires_at', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_oauth_tokens_expires_at')
        batch_op.drop_index(batch_op.f('ix_oauth_tokens_client_id'))
    op.drop_table('oauth_tokens')
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_clients_account_id'))
    op.drop_table('oauth_clients')
