"""Exceptions kept by the merge on MariaDB (DESIGN §11): derived from closed days, decisions that survive
recomputes, `overtime_approval: auto`, and every decision audited in its own transaction."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from operations.deciding import accept_exception, decide_overtime, list_exceptions
from pipelines.merge.days import MergeShard, merge_attendance
from pipelines.monthend.exceptions import ExceptionKind
from shared.config.errors import ConfigError
from shared.database.db import app_engine
from shared.database.tables import attendance_exceptions, operator_actions
from shared.runtime.runner import run_async
from tests.integration.biostar_fixtures import SetEnv, Staff
from tests.integration.scenarios import add_punches, hrsync, one_line_error
from tests.integration.stack_fixtures import app_rows

pytestmark = pytest.mark.integration

MONDAY = dt.date(2019, 3, 4)
EXEC = "00000000-0000-0000-0000-00000000c001"
SHIFTS = """
shifts:
  day: {{start: "09:00", end: "17:00", overtime_after_minutes: 0}}
  paid: {{start: "09:00", end: "17:00", overtime_after_minutes: 0, overtime_approval: auto}}
assignments: {{default: day, employees: {{"{auto}": paid}}}}
"""


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), dt.UTC)


def merge(staff: Staff, execution_id: str = EXEC, day: dt.date = MONDAY) -> dict[str, Any]:
    return run_async(merge_attendance(MergeShard(day, day, staff.department), execution_id)).output


def listed(staff: Staff, n: int) -> dict[str, dict[str, Any]]:
    items = run_async(list_exceptions(employee_no=staff.no(n)))
    return {item["kind"]: item for item in items}


def audit_of(staff: Staff) -> list[dict[str, Any]]:
    return [row for row in app_rows(operator_actions) if row["target"].startswith(staff.prefix)]


@pytest.fixture
def people(staff: Staff, hrsync_env: SetEnv, tmp_path: Path) -> Iterator[Staff]:
    """Employee 1 on a manual-approval shift, 2 on an `overtime_approval: auto` one, both with overtime off at 0."""
    shifts = tmp_path / "shifts.yaml"
    shifts.write_text(SHIFTS.format(auto=staff.no(2)))
    hrsync_env(timezone="UTC", shifts_file=str(shifts))
    staff.add(1)
    staff.add(2)
    yield staff

    async def purge() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(delete(attendance_exceptions).where(
                attendance_exceptions.c.employee_no.like(f"{staff.prefix}%")))

    run_async(purge())


def test_merge_derives_exceptions_and_auto_approves_overtime(people: Staff) -> None:
    """A late day with overtime is two exceptions; the auto shift's overtime is accepted and paid in full."""
    # 09:20 → 17:50 (window ends 18:00): late 20 (> grace 10), worked 510 = 480 scheduled + 30 overtime (> 0)
    add_punches(people, 1, at(MONDAY, "09:20"), at(MONDAY, "17:50"))
    add_punches(people, 2, at(MONDAY, "09:00"), at(MONDAY, "17:30"))  # overtime 30, on time
    output = merge(people)
    assert output["exceptions"] == 3
    one, two = listed(people, 1), listed(people, 2)
    assert sorted(one) == ["late", "overtime"]
    assert (one["late"]["severity"], one["late"]["state"]) == ("review", "open")
    assert (one["overtime"]["overtime_minutes"], one["overtime"]["approved_overtime_minutes"]) == (30, 0)
    assert sorted(two) == ["overtime"]
    assert (two["overtime"]["state"], two["overtime"]["approved_overtime_minutes"],
            two["overtime"]["reason"]) == ("accepted", 30, "overtime_approval: auto")
    assert merge(people, "00000000-0000-0000-0000-00000000c002")["exceptions"] == 0  # nothing changed


def test_a_decision_survives_a_recompute_and_reopens_when_its_figures_change(people: Staff) -> None:
    """Partial approval is paid; a recompute that changes the overtime makes it open, changed since decided."""
    add_punches(people, 1, at(MONDAY, "09:00"), at(MONDAY, "17:30"))  # worked 510 - 480 = overtime 30
    merge(people)
    item = run_async(decide_overtime(people.no(1), MONDAY, approve=True, minutes=20, reason="=project X",
                                     actor="hr", via="cli"))
    assert (item["state"], item["approved_overtime_minutes"], item["decided_by"]) == ("accepted", 20, "hr")
    merge(people, "00000000-0000-0000-0000-00000000c003")  # same figures: the decision stands
    assert listed(people, 1)["overtime"]["approved_overtime_minutes"] == 20
    add_punches(people, 1, at(MONDAY, "17:45"))  # last punch 17:45: overtime 30 → 45, the decision was on 30
    merge(people, "00000000-0000-0000-0000-00000000c004")
    overtime = listed(people, 1)["overtime"]
    assert (overtime["state"], overtime["changed_since_decided"], overtime["approved_overtime_minutes"],
            overtime["reason"]) == ("open", True, 0, "=project X")
    [action] = audit_of(people)
    assert (action["action"], action["actor"], action["details"]["minutes"]) == ("overtime.approve", "hr", 20)


def test_accepting_and_refusing_and_what_is_bad_input(people: Staff) -> None:
    """Accept keeps a late day; refuse pays none; minutes above the day's overtime are bad input, unaudited."""
    add_punches(people, 1, at(MONDAY, "09:30"), at(MONDAY, "17:20"))
    merge(people)
    kinds = listed(people, 1)
    assert kinds["late"]["state"] == "open"
    # worked 09:30→17:20 = 470 < 480 scheduled: no overtime; late 30
    assert "overtime" not in kinds
    with pytest.raises(ConfigError, match="no overtime to decide"):
        run_async(decide_overtime(people.no(1), MONDAY, approve=False, minutes=None, reason="x", actor="hr",
                                  via="cli"))
    accepted = run_async(accept_exception(people.no(1), MONDAY, ExceptionKind.LATE, "train strike", actor="hr",
                                          via="web"))
    assert (accepted["state"], accepted["reason"]) == ("accepted", "train strike")
    add_punches(people, 2, at(MONDAY, "09:00"), at(MONDAY, "17:40"))  # overtime 40 on the auto shift
    merge(people, "00000000-0000-0000-0000-00000000c005")
    with pytest.raises(ConfigError, match="--minutes: 41"):
        run_async(decide_overtime(people.no(2), MONDAY, approve=True, minutes=41, reason="x", actor="hr",
                                  via="cli"))
    refused = run_async(decide_overtime(people.no(2), MONDAY, approve=False, minutes=None, reason="no budget",
                                        actor="hr", via="cli"))
    assert (refused["state"], refused["approved_overtime_minutes"]) == ("accepted", 0)  # a refusal beats auto
    assert [(a["action"], a["via"]) for a in sorted(audit_of(people), key=lambda a: a["id"])] == [
        ("exception.accept", "web"), ("overtime.refuse", "cli")]


def test_a_correction_resolves_a_missing_punch(people: Staff) -> None:
    """One punch is a critical missing_punch; the day's second punch resolves it (kept, as resolved)."""
    add_punches(people, 1, at(MONDAY, "09:00"))
    merge(people)
    assert (listed(people, 1)["missing_punch"]["severity"], listed(people, 1)["missing_punch"]["state"]) == (
        "critical", "open")
    add_punches(people, 1, at(MONDAY, "17:00"))
    merge(people, "00000000-0000-0000-0000-00000000c006")
    assert listed(people, 1)["missing_punch"]["state"] == "resolved"
    assert run_async(list_exceptions(employee_no=people.no(1), only_open=True)) == []


def test_the_commands_list_decide_and_refuse_bad_input(people: Staff) -> None:
    """`exceptions --json` lists the decision made by `overtime approve`; bad minutes and kinds exit 2, unaudited."""
    add_punches(people, 1, at(MONDAY, "09:00"), at(MONDAY, "17:30"))  # worked 510 - 480 = overtime 30
    merge(people)
    done = hrsync("overtime", "approve", people.no(1), MONDAY.isoformat(), "--minutes", "31", "--reason", "x")
    one_line_error(done, 2, "--minutes: 31")
    one_line_error(hrsync("exceptions", "--kind", "lazy"), 2, "--kind")
    assert audit_of(people) == []
    done = hrsync("overtime", "approve", people.no(1), MONDAY.isoformat(), "--minutes", "10", "--reason", "ok")
    assert done.returncode == 0, done.stderr
    listing = json.loads(hrsync("exceptions", "--period", "2019-03", "--kind", "overtime", "--json").stdout)
    [item] = [i for i in listing if i["employee_no"] == people.no(1)]
    assert (item["state"], item["approved_overtime_minutes"], item["overtime_minutes"], item["reason"]) == (
        "accepted", 10, 30, "ok")
    assert [a["action"] for a in audit_of(people)] == ["overtime.approve"]
