"""month end: exceptions with their decisions, periods (close/reopen versions), changes kept from frozen days,
files attached to an outbox message

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.database.tables

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

EXACT = 'utf8mb4_nopad_bin'


def upgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachments', sa.JSON(), nullable=True))
    op.create_table('attendance_exceptions',
    sa.Column('employee_no', sa.String(length=64), nullable=False),
    sa.Column('work_date', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('changed_since_decided', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('auto_approved', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('approved_overtime_minutes', sa.Integer(), nullable=True),
    sa.Column('verdict', sa.String(length=8), nullable=True),
    sa.Column('decided_minutes', sa.Integer(), nullable=True),
    sa.Column('decided_figures', sa.JSON(), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('first_seen_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('updated_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('employee_no', 'work_date', 'kind', name=op.f('pk_attendance_exceptions')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    with op.batch_alter_table('attendance_exceptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendance_exceptions_work_date_state'), ['work_date', 'state'],
                              unique=False)
    op.create_table('periods',
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('forced', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('closed_by', sa.String(length=200), nullable=False),
    sa.Column('closed_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reopened_by', sa.String(length=200), nullable=True),
    sa.Column('reopened_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('reopen_reason', sa.Text(), nullable=True),
    sa.Column('export_execution_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('period', 'version', name=op.f('pk_periods')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    op.create_table('period_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('employee_no', sa.String(length=64), nullable=False),
    sa.Column('work_date', sa.Date(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_period_changes')),
    sa.UniqueConstraint('employee_no', 'work_date', 'execution_id',
                        name=op.f('uq_period_changes_employee_no_work_date_execution_id')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    with op.batch_alter_table('period_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_period_changes_period_version'), ['period', 'version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('period_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_period_changes_period_version'))
    op.drop_table('period_changes')
    op.drop_table('periods')
    with op.batch_alter_table('attendance_exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attendance_exceptions_work_date_state'))
    op.drop_table('attendance_exceptions')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('attachments')
