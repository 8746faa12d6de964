"""The HRIS extract stage: plan key-range shards, then extract each shard into `employees`.

A workflow runs it as: `pin_extract_window(params)` (fixes the `updated_at` window once, kept in the
execution's params) → `plan_extract_shards(...)` → one `extract_employees(params, shard, execution_id)`
per shard, in parallel → once all succeeded, `commit_watermark(params.source, next_watermark(params,
outputs))`. Every shard is idempotent: it writes only rows whose values changed, so running it twice
(redelivery, replay) leaves the same rows.

Paging: each shard is **one ordered keyset read** (`ORDER BY employee_no` within `lo < key <= hi`)
consumed with `fetchmany` in `BATCH_SIZE` batches (`pipelines.extract.source.read_in_batches`), each batch
upserted and committed before the next.
No OFFSET (it rescans, and SQLite lacks OFFSET/FETCH) and no LIMIT/TOP (not portable): the shard's size
is bounded by the planner, and ODBC drivers stream an open cursor (psqlodbc with ``UseDeclareFetch=1``,
SQL Server's default forward-only cursor). When the read fails transiently half-way, the retry restarts
the query *after the last committed key* (keyset resume), so no batch is read or written twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select

from pipelines.extract.params import ALL_KEYS, ExtractParams, Key, KeyRange, ReadTally, cut_ranges
from pipelines.extract.query import Window, build_select, split_by_employees
from pipelines.extract.rows import COLUMNS, EmployeeRow, RowRejected, normalise_employee
from pipelines.extract.source import HrisSource, HrisSourceError, create_demo_hris, hris_source, read_in_batches
from pipelines.extract.watermark import (
    WATERMARK_OVERLAP,
    commit_watermark,
    extract_since,
    next_watermark,
    pin_extract_window,
    read_watermark,
)
from pipelines.stage import StageResult
from shared.config.retry import transient_retrying
from shared.config.settings import get_settings
from shared.database.db import app_engine, upsert
from shared.database.tables import employees

__all__ = [
    "WATERMARK_OVERLAP", "ExtractParams", "HrisSource", "HrisSourceError", "KeyRange", "commit_watermark",
    "create_demo_hris", "employee_parts", "extract_employees", "list_changed_keys", "next_watermark",
    "pin_extract_window", "plan_extract_shards", "read_watermark",
]

KEY_BATCH_SIZE = 5000  # keys per fetchmany when planning

_UPDATED = [c for c in COLUMNS if c != "employee_no"] + ["synced_at", "execution_id"]
log = structlog.get_logger(__name__)


async def list_changed_keys(
    params: ExtractParams, key_range: KeyRange = ALL_KEYS, *, source: HrisSource | None = None
) -> list[Key]:
    """The `employee_no` keys `params` selects in `key_range`, in the HRIS's order (NULL keys left out).

    A list of more employees than one statement takes is read in parts (`split_by_employees`): the keys
    are then in the HRIS's order within each part only (`plan_extract_shards` cuts one part at a time).
    """
    if params.employees == []:
        return []
    source = source or hris_source()
    keys: list[Key] = []
    for part in split_by_employees(Window(await extract_since(params), key_range, params.employees)):
        sql, args = build_select(get_settings().hris_query, ("employee_no",), part)
        found: list[Key] = []
        async for attempt in transient_retrying():
            with attempt:
                found = []
                async with aclosing(source.fetch_batches(sql, args, KEY_BATCH_SIZE)) as batches:
                    async for batch in batches:
                        found.extend(row[0] for row in batch if row[0] is not None)
        keys.extend(found)
    return keys


async def plan_extract_shards(params: ExtractParams, max_shards: int, target_shard_size: int) -> list[KeyRange]:
    """Contiguous key ranges (at most `max_shards`, ~`target_shard_size` changed rows each) covering all keys.

    Reads only the keys of the changed rows. The ranges are cut at keys the HRIS itself ordered, so each
    shard's `lo < key <= hi` uses the same collation as the plan; the outer ranges are open. A list of
    employees longer than one statement takes is not cut (its keys come from several statements, each in
    its own order): one open range, read in parts; `employee_parts` gives the parts to plan one by one.
    """
    if len(employee_parts(params)) > 1:
        return [ALL_KEYS]
    return cut_ranges(await list_changed_keys(params), max_shards, target_shard_size)


def employee_parts(params: ExtractParams) -> list[ExtractParams]:
    """`params` as inputs of at most `EMPLOYEES_PER_STATEMENT` employees each (itself when no list, or a
    short one): the extract plans each part's shards apart, so every read is one statement."""
    return [replace(params, employees=None if w.employees is None else list(w.employees))
            for w in split_by_employees(Window(employees=params.employees))]


async def extract_employees(
    params: ExtractParams, key_range: KeyRange, execution_id: str, *, source: HrisSource | None = None
) -> StageResult:
    """Upsert the employees of one shard; bad rows are reported in `output["rejected"]`, never stored.

    Status changes are applied as given (inactive, terminated with its date); rows are never deleted.
    Only rows whose values changed are written, with `synced_at` and `execution_id` of this run.
    `output["max_updated_at"]` (ISO, or None) feeds `next_watermark`; this function never moves the mark.
    """
    tally = ReadTally()
    since = await extract_since(params)
    if params.employees == []:
        return StageResult(output={"shard": key_range.to_json(), **tally.output(params, since)})
    source = source or hris_source()
    query = get_settings().hris_query
    window = Window(since, key_range, params.employees, with_null_keys=key_range.lo is None)
    synced_at = datetime.now(UTC)

    async def store(batch: Sequence[tuple[Any, ...]]) -> None:
        await _store_batch(batch, tally, synced_at, execution_id)

    await read_in_batches(source, query, COLUMNS, window, store)
    if tally.rejected:
        log.warning("hris.rows_rejected", count=len(tally.rejected), shard=str(key_range),
                    first=tally.rejected[:5])
    return StageResult(rows_in=tally.read, rows_out=tally.inserted + tally.updated,
                       output={"shard": key_range.to_json(), **tally.output(params, since)})


async def _store_batch(
    batch: Sequence[tuple[Any, ...]], tally: ReadTally, synced_at: datetime, execution_id: str
) -> None:
    """Validate a batch and upsert its changed rows in one transaction; count only once committed."""
    valid: dict[str, EmployeeRow] = {}
    rejected: list[RowRejected] = []
    for values in batch:
        try:
            row = normalise_employee(dict(zip(COLUMNS, values, strict=True)))
        except RowRejected as exc:
            rejected.append(exc)
            continue
        valid[row.employee_no] = row  # a key repeated in the HRIS: the later row wins
    engine = await app_engine()
    async with engine.begin() as conn:
        stored = {r.employee_no: dict(r._mapping) for r in await conn.execute(
            select(*(employees.c[c] for c in COLUMNS)).where(employees.c.employee_no.in_(list(valid)))
        )} if valid else {}
        changed = [row for key, row in valid.items() if stored.get(key) != row.as_record()]
        if changed:
            await conn.execute(
                upsert(conn, employees, _UPDATED),
                [{**row.as_record(), "synced_at": synced_at, "execution_id": execution_id} for row in changed],
            )
    inserted = sum(1 for row in changed if row.employee_no not in stored)
    tally.count_batch(len(batch), len(valid), len(changed), inserted, [r.as_json() for r in rejected],
                      [row.updated_at for row in valid.values() if row.updated_at is not None])
