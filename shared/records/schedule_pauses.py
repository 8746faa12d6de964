"""Paused scheduled jobs (DESIGN §3): `hrsync schedule pause JOB --reason R` / `schedule resume JOB`.

A paused job's row is in `schedule_pauses`; the pause and the resume each write their audit row
(`operator_actions`) in the same transaction. While paused, each slot of the job is recorded as `paused`
in `schedule_runs` and not published; a resume does not fire the slots that went by (the next slot is the
first one published again).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from shared.config.errors import HrsyncError
from shared.config.retry import retry_transient
from shared.database.db import app_engine
from shared.database.tables import schedule_pauses
from shared.records.operator_actions import record_operator_action

PAUSE, RESUME = "schedule_pause", "schedule_resume"  # `operator_actions.action` values


class PauseRefused(HrsyncError):
    """Pausing a paused job, or resuming one that is not paused: exit code 1."""


@retry_transient
async def pause_job(job: str, reason: str, *, actor: str, via: str) -> dict[str, Any]:
    """Pause `job` (audited in the same transaction); `PauseRefused` if it is paused already."""
    row = {"job": job, "paused_at": dt.datetime.now(dt.UTC), "paused_by": actor, "via": via, "reason": reason}
    engine = await app_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(schedule_pauses.insert().values(**row))
            await record_operator_action(PAUSE, job, {"reason": reason}, via=via, actor=actor, conn=conn)
    except IntegrityError:
        found = await paused_jobs()
        held = found.get(job)
        raise PauseRefused(f"job {job} is already paused" + (
            f" (by {held['paused_by']} since {held['paused_at'].isoformat()}: {held['reason']})" if held else "")
        ) from None
    return row


@retry_transient
async def resume_job(job: str, *, actor: str, via: str) -> dict[str, Any]:
    """Resume `job` (audited in the same transaction); the pause it ended. `PauseRefused` if not paused."""
    engine = await app_engine()
    async with engine.begin() as conn:
        found = (await conn.execute(select(schedule_pauses).where(schedule_pauses.c.job == job)
                                    .with_for_update())).first()
        if found is None:
            raise PauseRefused(f"job {job} is not paused")
        await conn.execute(delete(schedule_pauses).where(schedule_pauses.c.job == job))
        pause = dict(found._mapping)
        await record_operator_action(RESUME, job, {"paused_at": pause["paused_at"].isoformat(),
                                                   "paused_by": pause["paused_by"], "pause_reason": pause["reason"]},
                                     via=via, actor=actor, conn=conn)
    return pause


@retry_transient
async def paused_jobs() -> dict[str, dict[str, Any]]:
    """job → its pause (paused_at, paused_by, via, reason), for every paused job."""
    engine = await app_engine()
    async with engine.connect() as conn:
        return {row.job: dict(row._mapping) for row in await conn.execute(select(schedule_pauses))}


async def pause_of(job: str) -> dict[str, Any] | None:
    """The pause of `job`, or None when it is not paused."""
    return (await paused_jobs()).get(job)
