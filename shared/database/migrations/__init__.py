"""Alembic migrations of the app database (`hrsync db upgrade`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from shared.database.db import app_engine

HERE = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic config pointing at this folder; `connection` is handed to env.py when given."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


async def _run(action: str, *args: Any) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: getattr(command, action)(alembic_config(sync_conn), *args))


async def upgrade(revision: str = "head") -> None:
    """Migrate the app database up to `revision` (run through `run_async`)."""
    await _run("upgrade", revision)


async def downgrade(revision: str = "base") -> None:
    """Migrate the app database down to `revision` (run through `run_async`)."""
    await _run("downgrade", revision)


async def current_revision() -> str | None:
    """The revision the app database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    engine = await app_engine()
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
