"""The merge's attendance-day write on MariaDB: the portable upsert of row dicts against the driver-level path.

One command:   python bench/day_write.py [--employees 5000] [--days 30] [--shard-employees 250] [--runs 3] [--keep]

A fresh MariaDB database holding `attendance_days`; computed days (`DayResult`s as the rules return them: a
month of employees on a day shift, mostly present, some with one punch, absent, on leave, weekends off) made
in memory and cut into shards of `--shard-employees` employees, each written in one transaction as
`merge_attendance` does. Each run writes all days twice through each path (first into the empty table, then
again with a later `computed_at`: every row updated), as `bench/write_paths.py` times them: from the computed
days to the last commit, CPU and wall; medians over the runs, and new/old ratios.
"old" is the write as it was: `_day_rows` dicts through `_upsert_if_newer` (SQLAlchemy binds each row);
"new" is `_day_rows` with the driver's tuples and `_upsert_days` (`exec_driver_sql`), as on MariaDB now.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402 - after the path setup above
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench.write_paths import compare, fresh_database  # noqa: E402
from pipelines.attendance.rules import DayResult  # noqa: E402
from pipelines.merge.days import WRITE_BATCH, _day_rows, _upsert_days, _upsert_if_newer  # noqa: E402
from shared.database.tables import attendance_days  # noqa: E402

EXECUTION = "00000000-0000-0000-0000-0000000be0d4"
FIRST_DAY = date(2026, 6, 1)
_MINUTE = timedelta(minutes=1)
COMPUTED_AT = datetime(2026, 7, 1, 2, 0, 0, 123456, UTC)  # phase 1 writes a minute later


def computed_days(employees: int, days: int, seed: int = 26) -> list[DayResult]:
    """The `days` days from 2026-06-01 of `employees` employees, with seeded figures, in employee then date order."""
    rng = random.Random(seed)
    result: list[DayResult] = []
    for n in range(employees):
        no = f"E{n:06d}"
        for offset in range(days):
            work_date = FIRST_DAY + timedelta(days=offset)
            if work_date.weekday() >= 5:
                result.append(DayResult(no, work_date, "off", None, None, 0, "off", 0, 0, 0))
                continue
            start = datetime.combine(work_date, datetime.min.time(), UTC) + timedelta(hours=9)
            first_in = start + timedelta(seconds=rng.randrange(-1800, 1800))
            end = start + timedelta(hours=8)
            last_out = end + timedelta(seconds=rng.randrange(-1800, 3600))
            roll = rng.random()
            if roll < 0.80:
                late, overtime = max(0, (first_in - start) // _MINUTE), max(0, (last_out - end) // _MINUTE)
                result.append(DayResult(no, work_date, "day", first_in, last_out, (last_out - first_in) // _MINUTE,
                                        "present", late, 0, rng.randrange(2, 5), overtime))
            elif roll < 0.88:
                result.append(DayResult(no, work_date, "day", first_in, None, 0, "missing_punch", 0, 0, 1))
            elif roll < 0.94:
                result.append(DayResult(no, work_date, "day", None, None, 0, "absent", 0, 0, 0))
            else:
                result.append(DayResult(no, work_date, "day", None, None, 0, "on_leave", 0, 0, 0, 0, "vacation"))
    return result


def shards(computed: list[DayResult], days: int, shard_employees: int) -> list[list[DayResult]]:
    step = days * shard_employees
    return [computed[at:at + step] for at in range(0, len(computed), step)]


async def write_old(engine: AsyncEngine, parts: list[list[DayResult]], computed_at: datetime) -> None:
    """The write as it was: one dict of aware datetimes a row, bound by SQLAlchemy through the upsert."""
    for part in parts:
        rows, _ = _day_rows(part, EXECUTION, computed_at, False)
        async with engine.begin() as conn:
            statement = _upsert_if_newer(conn)
            for at in range(0, len(rows), WRITE_BATCH):
                await conn.execute(statement, rows[at:at + WRITE_BATCH])


async def write_new(engine: AsyncEngine, parts: list[list[DayResult]], computed_at: datetime) -> None:
    """The write as `merge_attendance` does it now on MariaDB: dicts and driver tuples, `_upsert_days`."""
    for part in parts:
        rows, ready = _day_rows(part, EXECUTION, computed_at, True)
        async with engine.begin() as conn:
            await _upsert_days(conn, rows, ready)


async def rows_of(engine: AsyncEngine, computed_at: datetime) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(attendance_days)
                                       .where(attendance_days.c.computed_at == computed_at))).scalar_one())


async def main(args: argparse.Namespace) -> None:
    computed = computed_days(args.employees, args.days)
    parts = shards(computed, args.days, args.shard_employees)
    print(f"{len(computed)} days in {len(parts)} shards")
    stamps = (COMPUTED_AT, COMPUTED_AT + timedelta(minutes=1))

    async with fresh_database("hrsync_bench_daywrite", [attendance_days], args.keep) as engine:
        async def check(label: str, phase: int, _: int) -> None:  # every row written by the phase's run
            written = await rows_of(engine, stamps[phase])
            if written != len(computed):
                raise SystemExit(f"{label}: {written} rows of phase {phase}, expected {len(computed)}")

        async def old(phase: int) -> int:
            await write_old(engine, parts, stamps[phase])
            return 0

        async def new(phase: int) -> int:
            await write_new(engine, parts, stamps[phase])
            return 0

        await compare(engine, [attendance_days], old, new, runs=args.runs, rows=len(computed),
                      phases=("new rows", "over existing rows"), check=check)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--shard-employees", type=int, default=250, help="employees a shard (transaction)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    asyncio.run(main(parser.parse_args()))
