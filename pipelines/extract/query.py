"""The portable SQL of the extract: the configured query wrapped as a derived table, `?` parameters.

    SELECT src.<cols> FROM (<query>) AS src
    WHERE src.updated_at >= ? AND src.employee_no > ? AND src.employee_no <= ?
    ORDER BY src.employee_no

Only the conditions that apply are emitted (a full read has no `updated_at` bound, an open range no
key bound); the SQL text is built from constants only, every value is a `?` parameter. No OFFSET/FETCH
(SQLite lacks them) and no LIMIT/TOP (dialect-specific): each shard is one ordered keyset read.

SQL Server refuses a statement with more than 2,100 parameters, and a read of a list of employees (a
coalesced `employee.changed` holds up to 5,000) puts one per employee in `IN (?, …)`. Such a window is
read as several statements (`split_by_employees`), each of at most `EMPLOYEES_PER_STATEMENT` employees
and its own keyset order; `build_select` refuses a statement over `MAX_PARAMETERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pipelines.extract.params import ALL_KEYS, Key, KeyRange

MAX_PARAMETERS = 2_000  # per statement: SQL Server refuses more than 2,100, the rest is margin
EMPLOYEES_PER_STATEMENT = 1_000  # well below MAX_PARAMETERS with the window's other three (since, lo, hi)


@dataclass(frozen=True)
class Window:
    """What one read selects: rows changed since `since`, in a key range, optionally only some keys."""

    since: datetime | None = None
    key_range: KeyRange = ALL_KEYS
    employees: Sequence[str] | None = None
    # Rows without a key (rejected, but reported) belong to the shard open below; NULLs sort first on
    # some servers and last on others, so that shard asks for them explicitly.
    with_null_keys: bool = False


def strip_query(query: str) -> str:
    """The configured query, without surrounding blanks and a trailing `;` (it becomes a subquery)."""
    text = query.strip().rstrip(";").rstrip()
    if not text:
        raise ValueError("the HRIS query is empty")
    return text


def build_select(query: str, columns: Sequence[str], window: Window, key: str = "employee_no"
                 ) -> tuple[str, list[Any]]:
    """The SQL and its parameters reading `columns` of `window`, ordered by `key` (the range's column).

    `window.employees` always filters on `employee_no`; `key` is a constant column name, never input.
    """
    conditions: list[str] = []
    params: list[Any] = []
    if window.since is not None:
        conditions.append("src.updated_at >= ?")
        params.append(window.since.astimezone(UTC).replace(tzinfo=None))  # the HRIS holds naive UTC
    bounds: list[str] = []
    lo, hi = window.key_range.lo, window.key_range.hi
    if lo is not None:
        bounds.append(f"src.{key} > ?")
        params.append(lo)
    if hi is not None:
        bounds.append(f"src.{key} <= ?")
        params.append(hi)
    if bounds and window.with_null_keys:
        conditions.append(f"(({' AND '.join(bounds)}) OR src.{key} IS NULL)")
    else:
        conditions.extend(bounds)
    if window.employees is not None:
        marks = ", ".join("?" for _ in window.employees)
        conditions.append(f"src.employee_no IN ({marks})")
        params.extend(window.employees)
    if len(params) > MAX_PARAMETERS:
        raise ValueError(f"{len(params)} parameters in one HRIS statement, at most {MAX_PARAMETERS} "
                         "(SQL Server refuses more than 2,100): read the window through split_by_employees")
    selected = ", ".join(f"src.{c}" for c in columns)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    # Built from constants and the operator's configured query only; every value is a ? parameter.
    sql = f"SELECT {selected} FROM ({strip_query(query)}) AS src{where} ORDER BY src.{key}"  # noqa: S608
    return sql, params


def resume_after(window: Window, last_key: Key) -> Window:
    """The same window, restarted after `last_key` (the last key already stored)."""
    return Window(window.since, KeyRange(last_key, window.key_range.hi), window.employees, window.with_null_keys)


def split_by_employees(window: Window) -> list[Window]:
    """`window` as windows of at most `EMPLOYEES_PER_STATEMENT` employees each, in the list's order (a
    number listed twice is read once); the window itself when it has no list or a short one."""
    if window.employees is None or len(window.employees) <= EMPLOYEES_PER_STATEMENT:
        return [window]
    unique = list(dict.fromkeys(window.employees))
    return [replace(window, employees=unique[i:i + EMPLOYEES_PER_STATEMENT])
            for i in range(0, len(unique), EMPLOYEES_PER_STATEMENT)]
