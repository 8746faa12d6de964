"""Attendance I/O on the real services: absences through ODBC from PostgreSQL, open days and their mails,
the merge's newer-wins upsert on MariaDB, and manual corrections (audited, recompute requested on RabbitMQ)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from operations.corrections import add_punch, list_punches, void_punch
from pipelines.extract.absences import absence_params, extract_absences
from pipelines.extract.params import ExtractParams
from pipelines.extract.source import HrisSourceError
from pipelines.extract.watermark import commit_watermark, next_watermark, pin_extract_window
from pipelines.mail import build_notifications
from pipelines.merge.days import MergeShard, _upsert_days, merge_attendance, plan_recompute_shards
from pipelines.outputs import clear_absence_recomputes, pending_absence_recomputes
from shared.config.errors import ConfigError
from shared.database.db import app_engine
from shared.database.tables import absences, notifications, operator_actions, punch_corrections
from shared.runtime.runner import run_async
from tests.integration.biostar_fixtures import SetEnv, Staff
from tests.integration.hris_fixtures import PgHris
from tests.integration.scenarios import add_punches, published
from tests.integration.stack_fixtures import app_rows as rows_of

pytestmark = pytest.mark.integration

MONDAY = dt.date(2026, 6, 1)
EXEC = "00000000-0000-0000-0000-00000000b002"


def utc(day: dt.date, hhmm: str) -> dt.datetime:
    """`day` at `hhmm` UTC (the tests run with HRSYNC_TIMEZONE=UTC: local time = UTC)."""
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), dt.UTC)


def merge_day(staff: Staff, day: dt.date, now: dt.datetime | None = None) -> None:
    run_async(merge_attendance(MergeShard(day, day, staff.department), EXEC, now=now))


def day_row(staff: Staff, n: int, day: dt.date = MONDAY) -> dict[str, Any]:
    [row] = [r for r in staff.days() if r["employee_no"] == staff.no(n) and r["work_date"] == day]
    return row


def mails_to(address: str) -> list[dict[str, Any]]:
    return rows_of(notifications, notifications.c.recipient == address)


@pytest.fixture
def team(staff: Staff, hrsync_env: SetEnv) -> Staff:
    """A manager (1) and a worker (2) reporting to them, both with addresses, on the default day shift."""
    hrsync_env(timezone="UTC")
    staff.add(1, email=f"m-{staff.prefix.lower()}@example.com")
    staff.add(2, email=f"w-{staff.prefix.lower()}@example.com", manager_no=staff.no(1),
              full_name="Wanda Worker")
    return staff


def test_an_open_day_is_never_mailed_and_closes_later(team: Staff) -> None:
    """A day computed at 10:00 with one punch is `open` and mails nothing; closed, it mails once."""
    add_punches(team, 2, utc(MONDAY, "09:05"))
    merge_day(team, MONDAY, now=utc(MONDAY, "10:00"))  # day shift 09:00-17:00, window until 18:00: in progress
    row = day_row(team, 2)
    assert (row["status"], row["first_in"], row["worked_minutes"]) == ("open", utc(MONDAY, "09:05"), 0)
    run_async(build_notifications(MONDAY, MONDAY, EXEC))
    assert mails_to(f"w-{team.prefix.lower()}@example.com") == []
    assert mails_to(f"m-{team.prefix.lower()}@example.com") == []  # the team's day is not over

    merge_day(team, MONDAY)  # computed after the window: closed
    assert day_row(team, 2)["status"] == "missing_punch"
    run_async(build_notifications(MONDAY, MONDAY, EXEC))
    run_async(build_notifications(MONDAY, MONDAY, EXEC))
    assert [m["kind"] for m in mails_to(f"w-{team.prefix.lower()}@example.com")] == ["missing_punch"]
    [digest] = mails_to(f"m-{team.prefix.lower()}@example.com")
    assert "Wanda Worker" in digest["body_text"]


def test_a_recompute_that_started_earlier_never_overwrites_a_later_one(team: Staff) -> None:
    """The merge's upsert on MariaDB (the driver-level write) keeps a row written by a later-started run and
    takes a newer one."""
    add_punches(team, 2, utc(MONDAY, "09:00"), utc(MONDAY, "17:00"))
    merge_day(team, MONDAY)
    stored = day_row(team, 2)
    assert stored["status"] == "present"
    stale = {**stored, "status": "absent", "first_in": None, "last_out": None, "worked_minutes": 0,
             "punch_count": 0, "computed_at": stored["computed_at"] - dt.timedelta(seconds=5)}

    async def write(row: dict[str, Any]) -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await _upsert_days(conn, [row])

    run_async(write(stale))
    assert day_row(team, 2) == stored
    run_async(write({**stale, "computed_at": stored["computed_at"] + dt.timedelta(seconds=5)}))
    assert day_row(team, 2)["status"] == "absent"


def absence(staff: Staff, n: int, absence_id: str, status: str, part: str = "full",
            updated: str = "2026-05-20 08:00") -> dict[str, Any]:
    return {"absence_id": f"{staff.prefix}-{absence_id}", "employee_no": staff.no(n), "kind": "vacation",
            "date_from": MONDAY, "date_to": MONDAY, "part": part, "status": status,
            "updated_at": dt.datetime.fromisoformat(updated)}


def extract(execution_id: str = EXEC) -> dict[str, Any]:
    """One incremental absences extract (window pinned, mark committed afterwards); its output."""
    params = run_async(pin_extract_window(absence_params(ExtractParams())))
    output = run_async(extract_absences(params, execution_id)).output
    mark = next_watermark(params, [output])
    if mark is not None:
        run_async(commit_watermark(params.source, mark))
    return output


def recompute_marked(staff: Staff) -> None:
    """What a date-range merge does with the marks: recompute those days, then clear the marks."""
    todo, marks = run_async(pending_absence_recomputes(dt.date.today(), [staff.no(2)]))
    for shard, employee_nos in run_async(plan_recompute_shards(
            [(m.employee_no, m.date_from, m.date_to) for m in todo], 7)):
        run_async(merge_attendance(shard, EXEC, employee_nos))
    run_async(clear_absence_recomputes(marks))


def test_absences_come_through_odbc_and_a_cancellation_recomputes_the_day(hris: PgHris, team: Staff) -> None:
    """An approved absence read from PostgreSQL makes a day `on_leave`; cancelled later, the day turns
    `absent` again through the mark, and the digest built afterwards is a corrected one."""
    hris.replace_absences([absence(team, 2, "A1", "approved"), absence(team, 2, "A2", "rejected", "am")])
    first = extract()
    assert (first["read"], first["inserted"], first["recompute_marked"]) == (2, 2, 1)
    stored = {r["absence_id"]: r for r in rows_of(absences, absences.c.employee_no == team.no(2))}
    assert stored[f"{team.prefix}-A1"]["recompute_from"] == MONDAY
    assert stored[f"{team.prefix}-A2"]["recompute_from"] is None  # neither version approved
    merge_day(team, MONDAY)
    assert (day_row(team, 2)["status"], day_row(team, 2)["absence_kind"]) == ("on_leave", "vacation")
    run_async(build_notifications(MONDAY, MONDAY, EXEC))
    [digest] = mails_to(f"m-{team.prefix.lower()}@example.com")
    assert "On leave (1)" in digest["body_text"]

    hris.replace_absences([absence(team, 2, "A1", "cancelled", updated="2026-05-21 08:00"),
                           absence(team, 2, "A2", "rejected", "am")])
    second = extract()
    assert (second["updated"], second["unchanged"]) == (1, 1)
    recompute_marked(team)
    assert (day_row(team, 2)["status"], day_row(team, 2)["absence_kind"]) == ("absent", None)
    assert rows_of(absences, absences.c.recompute_from.is_not(None), absences.c.employee_no == team.no(2)) == []
    run_async(build_notifications(MONDAY, MONDAY, EXEC))
    corrected = [m for m in mails_to(f"m-{team.prefix.lower()}@example.com") if m["subject"].startswith("Corrected")]
    assert len(corrected) == 1
    assert "Wanda Worker" in corrected[0]["body_text"]
    assert "absent" in corrected[0]["body_text"]


def test_a_missing_absences_view_names_the_setting(hris: PgHris, hrsync_env: SetEnv) -> None:
    """An absences query the HRIS refuses fails the extract with HRSYNC_HRIS_ABSENCES_QUERY in the message."""
    hrsync_env(hris_absences_query="SELECT absence_id, employee_no, kind, date_from, date_to, part, status, "
                                   "updated_at FROM hrsync_no_such_view")
    with pytest.raises(HrisSourceError, match="HRSYNC_HRIS_ABSENCES_QUERY"):
        run_async(extract_absences(ExtractParams(full=True, source="hris_absences"), EXEC))


def test_a_correction_added_then_voided_is_audited_and_requests_its_day(team: Staff, event_plane: str) -> None:
    """Adding then voiding a manual punch leaves two corrections, two audit rows and two recompute events;
    merged each time, the day is present, then missing_punch again."""
    add_punches(team, 2, utc(MONDAY, "08:58"))
    added = run_async(add_punch(team.no(2), utc(MONDAY, "17:02"), "forgot to badge out", actor="alice", via="cli"))
    assert (added["source"], added["device_id"], added["voided"]) == ("manual", None, False)
    merge_day(team, MONDAY)
    assert day_row(team, 2)["status"] == "present"
    listed = run_async(list_punches(team.no(2), MONDAY, MONDAY))
    assert [(p["source"], p["added_reason"]) for p in listed] == [("device", None), ("manual", "forgot to badge out")]

    voided = run_async(void_punch(added["id"], "badge found: left at 12:00", actor="bob", via="web"))
    assert voided["voided"] is True
    merge_day(team, MONDAY)
    assert day_row(team, 2)["status"] == "missing_punch"
    with pytest.raises(ConfigError, match="void already"):
        run_async(void_punch(added["id"], "again", actor="bob", via="web"))

    audit = rows_of(operator_actions, operator_actions.c.target == f"punch:{added['id']}")
    assert sorted((a["action"], a["actor"], a["via"]) for a in audit) == [
        ("punch.add", "alice", "cli"), ("punch.void", "bob", "web")]
    assert len(rows_of(punch_corrections, punch_corrections.c.punch_id == added["id"])) == 2
    events = published(event_plane)
    assert [e["id"] for e in events] == [added["recompute"]["event_id"], voided["recompute"]["event_id"]]
    assert all(e["data"]["scope"] == "attendance" and e["data"]["employees"] == [team.no(2)] for e in events)
    assert all(e["data"]["from"] <= MONDAY.isoformat() <= e["data"]["to"] for e in events)


def test_bad_corrections_are_refused_before_anything_is_written(team: Staff, event_plane: str) -> None:
    """An unknown employee, an empty reason or an unknown punch id is a ConfigError; nothing is stored."""
    with pytest.raises(ConfigError, match="EMP"):
        run_async(add_punch(f"{team.prefix}-nobody", utc(MONDAY, "09:00"), "x", actor="a", via="cli"))
    with pytest.raises(ConfigError, match="--reason"):
        run_async(add_punch(team.no(2), utc(MONDAY, "09:00"), "  ", actor="a", via="cli"))
    with pytest.raises(ConfigError, match="no punch"):
        run_async(void_punch(2**40, "x", actor="a", via="cli"))
    assert rows_of(punch_corrections, punch_corrections.c.employee_no.like(f"{team.prefix}%")) == []
    assert published(event_plane) == []
