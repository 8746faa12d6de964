"""initial tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 03:48:07.659131
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.database.tables
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('attendance_days',
    sa.Column('employee_no', sa.String(length=64), nullable=False),
    sa.Column('work_date', sa.Date(), nullable=False),
    sa.Column('shift_code', sa.String(length=32), nullable=False),
    sa.Column('first_in', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('last_out', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('worked_minutes', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('late_minutes', sa.Integer(), nullable=False),
    sa.Column('early_exit_minutes', sa.Integer(), nullable=False),
    sa.Column('punch_count', sa.Integer(), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.Column('computed_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('employee_no', 'work_date', 'shift_code', name=op.f('pk_attendance_days'))
    )
    with op.batch_alter_table('attendance_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendance_days_work_date_status'), ['work_date', 'status'], unique=False)

    op.create_table('employees',
    sa.Column('employee_no', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('department', sa.String(length=100), nullable=True),
    sa.Column('manager_no', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('hire_date', sa.Date(), nullable=True),
    sa.Column('termination_date', sa.Date(), nullable=True),
    sa.Column('biostar_user_id', sa.String(length=64), nullable=True),
    sa.Column('updated_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('synced_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('employee_no', name=op.f('pk_employees'))
    )
    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_employees_biostar_user_id'), ['biostar_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_employees_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_employees_manager_no'), ['manager_no'], unique=False)

    op.create_table('event_inbox',
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.Column('received_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('launched_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('body', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_event_inbox'))
    )
    with op.batch_alter_table('event_inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_inbox_received_at'), ['received_at'], unique=False)

    op.create_table('execution_stages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('shard', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('finished_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('rows_in', sa.Integer(), nullable=True),
    sa.Column('rows_out', sa.Integer(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error_type', sa.String(length=200), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_execution_stages')),
    sa.UniqueConstraint('execution_id', 'stage', 'shard', 'attempt', name=op.f('uq_execution_stages_execution_id_stage_shard_attempt'))
    )
    op.create_table('executions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.Column('replay_of', sa.String(length=36), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('started_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('finished_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('failed_stage', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_executions'))
    )
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_executions_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_executions_replay_of'), ['replay_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_executions_status_created_at'), ['status', 'created_at'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('outbox_key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('recipient_name', sa.String(length=200), nullable=True),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('body_text', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=False),
    sa.Column('body_html', sa.Text().with_variant(mysql.LONGTEXT(), 'mariadb').with_variant(mysql.LONGTEXT(), 'mysql'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('sent_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('outbox_key', name=op.f('uq_notifications_outbox_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_status'), ['status'], unique=False)

    op.create_table('punches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('employee_no', sa.String(length=64), nullable=False),
    sa.Column('device_id', sa.BigInteger(), nullable=False),
    sa.Column('punched_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('event_code', sa.Integer(), nullable=False),
    sa.Column('tna_key', sa.Integer(), nullable=True),
    sa.Column('received_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_punches')),
    sa.UniqueConstraint('employee_no', 'punched_at', 'device_id', name=op.f('uq_punches_employee_no_punched_at_device_id'))
    )
    with op.batch_alter_table('punches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_punches_punched_at'), ['punched_at'], unique=False)

    op.create_table('sync_watermarks',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('watermark', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('source', name=op.f('pk_sync_watermarks'))
    )
    op.create_table('unmatched_punches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('biostar_user_id', sa.String(length=64), nullable=False),
    sa.Column('device_id', sa.BigInteger(), nullable=False),
    sa.Column('punched_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('event_code', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unmatched_punches')),
    sa.UniqueConstraint('biostar_user_id', 'device_id', 'punched_at', name=op.f('uq_unmatched_punches_biostar_user_id_device_id_punched_at'))
    )


def downgrade() -> None:
    op.drop_table('unmatched_punches')
    op.drop_table('sync_watermarks')
    with op.batch_alter_table('punches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_punches_punched_at'))

    op.drop_table('punches')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_status'))

    op.drop_table('notifications')
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_executions_status_created_at'))
        batch_op.drop_index(batch_op.f('ix_executions_replay_of'))
        batch_op.drop_index(batch_op.f('ix_executions_event_id'))

    op.drop_table('executions')
    op.drop_table('execution_stages')
    with op.batch_alter_table('event_inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_inbox_received_at'))

    op.drop_table('event_inbox')
    with op.batch_alter_table('employees', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_employees_manager_no'))
        batch_op.drop_index(batch_op.f('ix_employees_department'))
        batch_op.drop_index(batch_op.f('ix_employees_biostar_user_id'))

    op.drop_table('employees')
    with op.batch_alter_table('attendance_days', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attendance_days_work_date_status'))

    op.drop_table('attendance_days')
