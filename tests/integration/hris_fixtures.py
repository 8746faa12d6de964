"""An HRIS on the real PostgreSQL, reached through Debian's psqlodbc (`PostgreSQL Unicode`), plus helpers
to read the app database's `employees` and `sync_watermarks` back.

The HRIS table mimics a legacy system on purpose: `termination_date` is text and `biostar_user_id` an
integer, so the stage's normalisation meets what real drivers return.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing
from datetime import date, datetime
from typing import Any

import pyodbc
import pytest
from sqlalchemy import delete, select

from pipelines.extract.absences import ABSENCE_COLUMNS
from pipelines.extract.rows import COLUMNS
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import absences, employees, sync_watermarks
from shared.runtime import runner
from shared.runtime.runner import run_async
from tests.conftest import PG_ODBC, require_service, set_env

PG_HOST, PG_PORT = "127.0.0.1", 5432
T0 = datetime(2026, 1, 5, 8, 0, 0)  # naive UTC, as the HRIS stores it

DDL = [
    """CREATE TABLE hr_people (
        employee_no VARCHAR(200), full_name VARCHAR(400), email VARCHAR(400), department VARCHAR(200),
        manager_no VARCHAR(200), status VARCHAR(40), hire_date DATE, termination_date VARCHAR(40),
        biostar_user_id INTEGER, updated_at TIMESTAMP(6))""",
    "CREATE INDEX ix_hr_people_employee_no ON hr_people (employee_no)",
    f"CREATE VIEW hrsync_employees AS SELECT {', '.join(COLUMNS)} FROM hr_people",
    """CREATE TABLE hr_leave (
        absence_id VARCHAR(64), employee_no VARCHAR(200), kind VARCHAR(64), date_from DATE, date_to DATE,
        part VARCHAR(8), status VARCHAR(16), updated_at TIMESTAMP(6))""",
    f"CREATE VIEW hrsync_absences AS SELECT {', '.join(ABSENCE_COLUMNS)} FROM hr_leave",
]


def person(no: str | None, **values: Any) -> dict[str, Any]:
    """An HRIS row with plausible defaults; keyword arguments override columns."""
    row: dict[str, Any] = {
        "employee_no": no, "full_name": f"Person {no}", "email": f"{(no or 'x').lower()}@example.com",
        "department": "Ops", "manager_no": None, "status": "active", "hire_date": date(2020, 1, 1),
        "termination_date": None, "biostar_user_id": None, "updated_at": T0,
    }
    row.update(values)
    return row


class PgHris:
    """A fresh PostgreSQL database holding the HRIS table and the `hrsync_employees` view."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dsn = PG_ODBC % name

    def execute(self, sql: str, *params: Any) -> None:
        with closing(pyodbc.connect(self.dsn, autocommit=True)) as conn:
            conn.execute(sql, *params)

    def replace_rows(self, rows: list[Mapping[str, Any]]) -> None:
        """Make the HRIS hold exactly `rows`."""
        self._replace("hr_people", COLUMNS, rows)

    def replace_absences(self, rows: list[Mapping[str, Any]]) -> None:
        """Make the HRIS's absences view hold exactly `rows` (mappings of `ABSENCE_COLUMNS`)."""
        self._replace("hr_leave", ABSENCE_COLUMNS, rows)

    def _replace(self, table: str, columns: tuple[str, ...], rows: list[Mapping[str, Any]]) -> None:
        with closing(pyodbc.connect(self.dsn, autocommit=False)) as conn:
            cursor = conn.cursor()
            cursor.execute(f"DELETE FROM {table}")
            if rows:
                marks = ", ".join("?" for _ in columns)
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                   [tuple(r.get(c) for c in columns) for r in rows])
            conn.commit()

    def update(self, employee_no: str, **values: Any) -> None:
        """Change columns of one HRIS row."""
        sets = ", ".join(f"{c} = ?" for c in values)
        self.execute(f"UPDATE hr_people SET {sets} WHERE employee_no = ?", *values.values(), employee_no)


def _pg_admin() -> pyodbc.Connection:
    return pyodbc.connect(PG_ODBC % "postgres", autocommit=True)


@pytest.fixture(scope="module")
def pg_hris() -> Iterator[PgHris]:
    """A PostgreSQL HRIS database for the module, dropped (with its pooled connections) at the end."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    hris = PgHris(f"hris_test_{uuid.uuid4().hex[:8]}")
    with closing(_pg_admin()) as admin:
        admin.execute(f'CREATE DATABASE "{hris.name}"')
    try:
        with closing(pyodbc.connect(hris.dsn, autocommit=True)) as conn:
            for statement in DDL:
                conn.execute(statement)
        yield hris
    finally:
        runner.shutdown()  # closes the ODBC pool on its loop; the next run_async starts a new runner
        with closing(_pg_admin()) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{hris.name}" WITH (FORCE)')


async def _clear_app_tables() -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(delete(employees))
        await conn.execute(delete(absences))
        await conn.execute(delete(sync_watermarks))


@pytest.fixture
def hris(app_db: str, pg_hris: PgHris) -> Iterator[PgHris]:
    """HRSYNC_HRIS_ODBC points at the PostgreSQL HRIS (emptied); the app's employees and marks are empty."""
    pg_hris.replace_rows([])
    pg_hris.replace_absences([])
    with pytest.MonkeyPatch.context() as mp:
        set_env(mp, hris_odbc=pg_hris.dsn)
        run_async(_clear_app_tables())
        yield pg_hris
    get_settings.cache_clear()


@pytest.fixture
def demo_hris(app_db: str) -> Iterator[None]:
    """No HRSYNC_HRIS_ODBC: the stage reads the embedded SQLite demo HRIS; app tables emptied."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HRSYNC_HRIS_ODBC", raising=False)
        get_settings.cache_clear()
        run_async(_clear_app_tables())
        yield
    get_settings.cache_clear()


async def _dump() -> list[dict[str, Any]]:
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = await conn.execute(select(employees).order_by(employees.c.employee_no))
    return [dict(r._mapping) for r in rows]


def dump_employees() -> list[dict[str, Any]]:
    """Every `employees` row (all columns), ordered by key."""
    return run_async(_dump())


def employees_by_key() -> dict[str, dict[str, Any]]:
    """`employees` rows by `employee_no`."""
    return {r["employee_no"]: r for r in dump_employees()}
