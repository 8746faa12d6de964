"""The BioStar event-code filter and the merge stage's shard planning, as tables of cases (no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from pipelines.merge.biostar import event_code_ranges, is_punch_event, log_table_names
from pipelines.merge.days import (
    MergeShard,
    PunchWindow,
    plan_merge_after_import,
    plan_merge_shards,
    plan_merge_touched,
    plan_punch_windows,
)
from pipelines.merge.stage import import_window_hours

D = date.fromisoformat


def utc(text: str) -> datetime:
    """An aware UTC instant from `YYYY-MM-DD HH:MM`."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- event codes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "plain", "with_duress"),
    [
        (0x1000, True, True),    # verify success, lowest sub code
        (0x1001, True, True),    # verify success, ID + PIN
        (0x10FF, True, True),    # verify success, highest sub code
        (0x1301, True, True),    # identify success
        (0x1601, True, True),    # dual authentication success
        (0x1201, False, True),   # duress verify
        (0x1501, False, True),   # duress identify
        (0x1100, False, False),  # verify failure
        (0x1401, False, False),  # identify failure
        (0x1800, False, False),  # authentication failure
        (0x1900, False, False),  # access denied
        (0x1700, False, False),  # not an authentication result
        (0x0FFF, False, False),  # just below verify success
        (0x1700 - 1, True, True),  # last sub code of dual auth
        (0x2000, False, False),  # a door event
        (0, False, False),
    ],
)
def test_punch_event_codes(code: int, plain: bool, with_duress: bool) -> None:
    """Only authentication successes are punches; duress ones only when enabled; failures never."""
    assert is_punch_event(code) is plain
    assert is_punch_event(code, include_duress=True) is with_duress


@pytest.mark.parametrize(
    ("include_duress", "ranges"),
    [
        (False, [(0x1000, 0x1100), (0x1300, 0x1400), (0x1600, 0x1700)]),
        (True, [(0x1000, 0x1100), (0x1200, 0x1400), (0x1500, 0x1700)]),
    ],
)
def test_event_code_ranges_merge_adjacent_main_codes(include_duress: bool, ranges: list[tuple[int, int]]) -> None:
    """The SQL filter's EVT ranges cover exactly the punch codes, adjacent main codes in one range."""
    assert event_code_ranges(include_duress) == ranges
    in_ranges = {code for code in range(0x10000) if any(lo <= code < hi for lo, hi in ranges)}
    assert in_ranges == {code for code in range(0x10000) if is_punch_event(code, include_duress)}


@pytest.mark.parametrize(
    ("start", "end", "tables"),
    [
        ("2026-06-01 00:00", "2026-06-30 23:59", ["t_lg202606"]),
        ("2026-05-31 22:00", "2026-06-01 06:00", ["t_lg202605", "t_lg202606"]),
        ("2026-12-31 23:00", "2027-01-01 01:00", ["t_lg202612", "t_lg202701"]),
        ("2026-11-15 00:00", "2027-02-01 00:00", ["t_lg202611", "t_lg202612", "t_lg202701", "t_lg202702"]),
    ],
)
def test_log_table_names_by_utc_month(start: str, end: str, tables: list[str]) -> None:
    """A span reads the `t_lgYYYYMM` table of every UTC month it touches, in order."""
    assert log_table_names(utc(start), utc(end)) == tables


def test_log_table_month_is_utc_not_local() -> None:
    """00:30 on 1 June in Berlin is still May in UTC, so May's table is read."""
    berlin_summer = timezone(timedelta(hours=2))
    start = datetime(2026, 6, 1, 0, 30, tzinfo=berlin_summer)
    assert log_table_names(start, start) == ["t_lg202605"]


# --- merge shards -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date_from", "date_to", "departments", "days", "expected"),
    [
        ("2026-06-01", "2026-06-01", ["Sales"], 7, [("2026-06-01", "2026-06-01", "Sales")]),
        ("2026-06-01", "2026-06-07", ["Sales"], 7, [("2026-06-01", "2026-06-07", "Sales")]),
        ("2026-06-01", "2026-06-08", ["Sales"], 7,
         [("2026-06-01", "2026-06-07", "Sales"), ("2026-06-08", "2026-06-08", "Sales")]),
        ("2026-06-01", "2026-06-03", ["B", None, "A", "B"], 2,
         [("2026-06-01", "2026-06-02", None), ("2026-06-01", "2026-06-02", "A"),
          ("2026-06-01", "2026-06-02", "B"), ("2026-06-03", "2026-06-03", None),
          ("2026-06-03", "2026-06-03", "A"), ("2026-06-03", "2026-06-03", "B")]),
        ("2026-02-27", "2026-03-02", ["X"], 1,
         [("2026-02-27", "2026-02-27", "X"), ("2026-02-28", "2026-02-28", "X"),
          ("2026-03-01", "2026-03-01", "X"), ("2026-03-02", "2026-03-02", "X")]),
        ("2026-06-01", "2026-06-30", [], 7, []),
    ],
)
def test_plan_merge_shards(
    date_from: str, date_to: str, departments: list[str | None], days: int,
    expected: list[tuple[str, str, str | None]],
) -> None:
    """Day runs of `days_per_shard` for each distinct department, None first, dates in order."""
    shards = plan_merge_shards(D(date_from), D(date_to), departments, days)
    assert shards == [MergeShard(D(a), D(b), dept) for a, b, dept in expected]
    assert len({s.key for s in shards}) == len(shards)


@pytest.mark.parametrize(
    ("departments", "max_shards", "run_days", "count"),
    [
        # 400 days (2026-01-01..2027-02-04), 1 department, budget 1000: 7-day runs fit → ceil(400/7) = 58 shards
        (1, 1000, 7, 58),
        # 50 departments: 1000 // 50 = 20 runs allowed → runs of ceil(400/20) = 20 days → 20 x 50 = 1000 shards
        (50, 1000, 20, 1000),
        # 300 departments: 1000 // 300 = 3 runs → runs of ceil(400/3) = 134 days → 3 x 300 = 900 shards
        (300, 1000, 134, 900),
    ],
)
def test_plan_merge_shards_stays_within_a_budget(departments: int, max_shards: int, run_days: int,
                                                  count: int) -> None:
    """With a budget, runs grow longer instead of the plan growing past it; every day is still covered once."""
    names = [f"D{i:03d}" for i in range(departments)]
    shards = plan_merge_shards(D("2026-01-01"), D("2027-02-04"), names, 7, max_shards)
    assert len(shards) == count
    assert max((s.date_to - s.date_from).days + 1 for s in shards) == run_days
    covered = sorted((s.department, s.date_from + timedelta(days=i)) for s in shards
                     for i in range((s.date_to - s.date_from).days + 1))
    assert covered == sorted((n, D("2026-01-01") + timedelta(days=i)) for n in names for i in range(400))


@pytest.mark.parametrize(
    ("date_from", "date_to", "days", "message"),
    [
        ("2026-06-02", "2026-06-01", 7, "before date_from"),
        ("2026-06-01", "2026-06-02", 0, "at least 1"),
    ],
)
def test_plan_merge_shards_rejects_bad_input(date_from: str, date_to: str, days: int, message: str) -> None:
    """A reversed range or a shard size below one day is refused with a message saying why."""
    with pytest.raises(ValueError, match=message):
        plan_merge_shards(D(date_from), D(date_to), ["A"], days)


@pytest.mark.parametrize(
    ("department", "key"),
    [
        ("Sales", "2026-06-01..2026-06-07=Sales"),
        (None, "2026-06-01..2026-06-07-"),
        ("-", "2026-06-01..2026-06-07=-"),
    ],
)
def test_shard_key_names_days_and_department(department: str | None, key: str) -> None:
    """A shard's key spells its days and department; None and a department called '-' differ."""
    assert MergeShard(D("2026-06-01"), D("2026-06-07"), department).key == key


def test_shard_key_of_long_departments_fits_and_stays_distinct() -> None:
    """Departments too long for execution_stages.shard are shortened with a hash, still distinct."""
    long_a, long_b = "Research and Development " * 4 + "A", "Research and Development " * 4 + "B"
    keys = {MergeShard(D("2026-06-01"), D("2026-06-07"), d).key for d in (long_a, long_b)}
    assert len(keys) == 2
    assert all(len(k) <= 64 for k in keys)


@pytest.mark.parametrize("department", ["Sales", None, "Ünïcode ✓"])
def test_shard_json_round_trip(department: str | None) -> None:
    """A shard survives Celery's JSON serializer unchanged."""
    shard = MergeShard(D("2026-06-01"), D("2026-06-07"), department)
    assert MergeShard.from_json(json.loads(json.dumps(shard.as_json()))) == shard


def test_shard_rejects_reversed_days() -> None:
    """A shard whose last day is before its first is refused."""
    with pytest.raises(ValueError, match="before date_from"):
        MergeShard(D("2026-06-02"), D("2026-06-01"), "A")


# --- punch windows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "hours", "expected"),
    [
        ("2026-06-01 00:00", "2026-06-01 00:00", 6, [("2026-06-01 00:00", "2026-06-01 00:00")]),
        ("2026-06-01 00:00", "2026-06-01 06:00", 6, [("2026-06-01 00:00", "2026-06-01 06:00")]),
        ("2026-06-01 00:00", "2026-06-01 13:00", 6,
         [("2026-06-01 00:00", "2026-06-01 06:00"), ("2026-06-01 06:00", "2026-06-01 12:00"),
          ("2026-06-01 12:00", "2026-06-01 13:00")]),
        ("2026-06-01 00:00", "2026-06-01 01:00", 0.5,
         [("2026-06-01 00:00", "2026-06-01 00:30"), ("2026-06-01 00:30", "2026-06-01 01:00")]),
    ],
)
def test_plan_punch_windows(start: str, end: str, hours: float, expected: list[tuple[str, str]]) -> None:
    """Consecutive windows of `hours` cover the span, sharing boundaries, the last one shorter."""
    assert plan_punch_windows(utc(start), utc(end), hours) == [PunchWindow(utc(a), utc(b)) for a, b in expected]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (utc("2026-06-02 00:00"), utc("2026-06-01 00:00"), "before its start"),
        (datetime(2026, 6, 1), utc("2026-06-02 00:00"), "timezone-aware"),  # naive: the case tested
    ],
)
def test_punch_window_rejects_bad_bounds(start: datetime, end: datetime, message: str) -> None:
    """A reversed or naive window is refused with a message saying why."""
    with pytest.raises(ValueError, match=message):
        PunchWindow(start, end)


def test_punch_window_json_round_trip_is_utc() -> None:
    """A window survives JSON, spelled in UTC, and its key names the UTC span."""
    window = PunchWindow(datetime(2026, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))), utc("2026-06-01 06:00"))
    data = json.loads(json.dumps(window.as_json()))
    assert data == {"from": "2026-06-01T00:00:00+00:00", "to": "2026-06-01T06:00:00+00:00"}
    assert PunchWindow.from_json(data) == window
    assert window.key == "2026-06-01T00:00:00Z..2026-06-01T06:00:00Z"


# --- after an import --------------------------------------------------------------------------------------


def output(dates: tuple[str, str] | None, departments: list[str | None]) -> dict[str, Any]:
    """The parts of an `import_punches` output that planning reads."""
    return {"dates": None if dates is None else {"from": dates[0], "to": dates[1]}, "departments": departments}


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ([], []),
        ([output(None, [])], []),
        ([output(("2026-06-01", "2026-06-01"), ["Sales"])], [("2026-06-01", "2026-06-01", "Sales")]),
        ([output(("2026-06-01", "2026-06-02"), ["Sales"]), output(("2026-06-05", "2026-06-09"), [None, "Ops"]),
          output(None, [])],
         [("2026-06-01", "2026-06-07", None), ("2026-06-01", "2026-06-07", "Ops"),
          ("2026-06-01", "2026-06-07", "Sales"), ("2026-06-08", "2026-06-09", None),
          ("2026-06-08", "2026-06-09", "Ops"), ("2026-06-08", "2026-06-09", "Sales")]),
    ],
)
def test_plan_merge_after_import(outputs: list[dict[str, Any]], expected: list[tuple[str, str, str | None]]) -> None:
    """The import shards' date spans are joined and split into week shards for every department seen."""
    assert plan_merge_after_import(outputs, 7) == [MergeShard(D(a), D(b), dept) for a, b, dept in expected]


def _touched(**employees: tuple[str, str]) -> dict[str, Any]:
    """An import output listing the days each employee's taps touch."""
    return {"employees": {no: {"from": first, "to": last} for no, (first, last) in employees.items()}}


@pytest.mark.parametrize(
    ("outputs", "employee_nos", "expected"),
    [
        ([], None, []),  # no import: nothing to recompute
        ([_touched(E1=("2026-03-02", "2026-03-02"))], None, [("E1", "2026-03-02", "2026-03-02")]),  # one tap
        ([_touched(E1=("2026-03-02", "2026-03-02")), _touched(E1=("2026-03-03", "2026-03-04"),
                                                              E2=("2026-03-03", "2026-03-03"))],
         None, [("E1", "2026-03-02", "2026-03-04"), ("E2", "2026-03-03", "2026-03-03")]),  # spans joined
        ([_touched(E1=("2026-03-02", "2026-03-02"), E2=("2026-03-02", "2026-03-02"))], ["E2"],
         [("E2", "2026-03-02", "2026-03-02")]),  # only the stage's employees
        ([_touched(E1=("2026-03-02", "2026-03-02")), {"dates": None}], None, None),  # an older import: no list
    ],
)
def test_plan_merge_touched(outputs: list[dict[str, Any]], employee_nos: list[str] | None,
                            expected: list[tuple[str, str, str]] | None) -> None:
    """The (employee, days) pairs to recompute are the union of what the imports' taps touched."""
    spans = plan_merge_touched(outputs, employee_nos)
    assert spans == (None if expected is None else [(no, D(a), D(b)) for no, a, b in expected])


@pytest.mark.parametrize(("employees", "hours"), [
    (None, 24.0),  # everyone (a nightly): a window per day, a chord of them
    (["E1"], 168.0),  # one person over 7 days (168 h): one window, their logs only
    ([f"E{n}" for n in range(100)], 168.0),  # up to FEW_EMPLOYEES (100): still one
    ([f"E{n}" for n in range(101)], 24.0),  # more: day-long windows again (each reads only their logs)
])
def test_import_windows_of_a_merge_of_named_people(employees: list[str] | None, hours: float) -> None:
    """Seven days (168 h) of imports: day-long windows, or one window when a few people are named."""
    start = datetime(2026, 11, 24, tzinfo=UTC)
    assert import_window_hours(start, start + timedelta(days=7), employees) == hours


def test_a_long_range_of_a_few_people_imports_in_windows_of_31_days() -> None:
    """60 days for one person: windows of 31 days (744 h), not one of 60."""
    start = datetime(2026, 9, 1, tzinfo=UTC)
    assert import_window_hours(start, start + timedelta(days=60), ["E1"]) == 744.0
