"""The punch import's write path on MariaDB: the portable upsert of row dicts against the driver-level path.

One command:   python bench/punch_write.py [--rows 200000] [--employees 5000] [--runs 3] [--keep]

A fresh MariaDB database holding `punches` and `unmatched_punches`; BioStar-like log rows (a month of taps,
one in ten from a user who is no employee) made in memory. Each run writes all rows twice through each path
(first into empty tables, then again: every row a duplicate, skipped), as `bench/write_paths.py` times them:
from the log rows to the last commit, CPU and wall; medians over the runs, and new/old ratios.
"old" is the write as it was: dicts with aware datetimes through `upsert` (SQLAlchemy binds each row);
"new" is `pipelines.merge.days._insert_ignore`, tuples of ready values through `exec_driver_sql`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402 - after the path setup above

from bench.write_paths import compare, fresh_database  # noqa: E402
from pipelines.merge.days import (  # noqa: E402
    _PUNCH_COLUMNS,
    _UNMATCHED_COLUMNS,
    WRITE_BATCH,
    _insert_ignore,
)
from shared.database.db import upsert  # noqa: E402
from shared.database.tables import punches, unmatched_punches  # noqa: E402

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


async def main(args: argparse.Namespace) -> None:
    rows, users = log_rows(args.rows, args.employees)
    matched = sum(1 for row in rows if row[0] in users)
    print(f"{len(rows)} log rows: {matched} punches, {len(rows) - matched} unmatched")

    async def check(label: str, phase: int, inserted: int) -> None:
        if inserted != (len(rows), 0)[phase]:
            raise SystemExit(f"{label}: inserted {inserted} in phase {phase}, expected {len(rows)} then 0")

    tables = (punches, unmatched_punches)
    async with fresh_database("hrsync_bench_punchwrite", tables, args.keep) as engine:
        await compare(engine, tables, lambda _: write_old(engine, rows, users),
                      lambda _: write_new(engine, rows, users), runs=args.runs, rows=len(rows),
                      phases=("new rows", "duplicates"), check=check)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--employees", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    asyncio.run(main(parser.parse_args()))
