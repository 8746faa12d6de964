"""HRIS rows, shards and SQL of the extract stage as pure functions: tables of cases, no I/O."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.extract.params import ExtractParams, KeyRange, cut_ranges
from pipelines.extract.query import Window, build_select, resume_after, split_by_employees
from pipelines.extract.rows import COLUMNS, RowRejected, normalise_employee
from pipelines.extract.watermark import next_watermark
from shared.config.errors import ConfigError

BASE: dict[str, Any] = {
    "employee_no": "E001", "full_name": "Ada Lovelace", "email": "ada@example.com", "department": "R&D",
    "manager_no": None, "status": "active", "hire_date": date(2020, 1, 1), "termination_date": None,
    "biostar_user_id": "42", "updated_at": datetime(2026, 1, 5, 8, 0),
}
UTC8 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def row(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


ACCEPTED = [
    ("naive updated_at is UTC", row(), "updated_at", UTC8),
    ("aware updated_at converted to UTC",
     row(updated_at=datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=1)))), "updated_at", UTC8),
    ("updated_at ISO text", row(updated_at="2026-01-05 08:00:00.0000000"), "updated_at", UTC8),
    ("updated_at ISO text with Z", row(updated_at="2026-01-05T08:00:00Z"), "updated_at", UTC8),
    ("missing updated_at kept as None", row(updated_at=None), "updated_at", None),
    ("hire_date from ISO text", row(hire_date="2021-02-03"), "hire_date", date(2021, 2, 3)),
    ("hire_date from midnight datetime", row(hire_date=datetime(2021, 2, 3)), "hire_date", date(2021, 2, 3)),
    ("hire_date from midnight text", row(hire_date="2021-02-03 00:00:00.000"), "hire_date", date(2021, 2, 3)),
    ("blank termination_date is None", row(termination_date="  "), "termination_date", None),
    ("strings are stripped", row(full_name="  Ada  Lovelace "), "full_name", "Ada  Lovelace"),
    ("padded CHAR key stripped", row(employee_no="E001      "), "employee_no", "E001"),
    ("integer key becomes text", row(employee_no=1042), "employee_no", "1042"),
    ("integral Decimal id becomes text", row(biostar_user_id=Decimal("77")), "biostar_user_id", "77"),
    ("blank optional text is None", row(department="   "), "department", None),
    ("status case-insensitive", row(status=" Terminated "), "status", "terminated"),
    ("missing email allowed", row(email=None), "email", None),
    ("plus-addressed email", row(email="a.b+tag@mail.example.co.uk"), "email", "a.b+tag@mail.example.co.uk"),
    ("injection-shaped key is data", row(employee_no="1'; DROP TABLE employees;--"), "employee_no",
     "1'; DROP TABLE employees;--"),
]

REJECTED = [
    ("missing key", row(employee_no=None), None, "employee_no is missing"),
    ("blank key", row(employee_no="   "), None, "employee_no is missing"),
    ("key too long", row(employee_no="E" * 65), "E" * 64, "employee_no longer than 64 characters"),
    ("missing name", row(full_name=""), "E001", "full_name is missing"),
    ("unknown status", row(status="on_leave"), "E001", "unknown status 'on_leave'"),
    ("missing status", row(status=None), "E001", "status is missing"),
    ("email without domain dot", row(email="ada@localhost"), "E001", "email is not a valid address"),
    ("email with two @", row(email="ada@@example.com"), "E001", "email is not a valid address"),
    ("email with space", row(email="ada lovelace@example.com"), "E001", "email is not a valid address"),
    ("email with double dot", row(email="ada..l@example.com"), "E001", "email is not a valid address"),
    ("unparseable date", row(hire_date="31/12/2026"), "E001", "hire_date is not a date"),
    ("impossible date", row(termination_date="2026-02-30"), "E001", "termination_date is not a date"),
    ("date with a time of day", row(hire_date=datetime(2020, 1, 1, 9, 30)), "E001", "hire_date has a time"),
    ("unparseable updated_at", row(updated_at="yesterday"), "E001", "updated_at is not a date and time"),
    ("updated_at is a bare date", row(updated_at=date(2026, 1, 5)), "E001", "updated_at is not a date and time"),
    ("termination before hire", row(termination_date="2019-12-31"), "E001", "termination_date 2019-12-31 is"),
    ("boolean is not text", row(manager_no=True), "E001", "manager_no is not text"),
    ("bytes are not text", row(department=b"R&D"), "E001", "department is not text"),
]


@pytest.mark.parametrize(("case", "raw", "column", "expected"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_values_are_normalised(case: str, raw: dict[str, Any], column: str, expected: Any) -> None:
    """Each accepted driver representation normalises to the stored value."""
    assert normalise_employee(raw).as_record()[column] == expected


@pytest.mark.parametrize(("case", "raw", "key", "reason"), REJECTED, ids=[c[0] for c in REJECTED])
def test_bad_values_are_rejected_with_a_reason(case: str, raw: dict[str, Any], key: str | None, reason: str) -> None:
    """Each bad value rejects the row, naming the key (when there is one) and the reason."""
    with pytest.raises(RowRejected) as caught:
        normalise_employee(raw)
    assert caught.value.employee_no == key
    assert caught.value.reason.startswith(reason)
    assert caught.value.as_json() == {"employee_no": key, "reason": caught.value.reason}


def test_a_record_has_exactly_the_view_columns() -> None:
    """A normalised row carries the view's columns, nothing more."""
    assert tuple(normalise_employee(row()).as_record()) == COLUMNS


@given(keys=st.lists(st.text(max_size=4), max_size=60).map(sorted),
       max_shards=st.integers(1, 12), target=st.integers(1, 20))
def test_cut_ranges_cover_every_key_exactly_once(keys: list[str], max_shards: int, target: int) -> None:
    """Cut ranges are contiguous, open at both ends, at most max_shards, and hold each key once."""
    ranges = cut_ranges(keys, max_shards, target)
    assert 1 <= len(ranges) <= max_shards
    assert ranges[0].lo is None
    assert ranges[-1].hi is None
    assert all(a.hi == b.lo for a, b in itertools.pairwise(ranges))

    def owners(key: str) -> int:
        return sum((r.lo is None or key > r.lo) and (r.hi is None or key <= r.hi) for r in ranges)

    assert all(owners(k) == 1 for k in keys)
    assert all(r.lo < r.hi for r in ranges if r.lo is not None and r.hi is not None)  # none empty


def test_cut_ranges_respects_the_target_size() -> None:
    """Ten keys at three per shard give four shards cut after every third key."""
    keys = [f"K{i}" for i in range(10)]
    assert cut_ranges(keys, 10, 3) == [KeyRange(None, "K2"), KeyRange("K2", "K5"), KeyRange("K5", "K8"),
                                       KeyRange("K8", None)]
    assert cut_ranges(keys, 2, 3) == [KeyRange(None, "K4"), KeyRange("K4", None)]
    assert cut_ranges([], 5, 3) == [KeyRange()]


SQL_CASES = [
    ("full read", Window(), "", []),
    ("window and closed range",
     Window(UTC8, KeyRange("A", "M")), " WHERE src.updated_at >= ? AND src.employee_no > ? AND src.employee_no <= ?",
     [datetime(2026, 1, 5, 8, 0), "A", "M"]),
    ("first shard also takes NULL keys", Window(key_range=KeyRange(None, "M"), with_null_keys=True),
     " WHERE ((src.employee_no <= ?) OR src.employee_no IS NULL)", ["M"]),
    ("employees filter", Window(employees=["E1", "E'2"]), " WHERE src.employee_no IN (?, ?)", ["E1", "E'2"]),
]


@pytest.mark.parametrize(("case", "window", "where", "params"), SQL_CASES, ids=[c[0] for c in SQL_CASES])
def test_the_query_is_a_derived_table_with_question_mark_parameters(
    case: str, window: Window, where: str, params: list[Any]
) -> None:
    """The configured query becomes a derived table, filtered with ? parameters and ordered by key."""
    sql, args = build_select("SELECT * FROM hrsync_employees ;\n", ("employee_no",), window)
    assert sql == f"SELECT src.employee_no FROM (SELECT * FROM hrsync_employees) AS src{where} ORDER BY src.employee_no"
    assert args == params


@pytest.mark.parametrize(
    ("count", "sizes"),
    [
        (None, [None]),  # no list: the window as it is
        (0, [0]),
        (1000, [1000]),  # one statement takes 1,000 employees
        (1001, [1000, 1]),
        (2101, [1000, 1000, 101]),  # over SQL Server's 2,100 parameters: three statements
        (5000, [1000] * 5),  # the largest coalesced list
    ],
)
def test_a_long_list_of_employees_is_read_in_parts(count: int | None, sizes: list[int | None]) -> None:
    """A window's employees are cut into parts of at most 1,000, in the list's order, each under 2,000
    parameters with the since and key bounds."""
    numbers = None if count is None else [f"E{i:05d}" for i in range(count)]
    window = Window(UTC8, KeyRange("A", "Z"), numbers, with_null_keys=True)
    parts = split_by_employees(window)
    assert [None if p.employees is None else len(p.employees) for p in parts] == sizes
    assert [e for p in parts for e in p.employees or ()] == (numbers or [])
    assert {(p.since, p.key_range, p.with_null_keys) for p in parts} == {(UTC8, KeyRange("A", "Z"), True)}
    assert all(len(build_select("SELECT * FROM v", ("employee_no",), p)[1]) <= 2000 for p in parts)


def test_a_number_listed_twice_is_read_once_and_an_oversized_statement_is_refused() -> None:
    """Parts hold each number once; build_select refuses more than 2,000 parameters in one statement."""
    twice = [f"E{i:05d}" for i in range(1500)] * 2
    parts = split_by_employees(Window(employees=twice))
    assert [len(p.employees or ()) for p in parts] == [1000, 500]
    with pytest.raises(ValueError, match="2001 parameters"):
        build_select("SELECT * FROM v", ("employee_no",), Window(employees=twice[:2001]))


def test_resume_keeps_the_window_and_moves_the_lower_bound() -> None:
    """A resumed read keeps since, upper bound and filter, and starts after the last stored key."""
    window = Window(UTC8, KeyRange(None, "Z"), ["A", "B"], with_null_keys=True)
    assert resume_after(window, "B") == Window(UTC8, KeyRange("B", "Z"), ["A", "B"], with_null_keys=True)


def test_params_round_trip_through_json() -> None:
    """ExtractParams and KeyRange survive to_json/from_json unchanged."""
    params = ExtractParams(full=False, employees=["E1"], source="hris", since=UTC8)
    assert ExtractParams.from_json(params.to_json()) == params
    assert ExtractParams.from_json({}) == ExtractParams()
    assert KeyRange.from_json(KeyRange("a", 7).to_json()) == KeyRange("a", 7)


@pytest.mark.parametrize("data", [{"full": "yes"}, {"employees": "E1"}, {"since": "2026-01-05T08:00:00"},
                                  {"since": "tomorrow"}, {"source": ""}])
def test_bad_params_name_the_field(data: dict[str, Any]) -> None:
    """Malformed params raise a ConfigError naming the field."""
    with pytest.raises(ConfigError, match=next(iter(data))):
        ExtractParams.from_json(data)


def test_next_watermark_is_the_newest_time_of_a_complete_read() -> None:
    """The mark is the newest shard max; partial (employees) reads and empty reads give none."""
    outputs = [{"max_updated_at": UTC8.isoformat()}, {"max_updated_at": None},
               {"max_updated_at": (UTC8 + timedelta(hours=1)).isoformat()}]
    assert next_watermark(ExtractParams(), outputs) == UTC8 + timedelta(hours=1)
    assert next_watermark(ExtractParams(employees=["E1"]), outputs) is None
    assert next_watermark(ExtractParams(full=True), [{"max_updated_at": None}]) is None
