"""BioStar 2 test sources and app-DB helpers for the attendance tests (and anyone else who needs them).

`biostar_db` is a fresh MariaDB database named `biostar2_ac_<random>` (HRSYNC_BIOSTAR_URL points at it
for the test); `hrsync_env` sets HRSYNC_* variables for one test and forgets them (and the cached
settings) afterwards; `Staff` inserts employees with names unique to the test, so tests can share the
session's app database without seeing each other's rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete, select

from shared.config.settings import get_settings
from shared.database.db import app_engine, engine_for
from shared.database.tables import attendance_days, attendance_exceptions, employees, punches, unmatched_punches
from shared.runtime.runner import run_async
from tests.conftest import create_mariadb_database, drop_mariadb_database, set_env

SetEnv = Callable[..., None]
NATURAL_ORDER = ("work_date", "shift_code", "punched_at", "device_id")  # after the employee / user id


@pytest.fixture
def hrsync_env() -> Iterator[SetEnv]:
    """Set HRSYNC_* variables for this test only; settings are re-read before and after."""
    with pytest.MonkeyPatch.context() as mp:
        yield lambda **values: set_env(mp, **values)
    get_settings.cache_clear()


async def dispose_engine(url: str) -> None:
    """Close the registry's engine for `url` (its pooled connections)."""
    await (await engine_for(url)).dispose()


@pytest.fixture
def biostar_db(mariadb: None, hrsync_env: SetEnv) -> Iterator[str]:
    """A fresh MariaDB `biostar2_ac_<random>` database, set as HRSYNC_BIOSTAR_URL; its URL is yielded."""
    name = create_mariadb_database("biostar2_ac")
    url = f"mysql+aiomysql://root@127.0.0.1:3306/{name}"
    hrsync_env(biostar_url=url)
    try:
        yield url
    finally:
        run_async(dispose_engine(url))  # the registry keeps the engine; its pooled connections must go first
        drop_mariadb_database(name)


class Staff:
    """Employees of one test: numbers, BioStar ids and department carry a random prefix."""

    def __init__(self) -> None:
        self.prefix = uuid.uuid4().hex[:6].upper()
        self.department = f"Dept-{self.prefix}"

    def no(self, n: int) -> str:
        return f"{self.prefix}-E{n:04d}"

    def user(self, n: int) -> str:
        return f"{self.prefix}{n:04d}"

    def add(self, n: int, **fields: Any) -> str:
        """Insert employee `n` (active, in the test's department, BioStar id `user(n)`) unless overridden."""
        row = {"employee_no": self.no(n), "full_name": f"Employee {n}", "email": None,
               "department": self.department, "manager_no": None, "status": "active", "hire_date": None,
               "termination_date": None, "biostar_user_id": self.user(n), "updated_at": None,
               "synced_at": dt.datetime.now(dt.UTC), "execution_id": None, **fields}

        async def insert() -> None:
            engine = await app_engine()
            async with engine.begin() as conn:
                await conn.execute(employees.insert(), [row])

        run_async(insert())
        return str(row["employee_no"])

    def dump(self, table: Any, key: str = "employee_no") -> list[dict[str, Any]]:
        """Every row of `table` belonging to this test's employees, in natural-key order, as dicts."""
        column = table.c[key]

        async def read() -> list[dict[str, Any]]:
            engine = await app_engine()
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(table).where(column.like(f"{self.prefix}%"))
                    .order_by(column, *(table.c[name] for name in NATURAL_ORDER if name in table.c))
                )
                return [dict(r._mapping) for r in rows]

        return run_async(read())

    def days(self) -> list[dict[str, Any]]:
        return self.dump(attendance_days)

    def punches(self) -> list[dict[str, Any]]:
        return self.dump(punches)

    def unmatched(self) -> list[dict[str, Any]]:
        return self.dump(unmatched_punches, "biostar_user_id")

    def forget(self) -> None:
        """Delete this test's rows from the app database."""

        async def purge() -> None:
            engine = await app_engine()
            async with engine.begin() as conn:
                for table, key in ((attendance_days, "employee_no"), (attendance_exceptions, "employee_no"),
                                   (punches, "employee_no"),
                                   (unmatched_punches, "biostar_user_id"), (employees, "employee_no")):
                    await conn.execute(delete(table).where(table.c[key].like(f"{self.prefix}%")))

        run_async(purge())


@pytest.fixture
def staff(app_db: str) -> Iterator[Staff]:
    """This test's employees in the session's app database, removed afterwards."""
    people = Staff()
    yield people
    people.forget()
