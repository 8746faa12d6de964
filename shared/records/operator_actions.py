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

from shared.config.errors import ConfigError
from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import operator_actions

VIA = ("cli", "web")
REASON_MAX = 1000


def checked_reason(reason: str | None, option: str = "reason") -> str:
    """The operator's reason with its whitespace folded; `ConfigError` naming `option` when it is missing,
    blank or longer than `REASON_MAX` (replay, cancel and dead-letter replay require one)."""
    text = " ".join((reason or "").split())
    if not text:
        raise ConfigError(f"{option}: required (why this is done; kept in the audit)")
    if len(text) > REASON_MAX:
        raise ConfigError(f"{option}: at most {REASON_MAX} characters")
    return text


def cli_actor() -> str:
    """The OS user running the CLI (`unknown` when the system cannot tell)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME variable
        return "unknown"


async def record_operator_action(action: str, target: str, details: Mapping[str, Any] | None = None, *,
                                 via: str, actor: str | None = None, conn: AsyncConnection | None = None) -> None:
    """Write one audit row; in the caller's transaction when `conn` is given (the action's own, so the action
    and its row commit together or not at all), else in a transaction of its own."""
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
