"""The console: web sessions, the audit log, the account-wide message list's index and a
message's webhook deliveries' index; each carrier link's reported state; opt-outs newest first

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 09:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_web_sessions_user_id', 'web_sessions', ['user_id'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at', 'id'], unique=False)
    op.create_index('ix_audit_log_account_at', 'audit_log', ['account_id', 'at', 'id'], unique=False)
    op.create_index('ix_messages_account', 'messages', ['account_id', 'deleted', 'created_at', 'id'], unique=False)
    op.create_index('ix_webhook_events_message', 'webhook_events', ['message_id'], unique=False)
    op.create_index('ix_opt_outs_account_at', 'opt_outs', ['account_id', 'at'], unique=False)
    op.create_table('carrier_links',
    sa.Column('link', sa.String(length=160), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=False),
    sa.Column('process', sa.String(length=96), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('window_used', sa.Integer(), nullable=False),
    sa.Column('window_size', sa.Integer(), nullable=False),
    sa.Column('sent_per_second', sa.Float(), nullable=False),
    sa.Column('throughput', sa.Float(), nullable=True),
    sa.Column('last_error', sa.String(length=255), nullable=True),
    sa.Column('last_error_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('link')
    )
    op.create_index('ix_carrier_links_carrier', 'carrier_links', ['carrier'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_carrier_links_carrier', table_name='carrier_links')
    op.drop_table('carrier_links')
    op.drop_index('ix_opt_outs_account_at', table_name='opt_outs')
    op.drop_index('ix_webhook_events_message', table_name='webhook_events')
    op.drop_index('ix_messages_account', table_name='messages')
    op.drop_index('ix_audit_log_account_at', table_name='audit_log')
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index('ix_web_sessions_user_id', table_name='web_sessions')
    op.drop_table('web_sessions')
