"""The punch import's write on each app database: what `_insert_ignore` stores is what the portable upsert of
row dicts stores (the write before MariaDB got a driver-level path), rows and types, and it skips and counts
rows whose natural key exists, which keep their first execution and time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, delete, select

from pipelines.merge import days
from pipelines.merge.days import _PUNCH_COLUMNS, _UNMATCHED_COLUMNS, _insert_ignore
from shared.database import migrations
from shared.database.db import app_engine, upsert
from shared.database.tables import punches, unmatched_punches
from shared.runtime.runner import run_async

pytestmark = pytest.mark.integration

FIRST = "00000000-0000-0000-0000-0000000bf001"
SECOND = "00000000-0000-0000-0000-0000000bf002"
RECEIVED = datetime(2026, 6, 1, 9, 30, 5, 123456, UTC)
MIDNIGHT = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
# Values as import_punches builds them (punched_at in epoch seconds): a midnight, the last second of a day, a
# leap day, no tna_key, a quote and non-ASCII text in the identifiers.
PUNCH_ROWS: list[tuple[Any, ...]] = [
    ("E-1", 1, MIDNIGHT, 4867, 1),
    ("E-1", 2, MIDNIGHT, 4867, None),
    ("E-1", 1, MIDNIGHT - 1, 4102, 2),
    ("O'Brien-2", 70000000001, int(datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC).timestamp()), 4867, 3),
    ("Ünal-3", 3, MIDNIGHT + 12 * 3600 + 34 * 60 + 56, 4865, None),
]
UNMATCHED_ROWS: list[tuple[Any, ...]] = [
    ("901", 1, MIDNIGHT, 4867),
    ("901", 2, MIDNIGHT + 59, 4867),
    ("a'b\\c", 3, MIDNIGHT - 86400, 4102),
]
CASES = [(punches, _PUNCH_COLUMNS, PUNCH_ROWS), (unmatched_punches, _UNMATCHED_COLUMNS, UNMATCHED_ROWS)]


async def write_as_dicts(table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> int:
    """The reference: one dict of aware datetimes a row, through the portable upsert."""
    engine = await app_engine()
    async with engine.begin() as conn:
        result = await conn.execute(upsert(conn, table, []), [
            dict(zip(columns, (*row[:2], datetime.fromtimestamp(row[2], UTC), *row[3:], RECEIVED, FIRST),
                     strict=True))
            for row in rows])
    return result.rowcount


async def write(table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]], received_at: datetime,
                execution_id: str) -> int:
    return await _insert_ignore(await app_engine(), table, columns, rows, received_at, execution_id)


async def stored(table: Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The table's rows (the written columns), in natural-key order."""
    engine = await app_engine()
    async with engine.connect() as conn:
        result = await conn.execute(select(*(table.c[c] for c in columns)).order_by(*(table.c[c] for c in columns)))
        return [tuple(row) for row in result]


async def clear(table: Table) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(delete(table))


@pytest.fixture
def migrated(empty_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The empty app database of each kind, migrated; batches of two rows, so every write spans several."""
    run_async(migrations.upgrade())
    monkeypatch.setattr(days, "WRITE_BATCH", 2)
    return empty_database


@pytest.mark.parametrize(("table", "columns", "rows"), CASES, ids=["punches", "unmatched_punches"])
def test_the_write_stores_what_the_dict_upsert_stored(migrated: str, table: Table, columns: Sequence[str],
                                                      rows: list[tuple[Any, ...]]) -> None:
    """Written both ways, the same rows come back with the same values and the same Python types."""
    assert run_async(write_as_dicts(table, columns, rows)) == len(rows)
    expected = run_async(stored(table, columns))
    run_async(clear(table))

    assert run_async(write(table, columns, rows, RECEIVED, FIRST)) == len(rows)
    got = run_async(stored(table, columns))
    assert got == expected
    assert [[type(value) for value in row] for row in got] == [[type(value) for value in row] for row in expected]
    assert {row[columns.index("punched_at")].tzinfo for row in got} == {UTC}
    assert {row[-2] for row in got} == {RECEIVED}  # microseconds kept


@pytest.mark.parametrize(("table", "columns", "rows"), CASES, ids=["punches", "unmatched_punches"])
def test_rows_already_stored_are_skipped_counted_and_keep_their_first_execution(
        migrated: str, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """A rerun with more rows (one of them twice) inserts and counts only the new ones, once each."""
    assert run_async(write(table, columns, rows, RECEIVED, FIRST)) == len(rows)
    assert run_async(write(table, columns, rows, RECEIVED, FIRST)) == 0
    new = (*rows[0][:2], rows[0][2] + 1, *rows[0][3:])
    later = RECEIVED + timedelta(hours=1)
    assert run_async(write(table, columns, [*rows, new, new], later, SECOND)) == 1

    at = columns.index("punched_at")
    by_key = {(row[0], row[1], row[at]): row[-2:] for row in run_async(stored(table, columns))}
    assert len(by_key) == len(rows) + 1
    new_key = (new[0], new[1], datetime.fromtimestamp(new[at], UTC))
    assert by_key.pop(new_key) == (later, SECOND)
    assert set(by_key.values()) == {(RECEIVED, FIRST)}
