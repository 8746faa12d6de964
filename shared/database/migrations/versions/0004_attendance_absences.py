"""attendance: absences, punch corrections (manual and void punches), overtime and absence kind per day

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.database.tables

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

EXACT = 'utf8mb4_nopad_bin'


def upgrade() -> None:
    op.create_table('absences',
    sa.Column('absence_id', sa.String(length=64), nullable=False),
    sa.Column('employee_no', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('date_from', sa.Date(), nullable=False),
    sa.Column('date_to', sa.Date(), nullable=False),
    sa.Column('part', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('updated_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('synced_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('execution_id', sa.String(length=36), nullable=True),
    sa.Column('recompute_from', sa.Date(), nullable=True),
    sa.Column('recompute_to', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('absence_id', name=op.f('pk_absences')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    with op.batch_alter_table('absences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_absences_employee_no_date_from'), ['employee_no', 'date_from'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_absences_recompute_from'), ['recompute_from'], unique=False)
    op.create_table('punch_corrections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('punch_id', sa.BigInteger(), nullable=False),
    sa.Column('employee_no', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('punched_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('via', sa.String(length=8), nullable=False),
    sa.Column('at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_punch_corrections')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    with op.batch_alter_table('punch_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_punch_corrections_punch_id'), ['punch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_punch_corrections_employee_no_punched_at'),
                              ['employee_no', 'punched_at'], unique=False)
    with op.batch_alter_table('punches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=8), server_default='device', nullable=False))
        batch_op.add_column(sa.Column('voided_at', shared.database.tables.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('void_reason', sa.Text(), nullable=True))
    with op.batch_alter_table('attendance_days', schema=None) as batch_op:
        batch_op.add_column(sa.Column('overtime_minutes', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('absence_kind', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('attendance_days', schema=None) as batch_op:
        batch_op.drop_column('absence_kind')
        batch_op.drop_column('overtime_minutes')
    with op.batch_alter_table('punches', schema=None) as batch_op:
        batch_op.drop_column('void_reason')
        batch_op.drop_column('voided_at')
        batch_op.drop_column('source')
    with op.batch_alter_table('punch_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_punch_corrections_employee_no_punched_at'))
        batch_op.drop_index(batch_op.f('ix_punch_corrections_punch_id'))
    op.drop_table('punch_corrections')
    with op.batch_alter_table('absences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_absences_recompute_from'))
        batch_op.drop_index(batch_op.f('ix_absences_employee_no_date_from'))
    op.drop_table('absences')
