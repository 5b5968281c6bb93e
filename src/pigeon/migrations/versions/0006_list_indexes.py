"""lists stay fast at any size: an index per listing and filter; group members hold their
contact's created_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 18:00:00

Every index of messages/all starts with (user_id, deleted) and ends in the list's order
(created_at, id), with one filter's column between, and holds only the rows that filter finds
(see pigeon.messages.models); the contacts, groups, group members and templates lists get
theirs. Building them reads the tables once: about 10 s per million messages on this
project's machine, during which the database takes no writes.
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

MESSAGE_LISTS = [
    # name, the filter's column (or expression), the rows it holds (SQLite's, PostgreSQL's)
    ('ix_messages_list', None, None),
    ('ix_messages_list_inbound', None, "direction = 'INBOUND'"),
    ('ix_messages_list_read', None, ('read = 1', 'read')),
    ('ix_messages_list_from', 'from_number', 'from_number IS NOT NULL'),
    ('ix_messages_list_campaign', 'campaign', 'campaign IS NOT NULL'),
    ('ix_messages_list_data_field', sa.text('substr(data_field, 1, 64)'), 'data_field IS NOT NULL'),
    ('ix_messages_list_replies', 'replied_to_id', 'replied_to_id IS NOT NULL'),
    ('ix_messages_list_sent', 'sent_at', 'sent_at IS NOT NULL'),
    ('ix_messages_list_received', 'received_at', 'received_at IS NOT NULL'),
]


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_user_created')
    for name, column, where in MESSAGE_LISTS:
        columns = ['user_id', 'deleted', *([] if column is None else [column]), 'created_at', 'id']
        lite, pg = where if isinstance(where, tuple) else (where, where)
        condition = {} if where is None else {'sqlite_where': sa.text(lite), 'postgresql_where': sa.text(pg)}
        op.create_index(name, 'messages', columns, unique=False, **condition)

    op.create_index('ix_contacts_list', 'contacts', ['user_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_contact_groups_list', 'contact_groups', ['user_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_templates_list', 'templates', ['user_id', 'id'], unique=False)

    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_created_at', sa.DateTime(), nullable=True))
    op.execute('UPDATE group_members SET contact_created_at = '
               '(SELECT created_at FROM contacts WHERE contacts.id = group_members.contact_id)')
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.alter_column('contact_created_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index('ix_group_members_list', ['group_id', 'contact_created_at', 'contact_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('group_members', schema=None) as batch_op:
        batch_op.drop_index('ix_group_members_list')
        batch_op.drop_column('contact_created_at')
    op.drop_index('ix_templates_list', table_name='templates')
    op.drop_index('ix_contact_groups_list', table_name='contact_groups')
    op.drop_index('ix_contacts_list', table_name='contacts')
    for name, _, _ in reversed(MESSAGE_LISTS):
        op.drop_index(name, table_name='messages')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_user_created', ['user_id', 'created_at'], unique=False)
