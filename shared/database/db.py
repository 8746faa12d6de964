"""Database access: engines owned by the runner's registry, and the portable upsert.

`app_engine()` and `biostar_engine()` must be awaited inside a coroutine run through `run_async`; the
engine is created once per loop (or per call in per-task disposal mode) and disposed on that loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from shared.config.settings import get_settings
from shared.database.dialects import is_mariadb
from shared.runtime import realthreads
from shared.runtime.runner import current_resources


def _aiosqlite_on_real_threads() -> None:
    """aiosqlite runs each connection in a thread fed by a queue; under gevent's patching both would be
    greenlets of the runner's loop thread, which never yields to them (a hang). Give it real ones."""
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        import aiosqlite.core

        setattr(aiosqlite.core, "Thread", realthreads.RealThread)  # noqa: B010 - module globals, on purpose
        setattr(aiosqlite.core, "SimpleQueue", realthreads.SimpleQueue)  # noqa: B010


def make_engine(url: str, pool_size: int | None = None, max_overflow: int | None = None) -> AsyncEngine:
    """An async engine with hrsync's pool settings; SQLite gets a busy timeout instead of a big pool."""
    settings = get_settings()
    if url.startswith("sqlite"):
        _aiosqlite_on_real_threads()
        return create_async_engine(url, connect_args={"timeout": 30})
    return create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow if max_overflow is None else max_overflow,
        pool_recycle=1800,  # below MariaDB's wait_timeout defaults, so idle connections are not stale
        pool_timeout=60,
    )


async def _dispose(engine: AsyncEngine) -> None:
    await engine.dispose()


async def engine_for(url: str) -> AsyncEngine:
    """The registry's engine for `url` (created on first use, disposed when the runner stops)."""
    async def create() -> AsyncEngine:
        return make_engine(url)

    return await current_resources().get(f"engine:{url}", create, _dispose)


async def app_engine() -> AsyncEngine:
    """The app database (HRSYNC_DATABASE_URL)."""
    return await engine_for(get_settings().app_db_url())


async def biostar_engine() -> AsyncEngine:
    """The BioStar 2 database (HRSYNC_BIOSTAR_URL), read-only by contract."""
    return await engine_for(get_settings().biostar_db_url())


def upsert(conn: AsyncConnection, table: Table, update: Sequence[str]) -> Insert:
    """An INSERT that updates `update` columns when the row's unique key exists (MariaDB/SQLite/PG).

    Execute it with a list of row dicts: ``await conn.execute(upsert(conn, t, cols), rows)``.
    """
    dialect = conn.dialect.name
    if is_mariadb(conn.dialect):
        stmt = mysql.insert(table)
        values = {c: stmt.inserted[c] for c in update}
        return stmt.on_duplicate_key_update(values) if values else stmt.prefix_with("IGNORE")
    if dialect in ("sqlite", "postgresql"):
        stmt_: Any = (sqlite if dialect == "sqlite" else postgresql).insert(table)
        keys = _conflict_columns(table)
        if not update:
            return stmt_.on_conflict_do_nothing(index_elements=keys)  # type: ignore[no-any-return]
        values = {c: stmt_.excluded[c] for c in update}
        return stmt_.on_conflict_do_update(index_elements=keys, set_=values)  # type: ignore[no-any-return]
    raise NotImplementedError(f"upsert on {dialect}")


def _conflict_columns(table: Table) -> list[str]:
    """The natural key: the first unique constraint, else the primary key."""
    from sqlalchemy import UniqueConstraint

    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            return [c.name for c in constraint.columns]
    return [c.name for c in table.primary_key.columns]
