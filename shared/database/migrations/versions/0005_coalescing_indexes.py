"""coalescing: find the pending execution of a kind, and the events an execution served, by index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_executions_kind_status_created_at'), ['kind', 'status', 'created_at'],
                              unique=False)
    with op.batch_alter_table('event_inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_inbox_execution_id'), ['execution_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event_inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_inbox_execution_id'))
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_executions_kind_status_created_at'))
