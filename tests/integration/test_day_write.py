"""The merge's `attendance_days` write on each app database: what `_upsert_days` stores is what the portable
upsert of row dicts stores (`_upsert_if_newer`, the write before MariaDB got a driver-level path), every column
and type, a row is only overwritten by one computed no earlier, and on MariaDB a batch is one statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, text

from pipelines.merge import days
from pipelines.merge.days import _upsert_days, _upsert_if_newer
from shared.database import migrations
from shared.database.db import app_engine
from shared.database.tables import attendance_days
from shared.runtime.runner import run_async

pytestmark = pytest.mark.integration

EXEC = "00000000-0000-0000-0000-0000000da701"
LATER_EXEC = "00000000-0000-0000-0000-0000000da702"
AT = datetime(2026, 6, 3, 1, 2, 3, 456789, UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def day(employee_no: str, work_date: date, shift_code: str, status: str, first_in: datetime | None = None,
        last_out: datetime | None = None, **values: Any) -> dict[str, Any]:
    """A row as `merge_attendance` writes it: every column, figures zero unless given."""
    return {"employee_no": employee_no, "work_date": work_date, "shift_code": shift_code, "first_in": first_in,
            "last_out": last_out, "worked_minutes": 0, "status": status, "late_minutes": 0,
            "early_exit_minutes": 0, "punch_count": 0, "overtime_minutes": 0, "absence_kind": None,
            "execution_id": EXEC, "computed_at": AT, **values}


# Computed days in key order: whole seconds, a midnight, microseconds (with leading zeros), an instant in
# another zone, no punches, absences, an `off` day, a leap day's last microsecond, a quote and non-ASCII text.
ROWS = [
    day("E-1", date(2026, 6, 1), "day", "present", datetime(2026, 6, 1, 8, 57, 12, tzinfo=UTC),
        datetime(2026, 6, 1, 17, 45, tzinfo=UTC), worked_minutes=528, punch_count=2, overtime_minutes=45),
    day("E-1", date(2026, 6, 2), "day", "missing_punch", datetime(2026, 6, 2, tzinfo=UTC), punch_count=1),
    day("E-1", date(2026, 6, 3), "day", "present", datetime(2026, 6, 3, 9, 20, 0, 1, tzinfo=UTC),
        datetime(2026, 6, 3, 17, 0, 0, 123456, tzinfo=UTC), worked_minutes=460, late_minutes=20, punch_count=4),
    day("E-1", date(2026, 6, 6), "off", "off"),
    day("E-2", date(2026, 6, 1), "day", "half_day", datetime(2026, 6, 1, 13, 0, tzinfo=BERLIN),
        datetime(2026, 6, 1, 17, 0, tzinfo=BERLIN), worked_minutes=240, punch_count=2,
        absence_kind="sick"),
    day("E-2", date(2026, 6, 2), "day", "on_leave", absence_kind="vacation"),
    day("E-2", date(2026, 6, 3), "day", "absent"),
    day("O'Brien-Ünal", date(2028, 2, 29), "night", "open", datetime(2028, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        punch_count=1, execution_id=None),
]


def stored() -> list[tuple[Any, ...]]:
    """Every column of every `attendance_days` row, in key order."""
    async def read() -> list[tuple[Any, ...]]:
        engine = await app_engine()
        async with engine.connect() as conn:
            c = attendance_days.c
            return [tuple(row) for row in await conn.execute(
                select(attendance_days).order_by(c.employee_no, c.work_date, c.shift_code))]
    return run_async(read())


def write(rows: Sequence[dict[str, Any]]) -> None:
    """The write `merge_attendance` does (on MariaDB the driver-level path)."""
    async def upsert() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await _upsert_days(conn, rows)
    run_async(upsert())


def write_as_dicts(rows: Sequence[dict[str, Any]]) -> None:
    """The reference: the portable upsert of row dicts, bound by SQLAlchemy."""
    async def upsert() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(_upsert_if_newer(conn), list(rows))
    run_async(upsert())


def clear() -> None:
    async def empty() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(delete(attendance_days))
    run_async(empty())


@pytest.fixture
def migrated(empty_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The empty app database of each kind, migrated; batches of two rows, so every write spans several."""
    run_async(migrations.upgrade())
    monkeypatch.setattr(days, "WRITE_BATCH", 2)
    return empty_database


def test_the_write_stores_what_the_dict_upsert_stored(migrated: str) -> None:
    """Written both ways, the same rows come back with the same values and the same Python types."""
    write_as_dicts(ROWS)
    expected = stored()
    clear()

    write(ROWS)
    got = stored()
    assert got == expected
    assert [[type(value) for value in row] for row in got] == [[type(value) for value in row] for row in expected]
    by_key = {row[:3]: row for row in got}
    # 13:00 and 17:00 CEST (UTC+2) are 11:00 and 15:00 UTC
    assert by_key[("E-2", date(2026, 6, 1), "day")][3:5] == (datetime(2026, 6, 1, 11, 0, tzinfo=UTC),
                                                             datetime(2026, 6, 1, 15, 0, tzinfo=UTC))
    # microseconds kept: 9:20:00.000001 and the leap day's 23:59:59.999999; computed_at .456789
    assert by_key[("E-1", date(2026, 6, 3), "day")][3] == datetime(2026, 6, 3, 9, 20, 0, 1, tzinfo=UTC)
    assert by_key[("O'Brien-Ünal", date(2028, 2, 29), "night")][3] == datetime(2028, 2, 29, 23, 59, 59, 999999,
                                                                                tzinfo=UTC)
    assert {row[-1] for row in got} == {AT}


def test_a_row_is_only_overwritten_by_one_computed_no_earlier(migrated: str) -> None:
    """An earlier computed_at leaves the stored row whole; an equal or later one replaces every column, row by
    row within one batch."""
    first, second = ROWS[0], ROWS[1]
    write([first, second])
    before = stored()
    changed = {"first_in": None, "last_out": None, "worked_minutes": 0, "status": "absent", "punch_count": 0,
               "overtime_minutes": 0, "absence_kind": "unpaid", "execution_id": LATER_EXEC}
    earlier = {**first, **changed, "computed_at": AT - timedelta(microseconds=1)}
    write([earlier])
    assert stored() == before

    later = {**second, **changed, "computed_at": AT + timedelta(seconds=5)}
    write([earlier, later])  # one batch: the first row older than stored, the second newer
    got = {row[:3]: row for row in stored()}
    assert got[tuple(first[c] for c in ("employee_no", "work_date", "shift_code"))] == before[0]
    assert got[tuple(second[c] for c in ("employee_no", "work_date", "shift_code"))] == (
        "E-1", date(2026, 6, 2), "day", None, None, 0, "absent", 0, 0, 0, 0, "unpaid", LATER_EXEC,
        AT + timedelta(seconds=5))

    write([{**first, **changed, "computed_at": AT}])  # equal to the stored computed_at: replaces
    assert stored()[0] == ("E-1", date(2026, 6, 1), "day", None, None, 0, "absent", 0, 0, 0, 0, "unpaid",
                           LATER_EXEC, AT)


@pytest.mark.parametrize("empty_database", ["mariadb"], indirect=True)
def test_on_mariadb_a_batch_is_one_multi_row_statement(migrated: str) -> None:
    """The driver turns each batch into one INSERT of several rows, not one statement a row."""
    async def inserts_for(rows: Sequence[dict[str, Any]]) -> int:
        engine = await app_engine()
        async with engine.begin() as conn:
            count = text("SHOW SESSION STATUS LIKE 'Com_insert'")
            before = int((await conn.execute(count)).one()[1])
            await _upsert_days(conn, rows)
            return int((await conn.execute(count)).one()[1]) - before

    assert run_async(inserts_for(ROWS)) == 4  # 8 rows in batches of 2
    assert len(stored()) == len(ROWS)
