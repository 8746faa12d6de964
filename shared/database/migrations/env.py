"""Alembic environment: migrations run on a connection handed over by `shared.database.migrations`."""

from __future__ import annotations

from alembic import context

from shared.database.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `hrsync db upgrade` (it hands Alembic a connection)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
