"""The `schedule_runs` table: what became of each slot (published, failed, missed, superseded).

Used through `shared.runtime.runner.run_async`. A slot's row is keyed by its event id, so two schedulers
recording the same slot share one row, and `published` is never overwritten by a lesser outcome.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import schedule_runs

PUBLISHED = "published"
FAILED = "failed"  # the grace ran out (or the scheduler stopped) before the broker took the event
MISSED = "missed"  # the slot was found too late (after its grace): nothing was published
SUPERSEDED = "superseded"  # a newer slot of the job became due while this one was being retried
PAUSED = "paused"  # the job was paused (`hrsync schedule pause`): not published, never caught up


@dataclass(frozen=True)
class SlotOutcome:
    """One slot's result, as recorded."""

    event_id: str
    job: str
    fire_time: dt.datetime
    status: str
    attempts: int = 0
    error: str | None = None


@retry_transient
async def record_outcome(outcome: SlotOutcome) -> None:
    """Insert or update the slot's row; a `published` row stays published."""
    now = dt.datetime.now(dt.UTC)
    published_at = now if outcome.status == PUBLISHED else None
    values = {"status": outcome.status, "attempts": outcome.attempts, "error": outcome.error,
              "updated_at": now, "published_at": published_at}
    engine = await app_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(schedule_runs.insert().values(
                event_id=outcome.event_id, job=outcome.job, fire_time=outcome.fire_time, **values))
    except IntegrityError:
        async with engine.begin() as conn:
            await conn.execute(update(schedule_runs)
                               .where(schedule_runs.c.event_id == outcome.event_id,
                                      schedule_runs.c.status != PUBLISHED)
                               .values(**values))


@retry_transient
async def slot_status(event_id: str) -> str | None:
    """The recorded status of a slot, or None when no scheduler recorded it."""
    engine = await app_engine()
    async with engine.connect() as conn:
        status: str | None = (await conn.execute(
            select(schedule_runs.c.status).where(schedule_runs.c.event_id == event_id))).scalar_one_or_none()
    return status


@retry_transient
async def last_recorded_slot(job: str) -> dt.datetime | None:
    """The newest slot recorded for `job` (any status), or None."""
    engine = await app_engine()
    async with engine.connect() as conn:
        newest: dt.datetime | None = (await conn.execute(
            select(func.max(schedule_runs.c.fire_time)).where(schedule_runs.c.job == job))).scalar_one()
    # MAX() loses the column type on some dialects: make sure the instant is aware UTC.
    if newest is not None and newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.UTC)
    return newest


@retry_transient
async def runs_of(job: str, limit: int = 50) -> list[dict[str, object]]:
    """The newest recorded slots of `job`, newest first."""
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(select(schedule_runs).where(schedule_runs.c.job == job)
                                  .order_by(schedule_runs.c.fire_time.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]
