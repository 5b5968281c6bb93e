"""rate limits counted in the database, shared by every process

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 00:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_counts',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_counts'))
    )
    with op.batch_alter_table('rate_counts', schema=None) as batch_op:
        batch_op.create_index('ix_rate_counts_window_start', ['window_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_counts', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_counts_window_start')
    op.drop_table('rate_counts')
