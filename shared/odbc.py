"""The HRIS over ODBC: an aioodbc pool owned by the runner's registry.

ODBC calls block, so aioodbc runs them in the runner's executor of real OS threads (wider than the
pool). Reads use autocommit (otherwise pooled connections sit idle in a transaction). `timeout` is only
the login timeout: bound queries on the server (psqlodbc ``ConnSettings={SET statement_timeout=…}``,
SQL Server's query timeout). A connection the server killed fails once more before aioodbc drops it,
hence one retry on a connection error (DESIGN §6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import aioodbc
import pyodbc

from shared.runner import current_resources, get_runner

POOL_SIZE = 10
LOGIN_TIMEOUT = 10


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


async def odbc_fetch_batches(
    dsn: str, sql: str, params: Sequence[Any] = (), batch_size: int = 1000
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Run `sql` with `?` parameters and yield rows in batches (one retry on a lost connection)."""
    pool = await odbc_pool(dsn)
    yielded = False  # once rows went out, a retry would repeat them: only the first call retries
    for attempt in (1, 2):
        try:
            async with pool.acquire() as conn, conn.cursor() as cursor:
                await cursor.execute(sql, *params)
                while rows := await cursor.fetchmany(batch_size):
                    yielded = True
                    yield [tuple(r) for r in rows]
            return
        except pyodbc.Error as exc:
            if attempt == 2 or yielded or not _connection_lost(exc):
                raise
