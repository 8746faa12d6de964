"""The punch import's read of BioStar on MariaDB: SQLAlchemy's streamed rows against the driver's own cursor.

One command:   python bench/punch_read.py [--rows 250000] [--runs 3] [--keep]

A fresh MariaDB database holding a BioStar month (`t_lg202605`, made by `create_demo_biostar`): `--rows` logs
from 5000 users on 20 devices, one in ten a failed authentication (never a punch). Each run reads the month
twice through each path, window by window (31 windows of 24 h, as `import_punches` reads them), as
`bench/write_paths.py` times them: CPU and wall of the 31 reads; medians over the runs, and new/old ratios.
"old" is `stream_punch_logs` (SQLAlchemy's streamed result: a `Row` a log, each value converted again); "new"
is `read_driver`, the same query compiled once with the driver's placeholders and read through the aiomysql
connection's server-side cursor (`SSCursor.fetchmany`), its tuples yielded as they come (a `USRID` that is not
text rebuilt). Before the timing both paths read the month once and must yield the same rows.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiomysql  # noqa: E402 - after the path setup above
from sqlalchemy import union_all  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench.write_paths import compare, fresh_database  # noqa: E402
from pipelines.merge.biostar import (  # noqa: E402
    BIOSTAR,
    READ_PARTITION,
    BiostarLog,
    LogRow,
    _existing,
    _read_table,
    _window_select,
    create_demo_biostar,
    event_code_ranges,
    log_table_names,
    stream_punch_logs,
)
from shared.config.deadlines import source_call  # noqa: E402
from shared.runtime.runner import run_async, shutdown  # noqa: E402

MONTH = datetime(2026, 5, 1, tzinfo=UTC)
WINDOWS = 31
VERIFY_SUCCESS, IDENTIFY_SUCCESS, VERIFY_FAIL = 0x1000, 0x1300, 0x1100


def biostar_logs(count: int, seed: int = 26) -> list[BiostarLog]:
    """`count` seeded logs of May 2026; one in ten a failure."""
    rng = random.Random(seed)
    return [BiostarLog(str(rng.randrange(5000)), rng.randrange(1, 21),
                       MONTH + timedelta(seconds=rng.randrange(WINDOWS * 86400)),
                       VERIFY_FAIL if rng.random() < 0.1 else rng.choice((VERIFY_SUCCESS, IDENTIFY_SUCCESS)),
                       rng.choice((None, 1, 2)))
            for _ in range(count)]


async def read_driver(engine: AsyncEngine, start: datetime, end: datetime) -> AsyncIterator[list[LogRow]]:
    """`stream_punch_logs`'s query for `start`..`end` (every device and user, no duress) through aiomysql's
    server-side cursor, READ_PARTITION rows a round trip, each inside `source_call`. For this benchmark only:
    no invalidation on a timeout, and the cursor is read to its end."""
    async with engine.connect() as conn:
        names = await conn.run_sync(_existing, log_table_names(start, end))
        lo, hi, codes = int(start.timestamp()), int(end.timestamp()), event_code_ranges()
        query = union_all(*(_window_select(_read_table(name), lo, hi, codes, None) for name in names))
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        driver: Any = (await conn.get_raw_connection()).driver_connection
        cursor = await driver.cursor(aiomysql.SSCursor)
        async with source_call(BIOSTAR):
            await cursor.execute(str(compiled), tuple(compiled.params[n] for n in compiled.positiontup or ()))
        while True:
            async with source_call(BIOSTAR):
                rows = await cursor.fetchmany(READ_PARTITION)
            if not rows:
                break
            yield [row if type(row[0]) is str else ("" if row[0] is None else str(row[0]), *row[1:])
                   for row in rows]
        await cursor.close()


async def read_month(engine: AsyncEngine, driver: bool, keep: list[LogRow] | None = None) -> int:
    """Read the month one 24 h window after another (`read_driver` if `driver`, else `stream_punch_logs`);
    returns the rows read."""
    read = 0
    for day in range(WINDOWS):
        start = MONTH + timedelta(days=day)
        end = start + timedelta(days=1, seconds=-1)
        async for rows in read_driver(engine, start, end) if driver else stream_punch_logs(engine, start, end):
            read += len(rows)
            if keep is not None:
                keep.extend(rows)
    return read


async def main(args: argparse.Namespace) -> None:
    logs = biostar_logs(args.rows)
    punches = sum(1 for log in logs if log.event_code != VERIFY_FAIL)
    async with fresh_database("hrsync_bench_punchread", [], args.keep) as engine:
        await create_demo_biostar(engine.url.render_as_string(hide_password=False), logs)
        print(f"{len(logs)} logs, {punches} punches, {WINDOWS} windows of 24 h")
        old_rows: list[LogRow] = []
        new_rows: list[LogRow] = []
        await read_month(engine, False, old_rows)
        await read_month(engine, True, new_rows)
        if len(old_rows) != punches or sorted(old_rows) != sorted(new_rows):
            raise SystemExit(f"the paths differ: {len(old_rows)} and {len(new_rows)} rows, {punches} punches")

        async def check(label: str, phase: int, read: int) -> None:
            if read != punches:
                raise SystemExit(f"{label}: read {read} rows in phase {phase}, expected {punches}")

        await compare(engine, [], lambda _: read_month(engine, False), lambda _: read_month(engine, True),
                      runs=args.runs, rows=punches, phases=("read", "read again"), check=check)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    try:
        run_async(main(parser.parse_args()))  # create_demo_biostar takes its engine from the runner's registry
    finally:
        shutdown()
