"""Reading BioStar 2 event logs (DESIGN §6 "BioStar 2"): monthly `t_lgYYYYMM` tables, punches only.

BioStar writes one table per UTC month; `DEVDT` is UNIX seconds (UTC) and `EVT` an event code whose
main code (`EVT >> 8`) says what happened. A punch is an authentication success: 0x10 verify, 0x13
identify, 0x16 dual authentication, and optionally the duress variants 0x12/0x15. Failures (0x11, 0x14,
0x18, 0x19) and everything else never count. The filter runs in SQL, as `EVT` ranges with bound
parameters (`main << 8 <= EVT < (main + 1) << 8`), so the database returns punches only.

`create_demo_biostar` writes such tables (SQLite or MariaDB) for the demo, tests and benchmarks; hrsync
itself only ever reads BioStar.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    insert,
    inspect,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config.deadlines import source_call
from shared.database.db import engine_for

VERIFY_SUCCESS = 0x10
IDENTIFY_SUCCESS = 0x13
DUAL_AUTH_SUCCESS = 0x16
DURESS_VERIFY_SUCCESS = 0x12
DURESS_IDENTIFY_SUCCESS = 0x15
AUTH_SUCCESS_MAIN_CODES: tuple[int, ...] = (VERIFY_SUCCESS, IDENTIFY_SUCCESS, DUAL_AUTH_SUCCESS)
DURESS_MAIN_CODES: tuple[int, ...] = (DURESS_VERIFY_SUCCESS, DURESS_IDENTIFY_SUCCESS)

# Rows fetched per round trip when streaming a window; also the unit in which callers write them on.
READ_PARTITION = 5000
BIOSTAR = "BioStar"  # the source's name in a SourceTimeout

# (USRID as text, DEVUID, DEVDT as UNIX seconds, EVT, TNAKEY): plain tuples, a million of them is a month.
LogRow = tuple[str, int, int, int, int | None]


@dataclass(frozen=True)
class BiostarLog:
    """One BioStar event log entry, as the demo writes it (`at` is aware; stored as UNIX seconds)."""

    user_id: str
    device_id: int
    at: datetime
    event_code: int
    tna_key: int | None = None


def punch_main_codes(include_duress: bool = False) -> tuple[int, ...]:
    """The main codes (`EVT >> 8`) that are punches, sorted; duress ones only with `include_duress`."""
    codes = AUTH_SUCCESS_MAIN_CODES + (DURESS_MAIN_CODES if include_duress else ())
    return tuple(sorted(codes))


def is_punch_event(event_code: int, include_duress: bool = False) -> bool:
    """Whether a BioStar event code is a punch (an authentication success), by its main code."""
    return event_code >> 8 in punch_main_codes(include_duress)


def event_code_ranges(include_duress: bool = False) -> list[tuple[int, int]]:
    """The half-open `EVT` ranges `[lo, hi)` holding the punch codes; adjacent main codes merge."""
    ranges: list[tuple[int, int]] = []
    for main in punch_main_codes(include_duress):
        lo, hi = main << 8, (main + 1) << 8
        if ranges and ranges[-1][1] == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


def log_table_name(month: date) -> str:
    """`t_lgYYYYMM` of the UTC month holding `month`."""
    return f"t_lg{month.year:04d}{month.month:02d}"


def log_table_names(start: datetime, end: datetime) -> list[str]:
    """The monthly tables covering the UTC instants `start`..`end` (both aware), in order."""
    first, last = start.astimezone(UTC).date().replace(day=1), end.astimezone(UTC).date().replace(day=1)
    names: list[str] = []
    month = first
    while month <= last:
        names.append(log_table_name(month))
        month = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
    return names


def log_table(name: str, metadata: MetaData | None = None) -> Table:
    """The columns of a `t_lgYYYYMM` table that hrsync reads (BioStar's tables have more)."""
    return Table(
        name, metadata or MetaData(),
        Column("EVTLGUID", Integer, primary_key=True, autoincrement=True),
        Column("DEVDT", Integer, nullable=False, index=True),
        Column("DEVUID", BigInteger, nullable=False),
        Column("USRID", String(32)),
        Column("EVT", Integer, nullable=False),
        Column("TNAKEY", Integer),
    )


_READ_TABLES = MetaData()


@functools.cache
def _read_table(name: str) -> Table:
    """The one `Table` of month `name` that reads use. A statement over a new `Table` object has a new cache
    key: each import window compiled afresh and stayed in the engine's compiled cache (up to its 500-750
    entries, a Table, its columns and the compiled SQL each), a worker's memory growing for hundreds of
    windows (docs/benchmarks.md, Soak). One per month name, so a handful a year."""
    return log_table(name, _READ_TABLES)


def _window_select(
    table: Table, start: int, end: int, codes: Sequence[tuple[int, int]], devices: Sequence[int] | None,
    users: Sequence[str] | None = None,
) -> Select[Any]:
    evt = table.c.EVT
    conditions: list[ColumnElement[bool]] = [
        table.c.DEVDT.between(start, end),
        or_(*(and_(evt >= lo, evt < hi) for lo, hi in codes)),
    ]
    if devices is not None:
        conditions.append(table.c.DEVUID.in_(devices))
    if users is not None:
        conditions.append(table.c.USRID.in_(users))
    return select(table.c.USRID, table.c.DEVUID, table.c.DEVDT, table.c.EVT, table.c.TNAKEY).where(*conditions)


def _existing(sync_conn: Connection, names: list[str]) -> list[str]:
    inspector = inspect(sync_conn)
    return [name for name in names if inspector.has_table(name)]


async def stream_punch_logs(
    engine: AsyncEngine,
    start: datetime,
    end: datetime,
    *,
    include_duress: bool = False,
    devices: Sequence[int] | None = None,
    users: Sequence[str] | None = None,
    partition: int = READ_PARTITION,
) -> AsyncIterator[list[LogRow]]:
    """The punches logged at `start`..`end` (aware, both ends included), in partitions of rows.

    One query (a UNION ALL over the monthly tables the span touches); months without a table are skipped,
    since BioStar creates a month's table only when the month's first event arrives. `devices=None` reads
    every device, an empty list none; `users` (BioStar user ids) likewise. Rows come in no particular
    order. Each round trip waits at most HRSYNC_SOURCE_TIMEOUT (`SourceTimeout`; the connection is then
    invalidated, never reused). A read that ends before its last row (an error, or a consumer that stops
    early) invalidates its connection too, instead of draining the rest from a server that may be silent.
    """
    if (devices is not None and not devices) or (users is not None and not users):
        return
    lo, hi = int(start.timestamp()), int(end.timestamp())  # DEVDT has whole seconds: floor both ends
    codes = event_code_ranges(include_duress)
    async with source_call(BIOSTAR):
        conn = await engine.connect().start()
    unfinished = True  # until every row is read; then closing is the pool's rollback, one round trip
    try:
        async with source_call(BIOSTAR):
            names = await conn.run_sync(_existing, log_table_names(start, end))
        if not names:
            unfinished = False
            return
        selects = [_window_select(_read_table(name), lo, hi, codes, devices, users) for name in names]
        query = selects[0] if len(selects) == 1 else union_all(*selects)
        async with source_call(BIOSTAR):
            result = await conn.stream(query.execution_options(yield_per=partition))
        partitions = result.partitions(partition)
        while True:
            async with source_call(BIOSTAR):
                rows = await anext(partitions, None)
            if rows is None:
                unfinished = False
                return
            yield [
                (str(user) if user is not None else "", int(device), int(devdt), int(evt),
                 None if tna is None else int(tna))
                for user, device, devdt, evt, tna in rows
            ]
    finally:
        if unfinished:  # timed out, failed, or its consumer stopped early: closing would drain the unread
            await conn.invalidate()  # rows or roll back through a server that may not answer; drop the socket
        await conn.close()


async def create_demo_biostar(url: str, logs: Iterable[BiostarLog]) -> int:
    """Create the monthly tables `logs` need at `url` (if missing) and append `logs`; returns the count.

    For the demo, tests and benchmarks: hrsync never writes to a real BioStar database. Run it through
    `run_async` (the engine comes from the runner's registry).
    """
    by_table: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        at = log.at.astimezone(UTC)
        by_table.setdefault(log_table_name(at.date()), []).append(
            {"DEVDT": int(at.timestamp()), "DEVUID": log.device_id, "USRID": log.user_id,
             "EVT": log.event_code, "TNAKEY": log.tna_key}
        )
    engine = await engine_for(url)
    metadata = MetaData()
    tables = {name: log_table(name, metadata) for name in by_table}
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        for name, rows in by_table.items():
            for offset in range(0, len(rows), READ_PARTITION):
                await conn.execute(insert(tables[name]), rows[offset:offset + READ_PARTITION])
    return sum(len(rows) for rows in by_table.values())
