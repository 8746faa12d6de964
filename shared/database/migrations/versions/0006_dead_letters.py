"""dead_letters: dead-lettered events kept in the app database (listing is a SELECT, replay marks the row)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import shared.database.tables

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

EXACT = 'utf8mb4_nopad_bin'


def upgrade() -> None:
    op.create_table('dead_letters',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.Column('type', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('routing_key', sa.String(length=255), nullable=False),
    sa.Column('first_seen', sa.String(length=64), nullable=True),
    sa.Column('replays', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text().with_variant(mysql.LONGTEXT(), 'mysql', 'mariadb'), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=False),
    sa.Column('received_at', shared.database.tables.UTCDateTime(), nullable=False),
    sa.Column('replayed_at', shared.database.tables.UTCDateTime(), nullable=True),
    sa.Column('replayed_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters')),
    mysql_charset='utf8mb4',
    mysql_collate=EXACT,
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_replayed_at_received_at'), ['replayed_at', 'received_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letters_event_id'), ['event_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letters_event_id'))
        batch_op.drop_index(batch_op.f('ix_dead_letters_replayed_at_received_at'))
    op.drop_table('dead_letters')
