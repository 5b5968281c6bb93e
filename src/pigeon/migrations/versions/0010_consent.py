"""consent: policies, opt-outs per scope and phone, and every keyword event

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('opt_outs',
    sa.Column('scope', sa.String(length=48), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('keyword', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'phone', name=op.f('pk_opt_outs'))
    )
    with op.batch_alter_table('opt_outs', schema=None) as batch_op:
        batch_op.create_index('ix_opt_outs_account', ['account_id', 'phone'], unique=False)
    op.create_table('consent_policies',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('opt_in_prompt', sa.String(length=500), nullable=False),
    sa.Column('opt_in_keywords', sa.Text(), nullable=False),
    sa.Column('opt_in_message', sa.String(length=500), nullable=False),
    sa.Column('opt_out_keywords', sa.Text(), nullable=False),
    sa.Column('opt_out_message', sa.String(length=500), nullable=False),
    sa.Column('help_keywords', sa.Text(), nullable=False),
    sa.Column('help_message', sa.String(length=500), nullable=False),
    sa.Column('disclaimer', sa.String(length=500), nullable=False),
    sa.Column('disclaimer_enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_consent_policies_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_policies'))
    )
    with op.batch_alter_table('consent_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_policies_account_id'), ['account_id'], unique=False)
    op.create_table('consent_contacts',
    sa.Column('scope', sa.String(length=48), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('first_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'phone', name=op.f('pk_consent_contacts'))
    )
    op.create_table('keyword_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=48), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=True),
    sa.Column('keyword', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=24), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_keyword_events'))
    )
    with op.batch_alter_table('keyword_events', schema=None) as batch_op:
        batch_op.create_index('ix_keyword_events_account_at', ['account_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('keyword_events', schema=None) as batch_op:
        batch_op.drop_index('ix_keyword_events_account_at')
    op.drop_table('keyword_events')
    with op.batch_alter_table('opt_outs', schema=None) as batch_op:
        batch_op.drop_index('ix_opt_outs_account')
    op.drop_table('consent_contacts')
    op.drop_table('opt_outs')
    with op.batch_alter_table('consent_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_policies_account_id'))
    op.drop_table('consent_policies')
