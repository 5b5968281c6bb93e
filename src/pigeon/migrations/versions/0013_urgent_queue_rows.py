"""outbound_queue.urgent: a consent keyword's answer, which no claim holds back

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 03:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('outbound_queue', sa.Column('urgent', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('outbound_queue', schema=None) as batch_op:
        batch_op.drop_column('urgent')
