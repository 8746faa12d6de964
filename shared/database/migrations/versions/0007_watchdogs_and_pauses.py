"""watchdogs and pauses: watchdog_alerts, schedule_pauses, and the holder of an outbox row's claim

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.database.tables

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

EXACT = 'utf8mb4_nopad_bin'


def upgrade() -> None:
    op.create_table('watchdog_alerts',
    sa.Column('alert_key', sa.String(length=255), nullable=False),
    sa.Column('alert', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=True),
    sa.Column('detected_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('since', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('cleared_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('alert_key', name=op.f('pk_watchdog_alerts')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    with op.batch_alter_table('watchdog_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watchdog_alerts_detected_at'), ['detected_at'], unique=False)
    op.create_table('schedule_pauses',
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('paused_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('paused_by', sa.String(length=200), nullable=False),
    sa.Column('via', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('job', name=op.f('pk_schedule_pauses')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
    op.drop_table('schedule_pauses')
    with op.batch_alter_table('watchdog_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watchdog_alerts_detected_at'))
    op.drop_table('watchdog_alerts')
