"""Executions for tests that run steps outside a canvas (no event, no bridge): inserted the one way."""

from __future__ import annotations

from typing import Any

from shared.database.db import app_engine
from shared.records.executions import insert_execution, new_execution_id


async def create_execution(kind: str, trigger: str, params: dict[str, Any]) -> str:
    """Insert a `pending` execution with a fresh id and return the id."""
    execution_id = new_execution_id()
    engine = await app_engine()
    async with engine.begin() as conn:
        await insert_execution(conn, execution_id, kind=kind, trigger=trigger, params=params)
    return execution_id
