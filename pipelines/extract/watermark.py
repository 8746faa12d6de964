"""Incremental extraction marks: the newest committed `updated_at` per source in `sync_watermarks`.

A read starts `WATERMARK_OVERLAP` before the mark, so rows whose `updated_at` lags their commit (long
HRIS transactions, clock skew between HRIS writers) are still picked up; re-reading a few rows is
harmless because the upsert is idempotent. The mark only moves forward, and only through
`commit_watermark`, which the workflow calls once every shard has committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from pipelines.extract.params import ExtractParams
from shared.config.retry import retry_transient
from shared.database.db import app_engine, upsert
from shared.database.tables import sync_watermarks

WATERMARK_OVERLAP = timedelta(minutes=10)


@retry_transient
async def read_watermark(source: str) -> datetime | None:
    """The stored mark of `source` (aware UTC), or None before its first committed extract."""
    engine = await app_engine()
    async with engine.connect() as conn:
        value = (await conn.execute(
            select(sync_watermarks.c.watermark).where(sync_watermarks.c.source == source)
        )).scalar_one_or_none()
    return value


@retry_transient
async def commit_watermark(source: str, value: datetime) -> None:
    """Advance the mark of `source` to `value` (aware); a value at or below the stored one is a no-op.

    Call it once all shards of an extract succeeded, with `next_watermark(...)` of their outputs.
    """
    if value.tzinfo is None:
        raise ValueError("commit_watermark needs an aware datetime")
    now = datetime.now(UTC)
    engine = await app_engine()
    async with engine.begin() as conn:
        # Insert if absent, then a conditional update: two racing commits both end at the larger value.
        await conn.execute(upsert(conn, sync_watermarks, []),
                           [{"source": source, "watermark": value, "updated_at": now}])
        await conn.execute(
            update(sync_watermarks)
            .where(sync_watermarks.c.source == source, sync_watermarks.c.watermark < value)
            .values(watermark=value, updated_at=now)
        )


async def extract_since(params: ExtractParams, overlap: timedelta = WATERMARK_OVERLAP) -> datetime | None:
    """The `updated_at` lower bound of a read: pinned `since`, else mark - overlap; None = everything."""
    if params.full or params.employees is not None:
        return None
    if params.since is not None:
        return params.since
    mark = await read_watermark(params.source)
    return None if mark is None else mark - overlap


async def pin_extract_window(params: ExtractParams, overlap: timedelta = WATERMARK_OVERLAP) -> ExtractParams:
    """`params` with its window fixed now, so the planner, every shard and any replay read the same rows.

    An incremental extract gets `since` = mark - overlap; with no mark yet it becomes a full read. Every
    extract that may advance the mark gets `until` = now, the most the mark may advance to.
    `employees` extracts are returned unchanged (they ignore the mark and never move it).
    """
    if params.employees is not None or params.until is not None:
        return params
    params = replace(params, until=datetime.now(UTC))
    if params.since is not None or params.full:
        return params
    since = await extract_since(params, overlap)
    return replace(params, full=True) if since is None else params.with_since(since)


def next_watermark(params: ExtractParams, shard_outputs: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The mark to commit after all shards of `params` succeeded: their newest `updated_at`.

    None when nothing may be committed: a partial (`employees`) extract, or no row carried a time. Never
    later than the window's `until`.
    """
    if not params.advances_watermark:
        return None
    values = [datetime.fromisoformat(o["max_updated_at"]) for o in shard_outputs if o.get("max_updated_at")]
    if not values:
        return None
    # A row dated in the future (a wrong clock in the HRIS) must not move the mark past what was read:
    # every later read would then start after rows that are still to come, and read nothing.
    return max(values) if params.until is None else min(max(values), params.until)
