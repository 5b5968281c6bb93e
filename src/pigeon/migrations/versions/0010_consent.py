"""consent: opt-outs per scope and phone, and every keyword event

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
    sa.Column('keyword', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'phone', name=op.f('pk_opt_outs'))
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
    op.drop_table('opt_outs')
