"""Zoho Voice: a message's send options (validity, flash, forced data coding, status callback,
schedule time zone, MMS) and its other party's country; MMS media and the messages carrying it;
OAuth self-clients (a client's user), grant codes and refresh tokens

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 05:30:00

Columns are added in place, all nullable (no batch copy of messages; see 0011).
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

MESSAGE_COLUMNS = (
    sa.Column('region', sa.String(length=2), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('flash', sa.Boolean(), nullable=True),
    sa.Column('data_coding', sa.SmallInteger(), nullable=True),
    sa.Column('status_callback', sa.Text(), nullable=True),
    sa.Column('time_zone', sa.String(length=64), nullable=True),
    sa.Column('mms', sa.Boolean(), nullable=True),
)


def upgrade() -> None:
    for column in MESSAGE_COLUMNS:
        op.add_column('messages', column)
    op.create_table('media',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=127), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_media_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media'))
    )
    op.create_index(op.f('ix_media_account_id'), 'media', ['account_id'], unique=False)
    op.create_table('message_media',
    sa.Column('message_id', sa.String(length=24), nullable=False),
    sa.Column('media_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_media_message_id_messages'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_message_media_media_id_media')),
    sa.PrimaryKeyConstraint('message_id', 'media_id', name=op.f('pk_message_media'))
    )
    op.create_index(op.f('ix_message_media_media_id'), 'message_media', ['media_id'], unique=False)
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a column with its reference in place
        op.execute("ALTER TABLE oauth_clients ADD COLUMN user_id INTEGER "
                   "CONSTRAINT fk_oauth_clients_user_id_users REFERENCES users (id)")
    else:
        op.add_column('oauth_clients', sa.Column('user_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_oauth_clients_user_id_users'), 'oauth_clients', 'users', ['user_id'], ['id'])
    op.add_column('oauth_tokens', sa.Column('user_id', sa.Integer(), nullable=True))
    op.create_table('oauth_grant_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.id'],
                            name=op.f('fk_oauth_grant_codes_client_id_oauth_clients')),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_oauth_grant_codes'))
    )
    op.create_index(op.f('ix_oauth_grant_codes_client_id'), 'oauth_grant_codes', ['client_id'], unique=False)
    op.create_table('oauth_refresh_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.id'],
                            name=op.f('fk_oauth_refresh_tokens_client_id_oauth_clients')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_oauth_refresh_tokens'))
    )
    op.create_index(op.f('ix_oauth_refresh_tokens_client_id'), 'oauth_refresh_tokens', ['client_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_oauth_refresh_tokens_client_id'), table_name='oauth_refresh_tokens')
    op.drop_table('oauth_refresh_tokens')
    op.drop_index(op.f('ix_oauth_grant_codes_client_id'), table_name='oauth_grant_codes')
    op.drop_table('oauth_grant_codes')
    with op.batch_alter_table('oauth_tokens', schema=None) as batch_op:
        batch_op.drop_column('user_id')
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('user_id')
    op.drop_index(op.f('ix_message_media_media_id'), table_name='message_media')
    op.drop_table('message_media')
    op.drop_index(op.f('ix_media_account_id'), table_name='media')
    op.drop_table('media')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        for column in reversed(MESSAGE_COLUMNS):
            batch_op.drop_column(column.name)
