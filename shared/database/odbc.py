"""The HRIS over ODBC: an aioodbc pool owned by the runner's registry.

ODBC calls block, so aioodbc runs them in the runner's executor of real OS threads (wider than the
pool). Reads use autocommit (otherwise pooled connections sit idle in a transaction). `timeout` is only
the login timeout: bound queries on the server (psqlodbc ``ConnSettings={SET statement_timeout=…}``,
SQL Server's query timeout). A connection the server killed fails once more before aioodbc drops it,
hence one retry on a connection error (DESIGN §6). A server or network that goes silent is bounded on
our side: each round trip waits at most HRSYNC_SOURCE_TIMEOUT (`shared.config.deadlines`); the connection it
hung on is abandoned, since cancelling the await does not stop the ODBC call in its thread.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, suppress
from typing import Any

import aioodbc
import pyodbc

from shared.config.deadlines import SourceTimeout, source_call
from shared.runtime.runner import current_resources, get_runner

POOL_SIZE = 10
LOGIN_TIMEOUT = 10
HRIS = "HRIS"  # the source's name in a SourceTimeout


async def _close_pool(pool: aioodbc.Pool) -> None:
    pool.close()
    await pool.wait_closed()


async def odbc_pool(dsn: str) -> aioodbc.Pool:
    """The registry's pool for the ODBC connection string `dsn`."""

    async def create() -> aioodbc.Pool:
        return await aioodbc.create_pool(
            dsn=dsn, minsize=0, maxsize=POOL_SIZE, autocommit=True, timeout=LOGIN_TIMEOUT,
            executor=get_runner().executor,
        )

    return await current_resources().get(f"odbc:{dsn}", create, _close_pool)


def _connection_lost(exc: pyodbc.Error) -> bool:
    state = str(exc.args[0]) if exc.args else ""
    return state.startswith("08") or isinstance(exc, pyodbc.OperationalError)


def _abandon(conn: aioodbc.Connection) -> None:
    """Never reuse nor close `conn`: a real thread is still blocked in the driver on it, and a close would
    queue behind that call. aioodbc has no API for this; without its handle the pool counts it as closed.
    The pyodbc connection closes when the blocked call returns (the server or the OS gives up)."""
    conn._conn = None


async def _fetch_once(
    pool: aioodbc.Pool, sql: str, params: Sequence[Any], batch_size: int
) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """One connection's try: every round trip bounded by HRSYNC_SOURCE_TIMEOUT (`SourceTimeout`)."""
    async with source_call(HRIS):
        conn = await pool.acquire()
    cursor: aioodbc.Cursor | None = None
    try:
        async with source_call(HRIS):
            cursor = await conn.cursor()
            await cursor.execute(sql, *params)
        while True:
            async with source_call(HRIS):
                rows = await cursor.fetchmany(batch_size)
            if not rows:
                break
            yield [tuple(r) for r in rows]
    except SourceTimeout:
        _abandon(conn)
        cursor = None
        raise
    finally:
        if cursor is not None:
            with suppress(pyodbc.Error):
                await cursor.close()
        await pool.release(conn)


async def odbc_fetch_batches(
    dsn: str, sql: str, params: Sequence[Any] = (), batch_size: int = 1000
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Run `sql` with `?` parameters and yield rows in batches (one retry on a lost connection)."""
    pool = await odbc_pool(dsn)
    yielded = False  # once rows went out, a retry would repeat them: only the first call retries
    for attempt in (1, 2):
        try:
            async with aclosing(_fetch_once(pool, sql, params, batch_size)) as batches:
                async for batch in batches:
                    yielded = True
                    yield batch
            return
        except pyodbc.Error as exc:
            if attempt == 2 or yielded or not _connection_lost(exc):
                raise
