"""HRIS rows → `employees` records: normalisation and validation, pure functions with no I/O.

ODBC drivers hand back text, dates or datetimes for the same column depending on the driver and the
column's type (FreeTDS may give strings, SQLite always does), so every value is normalised here:
strings stripped (blank = missing), dates from `date`, midnight `datetime` or ISO text, `updated_at` as
an aware UTC instant. **A naive `updated_at` is taken as UTC**: the HRIS view must expose UTC (SQL
Server: `datetime2` in UTC, e.g. `SYSUTCDATETIME()` or `AT TIME ZONE 'UTC'`; pyodbc cannot read
`datetimeoffset`). A value that does not fit raises `RowRejected` with a one-line reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal, cast

from sqlalchemy import Table

from shared.database.tables import employees

EmployeeStatus = Literal["active", "inactive", "terminated"]
STATUSES: frozenset[str] = frozenset({"active", "inactive", "terminated"})

# The columns the query exposes (DESIGN §6), in the order the stage selects them.
COLUMNS = (
    "employee_no", "full_name", "email", "department", "manager_no", "status",
    "hire_date", "termination_date", "biostar_user_id", "updated_at",
)
# The columns of the absences query (DESIGN §6), in the order the stage selects them.
ABSENCE_COLUMNS = ("absence_id", "employee_no", "kind", "date_from", "date_to", "part", "status", "updated_at")

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Dot-atom local part, a domain of hostname labels with an alphabetic TLD: strict on purpose.
EMAIL_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")


class RowRejected(ValueError):
    """A row that cannot be stored; `employee_no` (None when missing) and a one-line `reason`."""

    def __init__(self, employee_no: str | None, reason: str) -> None:
        super().__init__(f"{employee_no!r}: {reason}")
        self.employee_no = employee_no
        self.reason = reason

    def as_json(self) -> dict[str, Any]:
        return {"employee_no": self.employee_no, "reason": self.reason}


@dataclass(frozen=True)
class EmployeeRow:
    """One valid employee, ready for the `employees` table (without `synced_at`/`execution_id`)."""

    employee_no: str
    full_name: str
    email: str | None
    department: str | None
    manager_no: str | None
    status: EmployeeStatus
    hire_date: date | None
    termination_date: date | None
    biostar_user_id: str | None
    updated_at: datetime | None

    def as_record(self) -> dict[str, Any]:
        # Not `asdict`: its deep copy of every value was half of the extract's CPU (bench/pipeline.py),
        # and the values (str, date, datetime, None) are immutable anyway.
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(EmployeeRow))


def _max_length(column: str, table: Table) -> int | None:
    return cast(int | None, getattr(table.c[column].type, "length", None))


def text_value(value: Any, column: str, table: Table = employees) -> str | None:
    """A stripped string (None when missing or blank); integers become their decimal text.

    Longer than `column` of `table` allows → `ValueError`.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{column} is not text: {value!r}")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        text = str(int(value))
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError(f"{column} is not text: {type(value).__name__}")
    if not text:
        return None
    limit = _max_length(column, table)
    if limit is not None and len(text) > limit:
        raise ValueError(f"{column} longer than {limit} characters")
    return text


def date_value(value: Any, column: str) -> date | None:
    """A calendar date from a `date`, a midnight `datetime` or ISO text ('2026-01-31', '… 00:00:00')."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{column} is not a date: {text[:40]!r}") from None
    if isinstance(value, datetime):
        if value.timetz().replace(tzinfo=None) != time(0):
            raise ValueError(f"{column} has a time of day: {value.isoformat()}")
        return value.date()
    if isinstance(value, date):
        return value
    raise ValueError(f"{column} is not a date: {type(value).__name__}")


def instant_value(value: Any, column: str) -> datetime | None:
    """An aware UTC datetime from a datetime or ISO text; naive values are taken as UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{column} is not a date and time: {value.strip()[:40]!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{column} is not a date and time: {type(value).__name__}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def email_value(value: Any) -> str | None:
    """A stripped address that matches `EMAIL_RE` (None when missing)."""
    text = text_value(value, "email")
    if text is None:
        return None
    local = text.rpartition("@")[0]
    if not EMAIL_RE.fullmatch(text) or len(local) > 64:
        raise ValueError(f"email is not a valid address: {text[:80]!r}")
    return text


def status_value(value: Any) -> EmployeeStatus:
    """One of active/inactive/terminated (case-insensitive)."""
    text = text_value(value, "status")
    if text is None:
        raise ValueError("status is missing")
    if text.lower() not in STATUSES:
        raise ValueError(f"unknown status {text[:40]!r} (expected active, inactive or terminated)")
    return cast(EmployeeStatus, text.lower())


def normalise_employee(raw: Mapping[str, Any]) -> EmployeeRow:
    """Validate and normalise one HRIS row (a mapping of `COLUMNS`); raise `RowRejected` if it is bad."""
    try:
        employee_no = text_value(raw.get("employee_no"), "employee_no")
    except ValueError as exc:
        raise RowRejected(_shown_key(raw.get("employee_no")), str(exc)) from None
    if employee_no is None:
        raise RowRejected(None, "employee_no is missing")
    try:
        full_name = text_value(raw.get("full_name"), "full_name")
        if full_name is None:
            raise ValueError("full_name is missing")
        hire_date = date_value(raw.get("hire_date"), "hire_date")
        termination_date = date_value(raw.get("termination_date"), "termination_date")
        if hire_date and termination_date and termination_date < hire_date:
            raise ValueError(f"termination_date {termination_date} is before hire_date {hire_date}")
        return EmployeeRow(
            employee_no=employee_no,
            full_name=full_name,
            email=email_value(raw.get("email")),
            department=text_value(raw.get("department"), "department"),
            manager_no=text_value(raw.get("manager_no"), "manager_no"),
            status=status_value(raw.get("status")),
            hire_date=hire_date,
            termination_date=termination_date,
            biostar_user_id=text_value(raw.get("biostar_user_id"), "biostar_user_id"),
            updated_at=instant_value(raw.get("updated_at"), "updated_at"),
        )
    except ValueError as exc:
        raise RowRejected(employee_no, str(exc)) from None


def _shown_key(value: Any) -> str | None:
    return None if value is None else str(value)[:64]
