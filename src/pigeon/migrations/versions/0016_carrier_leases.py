"""Carrier bind slots leased by the processes of a cluster, and the delivering processes seen

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('carrier_leases',
    sa.Column('carrier', sa.String(length=64), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=96), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('taken_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('carrier', 'slot')
    )
    op.create_table('delivery_members',
    sa.Column('process', sa.String(length=96), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('process')
    )
    op.create_index('ix_delivery_members_seen_at', 'delivery_members', ['seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_delivery_members_seen_at', table_name='delivery_members')
    op.drop_table('delivery_members')
    op.drop_table('carrier_leases')
