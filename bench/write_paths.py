"""What the write-path benchmarks (`punch_write.py`, `day_write.py`) share: a fresh MariaDB database holding the
tables they write, and an "old" and a "new" write timed in turns.

Each run writes twice through each path (the tables emptied before the path's first write), the paths taking
turns (old first in odd runs, new first in even ones). Timed: this process's CPU (`time.process_time`, the
worker's cost) and wall time of each write; printed: every run, the medians over the runs, and new/old ratios.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.database.db import make_engine
from shared.database.tables import metadata

SERVER = "mysql+aiomysql://root@127.0.0.1:3306"
# A write of one phase (0: into empty tables, 1: the same rows again); returns what its check is given.
Write = Callable[[int], Awaitable[int]]
# After each write, untimed: (path, phase, what the write returned); raises if the path wrote the wrong thing.
Check = Callable[[str, int, int], Awaitable[None]]


@asynccontextmanager
async def fresh_database(prefix: str, tables: Sequence[Table], keep: bool) -> AsyncIterator[AsyncEngine]:
    """An engine on a new MariaDB database `prefix_<random>` holding `tables`; dropped afterwards unless `keep`."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{SERVER}/")
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine = make_engine(f"{SERVER}/{name}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all, tables=list(tables))
        print(f"database {name}")
        yield engine
    finally:
        await engine.dispose()
        if not keep:
            async with admin.begin() as conn:
                await conn.execute(text(f"DROP DATABASE `{name}`"))
        await admin.dispose()


async def timed(write: Write, phase: int) -> tuple[float, float, int]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = await write(phase)
    return time.process_time() - cpu, time.perf_counter() - wall, result


async def compare(engine: AsyncEngine, tables: Sequence[Table], old: Write, new: Write, *, runs: int, rows: int,
                  phases: tuple[str, str], check: Check) -> None:
    """Time `old` and `new`, each writing phase 0 then phase 1 (named `phases`) after `tables` were emptied,
    `check` after each write."""
    results: dict[str, list[tuple[float, float, float, float]]] = {"old": [], "new": []}
    first, second = phases
    for run in range(runs):
        for label, write in (("old", old), ("new", new)) if run % 2 == 0 else (("new", new), ("old", old)):
            async with engine.begin() as conn:
                for table in tables:
                    await conn.execute(text(f"TRUNCATE TABLE {table.name}"))
            cpu1, wall1, result = await timed(write, 0)
            await check(label, 0, result)
            cpu2, wall2, result = await timed(write, 1)
            await check(label, 1, result)
            results[label].append((cpu1, wall1, cpu2, wall2))
            print(f"run {run + 1} {label}: {first} cpu {cpu1:.2f} s wall {wall1:.2f} s; "
                  f"{second} cpu {cpu2:.2f} s wall {wall2:.2f} s")
    medians = {label: [statistics.median(r[i] for r in timings) for i in range(4)]
               for label, timings in results.items()}
    for label, (cpu1, wall1, cpu2, wall2) in medians.items():
        print(f"median {label}: {first} cpu {cpu1:.2f} s wall {wall1:.2f} s ({cpu1 / rows * 1e6:.1f} µs cpu a row); "
              f"{second} cpu {cpu2:.2f} s wall {wall2:.2f} s")
    o, n = medians["old"], medians["new"]
    print(f"new/old: {first} cpu {n[0] / o[0]:.2f} wall {n[1] / o[1]:.2f}; "
          f"{second} cpu {n[2] / o[2]:.2f} wall {n[3] / o[3]:.2f}")
