"""Operator actions (DESIGN §7): who replayed, cancelled, re-published or corrected what, from the CLI or the web.

Every such action writes one `operator_actions` row; `hrsync audit` and the console list them.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import operator_actions

VIA = ("cli", "web")


def cli_actor() -> str:
    """The OS user running the CLI (`unknown` when the system cannot tell)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME variable
        return "unknown"


async def record_operator_action(action: str, target: str, details: Mapping[str, Any] | None = None, *,
                                 via: str, actor: str | None = None, conn: AsyncConnection | None = None) -> None:
    """Write one audit row; in the caller's transaction when `conn` is given, else in a transaction of its own."""
    if via not in VIA:
        raise ValueError(f"via must be one of {VIA}, not {via!r}")
    row = {"at": dt.datetime.now(dt.UTC), "actor": actor or (cli_actor() if via == "cli" else "unknown"),
           "via": via, "action": action, "target": target, "details": dict(details or {})}
    if conn is not None:
        await conn.execute(operator_actions.insert().values(**row))
        return
    await _insert(row)


@retry_transient
async def _insert(row: dict[str, Any]) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(operator_actions.insert().values(**row))


async def list_operator_actions(since: dt.datetime | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """The newest actions first (at most `limit`), as JSON-able dicts."""
    query = select(operator_actions).order_by(operator_actions.c.at.desc(), operator_actions.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(operator_actions.c.at >= since)
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [{**row._mapping, "at": row.at.isoformat()} for row in rows]
