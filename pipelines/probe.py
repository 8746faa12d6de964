"""A trivial stage that reads the app database: proves the plumbing (runner, engine, tracking)."""

from __future__ import annotations

from sqlalchemy import func, select, text

from pipelines.stage import StageResult
from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.dialects import is_mariadb
from shared.database.tables import executions


@retry_transient
async def probe_app_db(sleep_seconds: float = 0.0) -> StageResult:
    """Count executions in the app DB; on MariaDB, `sleep_seconds` holds the connection server-side."""
    engine = await app_engine()
    async with engine.connect() as conn:
        if sleep_seconds and is_mariadb(conn.dialect):
            await conn.execute(text("SELECT SLEEP(:s)"), {"s": sleep_seconds})
        count = (await conn.execute(select(func.count()).select_from(executions))).scalar_one()
    return StageResult(rows_in=int(count), rows_out=0, output={"executions": int(count)})
