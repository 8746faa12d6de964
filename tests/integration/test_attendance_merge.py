"""The attendance merge stage against real MariaDB databases: BioStar logs in, punches and days out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from pipelines.merge.days import (
    MergeShard,
    PunchWindow,
    import_punches,
    merge_attendance,
    plan_merge_shards_from_db,
    plan_merge_touched,
    plan_recompute_shards,
)
from pipelines.stage import StageResult
from shared.runtime.runner import run_async
from tests.integration.biostar_fixtures import SetEnv, Staff
from tests.integration.scenarios import DUAL, IDENTIFY, VERIFY, seed, utc

pytestmark = pytest.mark.integration

DURESS_VERIFY, DURESS_IDENTIFY = 0x1201, 0x1501
FAILURES = (0x1100, 0x1401, 0x1800, 0x1900)
OTHERS = (0x1700, 0x2000, 0x0F00, 0x1A00)  # neither success nor failure of authentication
MONDAY = dt.date(2026, 6, 1)
EXEC = "00000000-0000-0000-0000-00000000a001"


def import_window(start: str, end: str, **options: Any) -> StageResult:
    """Run `import_punches` over the UTC window `start`..`end`."""
    return run_async(import_punches(PunchWindow(utc(start), utc(end)), EXEC, **options))


def merge(staff: Staff, first: dt.date, last: dt.date, execution_id: str = EXEC,
          employee_nos: list[str] | None = None) -> StageResult:
    """Merge the test's department for `first`..`last` as one shard."""
    shard = MergeShard(first, last, staff.department)
    return run_async(merge_attendance(shard, execution_id, employee_nos))


def merge_after(staff: Staff, *imports: StageResult) -> list[StageResult]:
    """The (employee, days) shards the imports' taps touch, restricted to this test's department, each merged."""
    touched = plan_merge_touched([i.output for i in imports], None)
    assert touched is not None
    shards = [(s, nos) for s, nos in run_async(plan_recompute_shards(touched, 7)) if s.department == staff.department]
    return [run_async(merge_attendance(shard, EXEC, nos)) for shard, nos in shards]


def by_date(staff: Staff) -> dict[tuple[str, dt.date], dict[str, Any]]:
    return {(row["employee_no"], row["work_date"]): row for row in staff.days()}


def without(rows: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in columns} for row in rows]


# --- reading BioStar --------------------------------------------------------------------------------------


def test_window_reads_both_monthly_tables_with_the_overlap(biostar_db: str, staff: Staff) -> None:
    """A window just after a UTC month boundary reads the previous month's table through the overlap."""
    staff.add(1)
    user = staff.user(1)
    seed(biostar_db, (user, "2026-05-31 22:30", VERIFY), (user, "2026-05-31 23:59:59", VERIFY),
         (user, "2026-06-01 00:30", IDENTIFY), (user, "2026-06-01 03:00", DUAL),
         (user, "2026-05-31 21:59", VERIFY))  # before the overlap

    without_overlap = import_window("2026-06-01 00:00", "2026-06-01 06:00", overlap=dt.timedelta(0))
    assert without_overlap.output["punches"] == 2
    with_overlap = import_window("2026-06-01 00:00", "2026-06-01 06:00", overlap=dt.timedelta(hours=2))
    assert with_overlap.output["read"] == {"from": "2026-05-31T22:00:00+00:00", "to": "2026-06-01T06:00:00+00:00"}
    assert (with_overlap.output["punches"], with_overlap.output["punches_new"]) == (4, 2)
    assert [p["punched_at"] for p in staff.punches()] == [
        utc("2026-05-31 22:30"), utc("2026-05-31 23:59:59"), utc("2026-06-01 00:30"), utc("2026-06-01 03:00")]


def test_a_merge_of_named_people_reads_only_their_logs(biostar_db: str, staff: Staff) -> None:
    """Employees 1 and 2 and an unknown user punch; an import naming employee 1 reads only user 1's two logs
    (no punch of employee 2, nothing unmatched); naming nobody reads nothing."""
    staff.add(1)
    staff.add(2)
    seed(biostar_db, (staff.user(1), "2026-06-01 08:00", VERIFY), (staff.user(1), "2026-06-01 17:00", VERIFY),
         (staff.user(2), "2026-06-01 08:05", VERIFY), ("no-such-user", "2026-06-01 08:10", VERIFY))
    named = import_window("2026-06-01 00:00", "2026-06-02 00:00", employees=[staff.no(1)])
    assert (named.output["logs"], named.output["punches"], named.output["unmatched"]) == (2, 2, 0)
    assert {p["employee_no"] for p in staff.punches()} == {staff.no(1)}
    nobody = import_window("2026-06-01 00:00", "2026-06-02 00:00", employees=[])
    assert nobody.output["logs"] == 0


def test_default_overlap_comes_from_the_setting(biostar_db: str, staff: Staff, hrsync_env: SetEnv) -> None:
    """HRSYNC_BIOSTAR_READ_OVERLAP_MINUTES sets how much earlier a window's read starts."""
    hrsync_env(biostar_read_overlap_minutes="30")
    staff.add(1)
    seed(biostar_db, (staff.user(1), "2026-06-01 08:40", VERIFY), (staff.user(1), "2026-06-01 08:20", VERIFY))
    result = import_window("2026-06-01 09:00", "2026-06-01 10:00")
    assert result.output["read"]["from"] == "2026-06-01T08:30:00+00:00"
    assert result.output["punches"] == 1


def test_months_without_a_table_are_skipped(biostar_db: str, staff: Staff) -> None:
    """A window over months BioStar has no table for reads nothing and does not fail."""
    staff.add(1)
    seed(biostar_db, (staff.user(1), "2026-06-01 09:00", VERIFY))  # only t_lg202606 exists
    assert import_window("2026-04-10 00:00", "2026-05-02 00:00").output["logs"] == 0
    spanning = import_window("2026-04-10 00:00", "2026-06-02 00:00")
    assert (spanning.output["logs"], spanning.output["punches"]) == (1, 1)


@pytest.mark.parametrize(
    ("include_duress", "expected"),
    [
        (False, {VERIFY, IDENTIFY, DUAL, 0x1000, 0x10FF}),
        (True, {VERIFY, IDENTIFY, DUAL, 0x1000, 0x10FF, DURESS_VERIFY, DURESS_IDENTIFY}),
    ],
)
def test_only_authentication_successes_are_punches(
    biostar_db: str, staff: Staff, include_duress: bool, expected: set[int]
) -> None:
    """Successes (and duress ones when enabled) are stored; failures and other events never are."""
    staff.add(1)
    codes = (VERIFY, IDENTIFY, DUAL, 0x1000, 0x10FF, DURESS_VERIFY, DURESS_IDENTIFY, *FAILURES, *OTHERS)
    seed(biostar_db, *((staff.user(1), f"2026-06-01 10:{minute:02d}", code) for minute, code in enumerate(codes)))
    result = import_window("2026-06-01 10:00", "2026-06-01 11:00", include_duress=include_duress)
    assert {p["event_code"] for p in staff.punches()} == expected
    assert result.output["logs"] == len(expected)


def test_duress_setting_turns_duress_punches_on(biostar_db: str, staff: Staff, hrsync_env: SetEnv) -> None:
    """With HRSYNC_BIOSTAR_COUNT_DURESS=true, a stage without an explicit choice counts duress punches."""
    hrsync_env(biostar_count_duress="true")
    staff.add(1)
    seed(biostar_db, (staff.user(1), "2026-06-01 10:00", DURESS_VERIFY), (staff.user(1), "2026-06-01 10:05", 0x1100))
    assert import_window("2026-06-01 10:00", "2026-06-01 11:00").output["punches"] == 1


def test_device_filter_reads_only_those_devices(biostar_db: str, staff: Staff) -> None:
    """`devices` restricts the read to those BioStar devices; an empty list reads nothing."""
    staff.add(1)
    seed(biostar_db, (staff.user(1), "2026-06-01 09:00", VERIFY, 1), (staff.user(1), "2026-06-01 09:30", VERIFY, 2))
    assert import_window("2026-06-01 08:00", "2026-06-01 10:00", devices=[]).output["logs"] == 0
    assert import_window("2026-06-01 08:00", "2026-06-01 10:00", devices=[2]).output["punches"] == 1
    assert [p["device_id"] for p in staff.punches()] == [2]


def test_unknown_user_is_kept_as_unmatched_and_counted(biostar_db: str, staff: Staff) -> None:
    """Punches of a user id no employee has go to unmatched_punches and are counted, idempotently."""
    staff.add(1)
    stranger = staff.user(99)
    seed(biostar_db, (staff.user(1), "2026-06-01 09:00", VERIFY), (stranger, "2026-06-01 09:01", VERIFY),
         (stranger, "2026-06-01 17:01", IDENTIFY), (stranger, "2026-06-01 17:02", 0x1100))
    first = import_window("2026-06-01 00:00", "2026-06-02 00:00")
    assert {k: first.output[k] for k in ("logs", "punches", "unmatched", "unmatched_new", "unknown_user_count")} == {
        "logs": 3, "punches": 1, "unmatched": 2, "unmatched_new": 2, "unknown_user_count": 1}
    assert first.output["unknown_users"] == [stranger]
    assert first.rows_out == 3
    assert sorted((u["biostar_user_id"], u["event_code"]) for u in staff.unmatched()) == [
        (stranger, VERIFY), (stranger, IDENTIFY)]
    again = import_window("2026-06-01 00:00", "2026-06-02 00:00")
    assert (again.output["unmatched"], again.output["unmatched_new"]) == (2, 0)
    assert len(staff.unmatched()) == 2


# --- merging ----------------------------------------------------------------------------------------------


def test_running_twice_leaves_identical_punches_and_days(biostar_db: str, staff: Staff) -> None:
    """Import and merge run twice give the same punches and days; only computed_at moves on."""
    for n in (1, 2, 3):
        staff.add(n)
    seed(biostar_db,
         (staff.user(1), "2026-06-01 08:55", VERIFY), (staff.user(1), "2026-06-01 17:03", VERIFY),
         (staff.user(2), "2026-06-02 09:20", IDENTIFY), (staff.user(2), "2026-06-02 12:00", IDENTIFY),
         (staff.user(3), "2026-06-03 09:00", DUAL))

    def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        import_window("2026-05-31 00:00", "2026-06-08 00:00")
        result = merge(staff, MONDAY, MONDAY + dt.timedelta(days=6))
        return staff.punches(), staff.days(), result.output

    punches_1, days_1, output_1 = run()
    punches_2, days_2, output_2 = run()
    assert punches_1 == punches_2
    assert without(days_1, "computed_at") == without(days_2, "computed_at")
    assert all(b["computed_at"] > a["computed_at"] for a, b in zip(days_1, days_2, strict=True))
    # 12 absent + 1 half_day + 1 missing_punch + late 20 (2026-06-02 09:20) + early exit (12:00) = 16, written once
    assert (output_1.pop("exceptions"), output_2.pop("exceptions")) == (16, 0)
    assert output_1 == output_2 == {
        "rows": 21, "removed": 0, "employees": 3,
        "by_status": {"absent": 12, "half_day": 1, "missing_punch": 1, "off": 6, "present": 1}}
    days = by_date(staff)
    assert days[staff.no(1), MONDAY]["status"] == "present"
    assert days[staff.no(1), MONDAY]["worked_minutes"] == 488
    assert days[staff.no(2), MONDAY + dt.timedelta(days=1)]["late_minutes"] == 20


def test_late_punch_recomputes_its_day(biostar_db: str, staff: Staff) -> None:
    """A punch arriving after its day was merged makes the import's merge recompute that day."""
    staff.add(1)
    seed(biostar_db, (staff.user(1), "2026-06-01 09:02", VERIFY))
    first = import_window("2026-06-01 09:00", "2026-06-01 10:00")
    assert first.output["dates"] == {"from": "2026-06-01", "to": "2026-06-01"}
    merge_after(staff, first)
    assert by_date(staff)[staff.no(1), MONDAY]["status"] == "missing_punch"

    seed(biostar_db, (staff.user(1), "2026-06-01 17:04", VERIFY))  # logged at 17:04, arriving late
    late = import_window("2026-06-01 18:00", "2026-06-01 19:00", overlap=dt.timedelta(hours=2))
    assert late.output["punches_new"] == 1
    assert late.output["employees"] == {staff.no(1): {"from": "2026-06-01", "to": "2026-06-01"}}  # the late log
    results = merge_after(staff, late)
    assert sum(r.rows_out for r in results) >= 1
    day = by_date(staff)[staff.no(1), MONDAY]
    assert (day["status"], day["worked_minutes"], day["punch_count"]) == ("present", 482, 2)
    assert (day["first_in"], day["last_out"]) == (utc("2026-06-01 09:02"), utc("2026-06-01 17:04"))


def test_days_without_punches_get_absent_and_off_rows(staff: Staff) -> None:
    """Workdays with no punch are absent, weekends off; no rows before hire or for an idle inactive one."""
    staff.add(1)
    staff.add(2, hire_date=MONDAY + dt.timedelta(days=3))
    staff.add(3, status="inactive")
    staff.add(4, termination_date=MONDAY + dt.timedelta(days=1))
    result = merge(staff, MONDAY, MONDAY + dt.timedelta(days=6))
    statuses = [(row["employee_no"], row["work_date"].isoformat(), row["status"]) for row in staff.days()]
    week = ["absent"] * 5 + ["off"] * 2
    assert statuses == (
        [(staff.no(1), (MONDAY + dt.timedelta(days=i)).isoformat(), s) for i, s in enumerate(week)]
        + [(staff.no(2), (MONDAY + dt.timedelta(days=i)).isoformat(), week[i]) for i in range(3, 7)]
        + [(staff.no(4), (MONDAY + dt.timedelta(days=i)).isoformat(), week[i]) for i in range(2)]
    )
    assert result.output["by_status"] == {"absent": 9, "off": 4}


def test_changed_shift_assignment_replaces_the_old_rows(staff: Staff, hrsync_env: SetEnv, tmp_path: Path) -> None:
    """Rows of a shift the employee no longer works are removed when the shard is merged again."""
    staff.add(1)
    merge(staff, MONDAY, MONDAY + dt.timedelta(days=1))
    assert {row["shift_code"] for row in staff.days()} == {"day"}
    shifts = tmp_path / "shifts.yaml"
    shifts.write_text(
        'shifts:\n  day: {start: "09:00", end: "17:00"}\n  night: {start: "22:00", end: "06:00"}\n'
        f'assignments:\n  default: day\n  employees: {{"{staff.no(1)}": night}}\n'
    )
    hrsync_env(shifts_file=str(shifts))
    result = merge(staff, MONDAY, MONDAY + dt.timedelta(days=1))
    assert result.output["removed"] == 2
    assert [(row["work_date"], row["shift_code"]) for row in staff.days()] == [
        (MONDAY, "night"), (MONDAY + dt.timedelta(days=1), "night")]


def test_employee_changed_merges_only_that_employee(staff: Staff) -> None:
    """Planning from the employees table for one employee merges that employee's days and nobody else's."""
    staff.add(1)
    staff.add(2)
    shards = run_async(plan_merge_shards_from_db(MONDAY, MONDAY + dt.timedelta(days=2), 2, [staff.no(2)]))
    assert shards == [MergeShard(MONDAY, MONDAY + dt.timedelta(days=1), staff.department),
                      MergeShard(MONDAY + dt.timedelta(days=2), MONDAY + dt.timedelta(days=2), staff.department)]
    for shard in shards:
        run_async(merge_attendance(shard, EXEC, [staff.no(2)]))
    assert {row["employee_no"] for row in staff.days()} == {staff.no(2)}
    assert len(staff.days()) == 3


def test_demo_sqlite_source(staff: Staff, hrsync_env: SetEnv, tmp_path: Path) -> None:
    """The embedded SQLite BioStar source written by `create_demo_biostar` is read like MariaDB."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'biostar.db'}"
    hrsync_env(biostar_url=url)
    staff.add(1)
    seed(url, (staff.user(1), "2026-06-30 23:30", VERIFY), (staff.user(1), "2026-07-01 08:59", VERIFY),
         (staff.user(1), "2026-07-01 17:00", VERIFY), (staff.user(1), "2026-07-01 17:00:30", VERIFY),
         (staff.user(1), "2026-07-01 12:00", 0x1401), (staff.user(99), "2026-07-01 12:00", VERIFY))
    result = import_window("2026-07-01 00:00", "2026-07-02 00:00")
    assert {k: result.output[k] for k in ("logs", "punches", "unmatched")} == {"logs": 5, "punches": 4, "unmatched": 1}
    merge_after(staff, result)
    day = by_date(staff)[staff.no(1), dt.date(2026, 7, 1)]
    assert (day["status"], day["worked_minutes"], day["punch_count"]) == ("present", 481, 2)


def test_berlin_dst_weekend(biostar_db: str, staff: Staff, hrsync_env: SetEnv, tmp_path: Path) -> None:
    """In Europe/Berlin, a night shift over the spring-forward night lasts 7 real hours; dates are local."""
    shifts = tmp_path / "shifts.yaml"
    shifts.write_text(
        'shifts:\n'
        '  day: {start: "09:00", end: "17:00"}\n'
        '  night: {start: "22:00", end: "06:00", workdays: [mon, tue, wed, thu, fri, sat, sun],'
        ' half_day_below_hours: 7.5}\n'
        'assignments:\n  default: day\n'
        f'  employees: {{"{staff.no(2)}": night}}\n'
        'holidays: ["2026-03-30"]\n'
    )
    hrsync_env(timezone="Europe/Berlin", shifts_file=str(shifts))
    staff.add(1)
    staff.add(2)
    seed(biostar_db,
         # day shift on Friday 27 (CET, UTC+1) and on the holiday Monday 30 (CEST, UTC+2)
         (staff.user(1), "2026-03-27 07:58", VERIFY), (staff.user(1), "2026-03-27 16:00", VERIFY),
         (staff.user(1), "2026-03-30 07:00", VERIFY), (staff.user(1), "2026-03-30 07:30", VERIFY),
         # night of Sat 28 → Sun 29: 22:00 CET = 21:00 UTC to 06:00 CEST = 04:00 UTC
         (staff.user(2), "2026-03-28 20:55", VERIFY), (staff.user(2), "2026-03-29 04:05", VERIFY),
         # night of Sun 29 → Mon 30, entirely CEST: 20:00 to 04:00 UTC
         (staff.user(2), "2026-03-29 20:00", VERIFY), (staff.user(2), "2026-03-30 04:00", VERIFY))
    imported = import_window("2026-03-27 00:00", "2026-03-31 00:00")
    assert imported.output["dates"]["from"] <= "2026-03-27" <= "2026-03-30" <= imported.output["dates"]["to"]
    merge(staff, dt.date(2026, 3, 27), dt.date(2026, 3, 30))
    days = by_date(staff)
    friday, saturday, sunday, monday = (dt.date(2026, 3, d) for d in (27, 28, 29, 30))
    assert (days[staff.no(1), friday]["status"], days[staff.no(1), friday]["worked_minutes"]) == ("present", 482)
    assert days[staff.no(1), saturday]["status"] == days[staff.no(1), sunday]["status"] == "off"
    assert (days[staff.no(1), monday]["status"], days[staff.no(1), monday]["first_in"]) == (
        "holiday", utc("2026-03-30 07:00"))
    night = days[staff.no(2), saturday]
    assert (night["status"], night["worked_minutes"], night["early_exit_minutes"]) == ("half_day", 430, 0)
    assert night["first_in"] == utc("2026-03-28 20:55")
    assert (days[staff.no(2), sunday]["status"], days[staff.no(2), sunday]["worked_minutes"]) == ("present", 480)
    assert days[staff.no(2), friday]["status"] == "absent"
