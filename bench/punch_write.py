"""The punch import's write path on MariaDB: the portable upsert of row dicts against the driver-level path.

One command:   python bench/punch_write.py [--rows 200000] [--employees 5000] [--runs 3] [--keep]

A fresh MariaDB database holding `punches` and `unmatched_punches`; BioStar-like log rows (a month of taps,
one in ten from a user who is no employee) made in memory. Each run writes all rows twice through each path
(first into empty tables, then again: every row a duplicate, skipped), the paths taking turns, tables
emptied before each path's first write. Timed: from the log rows to the last commit, this process's CPU
(`time.process_time`, the worker's cost) and wall time; printed: medians over the runs, and new/old ratios.
"old" is the write as it was: dicts with aware datetimes through `upsert` (SQLAlchemy binds each row);
"new" is `pipelines.merge.days._insert_ignore`, tuples of ready values through `exec_driver_sql`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402 - after the path setup above
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from pipelines.merge.days import (  # noqa: E402
    _PUNCH_COLUMNS,
    _UNMATCHED_COLUMNS,
    WRITE_BATCH,
    _insert_ignore,
)
from shared.database.db import make_engine, upsert  # noqa: E402
from shared.database.tables import metadata, punches, unmatched_punches  # noqa: E402

SERVER = "mysql+aiomysql://root@127.0.0.1:3306"
EXECUTION = "00000000-0000-0000-0000-0000000be0c4"
LogRow = tuple[str, int, int, int, int | None]


def log_rows(count: int, employees: int, seed: int = 26) -> tuple[list[LogRow], dict[str, str]]:
    """`count` distinct BioStar log rows of May 2026 and the user id → employee_no of the known users."""
    rng = random.Random(seed)
    start = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp())
    seen: set[tuple[str, int, int]] = set()
    rows: list[LogRow] = []
    while len(rows) < count:
        user = str(rng.randrange(employees * 11 // 10))  # ids past `employees` are no employee's
        key = (user, rng.randrange(1, 21), start + rng.randrange(31 * 86400))
        if key not in seen:
            seen.add(key)
            rows.append((key[0], key[1], key[2], 4867, rng.choice((None, 1, 2))))
    return rows, {str(n): f"E{n:06d}" for n in range(employees)}


async def write_old(engine: AsyncEngine, rows: list[LogRow], users: dict[str, str]) -> int:
    """The write as it was: one dict of aware datetimes a row, through the portable upsert."""
    received_at = datetime.now(UTC)
    matched: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    for user, device, devdt, evt, tna in rows:
        at = datetime.fromtimestamp(devdt, UTC)
        employee = users.get(user)
        if employee is None:
            unmatched.append({"biostar_user_id": user, "device_id": device, "punched_at": at, "event_code": evt,
                              "first_seen_at": received_at, "execution_id": EXECUTION})
        else:
            matched.append({"employee_no": employee, "device_id": device, "punched_at": at, "event_code": evt,
                            "tna_key": tna, "received_at": received_at, "execution_id": EXECUTION})
    inserted = 0
    for table, dicts in ((punches, matched), (unmatched_punches, unmatched)):
        for at_row in range(0, len(dicts), WRITE_BATCH):
            async with engine.begin() as conn:
                result = await conn.execute(upsert(conn, table, []), dicts[at_row:at_row + WRITE_BATCH])
            inserted += max(result.rowcount, 0)
    return inserted


async def write_new(engine: AsyncEngine, rows: list[LogRow], users: dict[str, str]) -> int:
    """The write as `import_punches` does it now: tuples, `_insert_ignore`."""
    received_at = datetime.now(UTC)
    matched: list[tuple[Any, ...]] = []
    unmatched: list[tuple[Any, ...]] = []
    for user, device, devdt, evt, tna in rows:
        employee = users.get(user)
        if employee is None:
            unmatched.append((user, device, devdt, evt))
        else:
            matched.append((employee, device, devdt, evt, tna))
    return (await _insert_ignore(engine, punches, _PUNCH_COLUMNS, matched, received_at, EXECUTION)
            + await _insert_ignore(engine, unmatched_punches, _UNMATCHED_COLUMNS, unmatched, received_at,
                                   EXECUTION))


async def timed(write: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    inserted = await write()
    return time.process_time() - cpu, time.perf_counter() - wall, inserted


async def main(args: argparse.Namespace) -> None:
    name = f"hrsync_bench_punchwrite_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{SERVER}/")
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine = make_engine(f"{SERVER}/{name}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all, tables=[punches, unmatched_punches])
        rows, users = log_rows(args.rows, args.employees)
        matched = sum(1 for row in rows if row[0] in users)
        print(f"{len(rows)} log rows: {matched} punches, {len(rows) - matched} unmatched; database {name}")
        results: dict[str, list[tuple[float, float, float, float]]] = {"old": [], "new": []}
        for run in range(args.runs):
            for label, write in (("old", write_old), ("new", write_new)) if run % 2 == 0 else (
                    ("new", write_new), ("old", write_old)):
                async with engine.begin() as conn:
                    await conn.execute(text("TRUNCATE TABLE punches"))
                    await conn.execute(text("TRUNCATE TABLE unmatched_punches"))
                cpu1, wall1, first = await timed(lambda w=write: w(engine, rows, users))  # type: ignore[misc]
                cpu2, wall2, again = await timed(lambda w=write: w(engine, rows, users))  # type: ignore[misc]
                if (first, again) != (len(rows), 0):
                    raise SystemExit(f"{label}: inserted {first} then {again}, expected {len(rows)} then 0")
                results[label].append((cpu1, wall1, cpu2, wall2))
                print(f"run {run + 1} {label}: new rows cpu {cpu1:.2f} s wall {wall1:.2f} s; "
                      f"duplicates cpu {cpu2:.2f} s wall {wall2:.2f} s")
        medians = {label: [statistics.median(r[i] for r in runs) for i in range(4)]
                   for label, runs in results.items()}
        for label, (cpu1, wall1, cpu2, wall2) in medians.items():
            print(f"median {label}: new rows cpu {cpu1:.2f} s wall {wall1:.2f} s "
                  f"({cpu1 / len(rows) * 1e6:.1f} µs cpu a row); duplicates cpu {cpu2:.2f} s wall {wall2:.2f} s")
        old, new = medians["old"], medians["new"]
        print(f"new/old: new rows cpu {new[0] / old[0]:.2f} wall {new[1] / old[1]:.2f}; "
              f"duplicates cpu {new[2] / old[2]:.2f} wall {new[3] / old[3]:.2f}")
    finally:
        await engine.dispose()
        if not args.keep:
            async with admin.begin() as conn:
                await conn.execute(text(f"DROP DATABASE `{name}`"))
        await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--employees", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    asyncio.run(main(parser.parse_args()))
