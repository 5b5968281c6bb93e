"""SMS campaigns and their authorisations, port-in orders, and on numbers: their campaign,
allocated product, BYOC SIP group and peering details; on OAuth clients: the carrier a peering
provider's client speaks for

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 02:50:00

Columns are added in place (no batch copy of phone_numbers or oauth_clients; see 0011).
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_campaigns',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('service_type', sa.String(length=16), nullable=False),
    sa.Column('brand_id', sa.String(length=64), nullable=True),
    sa.Column('brand_name', sa.String(length=128), nullable=True),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('throughput', sa.Float(), nullable=True),
    sa.Column('response_to_opt_in', sa.String(length=500), nullable=True),
    sa.Column('response_to_opt_out', sa.String(length=500), nullable=True),
    sa.Column('response_to_help', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sms_campaigns_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_campaigns'))
    )
    op.create_index(op.f('ix_sms_campaigns_account_id'), 'sms_campaigns', ['account_id'], unique=False)
    op.create_table('sms_campaign_authorisations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.String(length=32), nullable=False),
    sa.Column('authorising_person', sa.String(length=128), nullable=False),
    sa.Column('contact_number', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('contact_emails', sa.String(length=500), nullable=True),
    sa.Column('number_ids', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['sms_campaigns.id'],
                            name=op.f('fk_sms_campaign_authorisations_campaign_id_sms_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_campaign_authorisations'))
    )
    op.create_index(op.f('ix_sms_campaign_authorisations_campaign_id'), 'sms_campaign_authorisations',
                    ['campaign_id'], unique=False)
    op.create_table('port_orders',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('numbers', sa.Text(), nullable=False),
    sa.Column('replacing', sa.Text(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_port_orders_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_port_orders'))
    )
    op.create_index(op.f('ix_port_orders_account_id'), 'port_orders', ['account_id'], unique=False)
    op.add_column('oauth_clients', sa.Column('carrier', sa.String(length=32), nullable=True))
    op.add_column('phone_numbers', sa.Column('campaign_id', sa.String(length=32), nullable=True))
    op.add_column('phone_numbers', sa.Column('product', sa.String(length=24), nullable=False,
                                             server_default='UNALLOCATED'))
    op.add_column('phone_numbers', sa.Column('sip_group_id', sa.String(length=64), nullable=True))
    op.add_column('phone_numbers', sa.Column('sip_trunk_name', sa.String(length=64), nullable=True))
    op.add_column('phone_numbers', sa.Column('billing_ref_id', sa.String(length=36), nullable=True))
    op.add_column('phone_numbers', sa.Column('service_info', sa.String(length=255), nullable=True))
    op.create_index(op.f('ix_phone_numbers_campaign_id'), 'phone_numbers', ['campaign_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_phone_numbers_campaign_id'), table_name='phone_numbers')
    with op.batch_alter_table('phone_numbers', schema=None) as batch_op:
        for column in ('service_info', 'billing_ref_id', 'sip_trunk_name', 'sip_group_id', 'product', 'campaign_id'):
            batch_op.drop_column(column)
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('carrier')
    op.drop_index(op.f('ix_port_orders_account_id'), table_name='port_orders')
    op.drop_table('port_orders')
    op.drop_index(op.f('ix_sms_campaign_authorisations_campaign_id'), table_name='sms_campaign_authorisations')
    op.drop_table('sms_campaign_authorisations')
    op.drop_index(op.f('ix_sms_campaigns_account_id'), table_name='sms_campaigns')
    op.drop_table('sms_campaigns')
