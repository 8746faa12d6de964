"""Alembic: upgrade an empty database to head and back down to base, on MariaDB and on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from shared.database import migrations
from shared.database.db import app_engine
from shared.database.tables import metadata
from shared.runtime.runner import run_async

pytestmark = pytest.mark.integration


async def table_names() -> set[str]:
    engine = await app_engine()
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


def test_upgrade_then_downgrade_is_clean(empty_database: str) -> None:
    """Upgrade creates every app table of the metadata; downgrade to base removes them all."""
    run_async(migrations.upgrade())
    assert run_async(migrations.current_revision()) is not None
    assert set(metadata.tables) <= run_async(table_names())
    run_async(migrations.downgrade("base"))
    assert run_async(migrations.current_revision()) is None
    assert run_async(table_names()) <= {"alembic_version"}


def test_migrations_match_the_metadata(empty_database: str) -> None:
    """After upgrade, Alembic's autogenerate finds no difference between migrations and tables.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    run_async(migrations.upgrade())

    async def diff() -> list[object]:
        engine = await app_engine()
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": False}), metadata)
            )

    assert run_async(diff()) == []
