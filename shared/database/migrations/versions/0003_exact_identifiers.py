"""exact identifiers (binary, no-pad collation on MariaDB), operator_actions, prunable inbox bodies

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.database.tables

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# MariaDB's default utf8mb4_general_ci ignores case and trailing spaces: `Payroll-1` = `payroll-1 `.
EXACT = 'utf8mb4_nopad_bin'
BEFORE = 'utf8mb4_general_ci'
TABLES = ('employees', 'punches', 'unmatched_punches', 'attendance_days', 'notifications', 'executions',
          'execution_stages', 'event_inbox', 'sync_watermarks', 'schedule_runs')


def _is_mariadb() -> bool:
    return op.get_bind().dialect.name in ('mysql', 'mariadb')


def _collate(collation: str) -> None:
    database = op.get_bind().exec_driver_sql('SELECT DATABASE()').scalar()
    op.execute(f'ALTER DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE {collation}')
    for table in TABLES:
        op.execute(f'ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {collation}')


def upgrade() -> None:
    if _is_mariadb():
        _collate(EXACT)
    op.create_table('operator_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('via', sa.String(length=8), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_actions')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    with op.batch_alter_table('operator_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operator_actions_at'), ['at'], unique=False)
    with op.batch_alter_table('event_inbox', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=shared.database.tables.LongText, nullable=True)
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_executions_created_at_id'), ['created_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_executions_created_at_id'))
    op.execute(sa.text("UPDATE event_inbox SET body = '' WHERE body IS NULL"))
    with op.batch_alter_table('event_inbox', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=shared.database.tables.LongText, nullable=False)
    with op.batch_alter_table('operator_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operator_actions_at'))
    op.drop_table('operator_actions')
    if _is_mariadb():
        _collate(BEFORE)
