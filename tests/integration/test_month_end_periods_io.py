"""Period close and reopen on MariaDB and RabbitMQ (DESIGN §11): refusals with counts, versions, one version
for concurrent closes, and a frozen month that no recompute path changes (what it would have changed is kept)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from operations.closing import close_period, period_info, reopen_period
from operations.corrections import add_punch
from operations.deciding import decide_overtime
from pipelines.merge.days import MergeShard, PunchWindow, import_punches, merge_attendance
from pipelines.monthend.period import Period
from pipelines.monthend.periods import CloseRefused
from pipelines.monthend.store import PeriodClosed
from shared.database.db import app_engine
from shared.database.tables import absences, operator_actions, period_changes, periods, punches
from shared.runtime.runner import run_async
from tests.integration.biostar_fixtures import SetEnv, Staff
from tests.integration.scenarios import IDENTIFY, add_punches, hrsync, published, seed
from tests.integration.stack_fixtures import app_rows

pytestmark = pytest.mark.integration

APRIL = Period(2019, 4)  # 2019-04-01 is a Monday; 22 workdays
MAY = Period(2019, 5)


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), dt.UTC)


def merge_month(staff: Staff, period: Period, execution_id: str, employees: list[str] | None = None) -> Any:
    shard = MergeShard(period.first_day, period.last_day, staff.department)
    return run_async(merge_attendance(shard, execution_id, employees)).output


def actions(target: str, staff: Staff) -> list[dict[str, Any]]:
    """The audit rows of `target` written during this test (periods are shared by the session's tests)."""
    rows = app_rows(operator_actions, operator_actions.c.target == target, operator_actions.c.id > staff.first_action)
    return sorted(rows, key=lambda a: a["id"])


@pytest.fixture
def month_staff(staff: Staff, hrsync_env: SetEnv, event_plane: str) -> Iterator[Staff]:
    """Employee 1 on the default day shift, present on the first Monday and absent on the other workdays."""
    hrsync_env(timezone="UTC")
    staff.first_action = max((row["id"] for row in app_rows(operator_actions)), default=0)  # type: ignore[attr-defined]
    staff.add(1)
    add_punches(staff, 1, at(APRIL.first_day, "09:00"), at(APRIL.first_day, "17:00"))
    yield staff

    async def purge() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            for table in (periods, period_changes):
                await conn.execute(delete(table).where(table.c.period.in_([str(APRIL), str(MAY)])))
            await conn.execute(delete(absences).where(absences.c.employee_no.like(f"{staff.prefix}%")))

    run_async(purge())


def test_a_close_is_refused_with_counts_then_forced_and_published(month_staff: Staff, event_plane: str) -> None:
    """Open critical exceptions refuse a close (no change, no audit); --force closes, audits and publishes."""
    merge_month(month_staff, APRIL, "00000000-0000-0000-0000-00000000d001")
    # 22 workdays in April 2019, one worked: 21 days `absent`, each a critical exception
    done = hrsync("period", "close", str(APRIL), "--reason", "month end")
    assert done.returncode == 1, done.stderr
    assert "open critical exceptions (absent 21)" in done.stderr
    assert run_async(period_info(APRIL))["state"] == "open"
    assert actions(f"period:{APRIL}", month_staff) == []
    one_line = hrsync("period", "close", str(APRIL), "--reason", " ")
    assert one_line.returncode == 2
    assert "--reason" in one_line.stderr
    done = hrsync("period", "close", str(APRIL), "--reason", "absences known", "--force", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["state"], info["version"], info["forced"], info["event_id"]) == (
        "closed", 1, True, f"hrsync-period-closed:{APRIL}:v1")
    [action] = actions(f"period:{APRIL}", month_staff)
    assert (action["action"], action["details"]["forced_over"]) == ("period.close", {"absent": 21})
    [event] = [e for e in published(event_plane) if e["type"] == "hrsync.period.closed"]
    assert (event["id"], event["data"]) == (f"hrsync-period-closed:{APRIL}:v1", {"period": str(APRIL), "version": 1})
    again = hrsync("period", "close", str(APRIL), "--reason", "twice", "--force")
    assert again.returncode == 1
    assert "closed already (version 1)" in again.stderr


def test_concurrent_closes_make_one_version_and_reopen_makes_the_next(month_staff: Staff) -> None:
    """Two closes at once: one version, the other refused; reopen, close again: version 2."""
    merge_month(month_staff, APRIL, "00000000-0000-0000-0000-00000000d002")

    async def both() -> list[Any]:
        return list(await asyncio.gather(*(close_period(APRIL, f"close {n}", force=True, actor="hr", via="cli")
                                           for n in (1, 2)), return_exceptions=True))

    results = run_async(both())
    assert sorted(type(r).__name__ for r in results) == ["CloseRefused", "dict"]
    assert [row["version"] for row in app_rows(periods, periods.c.period == str(APRIL))] == [1]
    run_async(reopen_period(APRIL, "late sick note", actor="hr", via="cli"))
    assert run_async(period_info(APRIL))["state"] == "open"
    with pytest.raises(CloseRefused, match="not closed"):
        run_async(reopen_period(APRIL, "twice", actor="hr", via="cli"))
    info = run_async(close_period(APRIL, "again", force=True, actor="hr", via="cli"))
    assert (info["state"], info["version"]) == ("closed", 2)
    audited = [a["action"] for a in actions(f"period:{APRIL}", month_staff)]
    assert audited == ["period.close", "period.reopen", "period.close"]


def test_a_frozen_month_keeps_what_every_recompute_would_change(month_staff: Staff, biostar_db: str) -> None:
    """A late BioStar punch, an absence change, a replay and a correction's recompute leave the days as closed."""
    staff = month_staff
    merge_month(staff, APRIL, "00000000-0000-0000-0000-00000000d003")
    run_async(close_period(APRIL, "frozen", force=True, actor="hr", via="cli"))
    days_at_close = staff.days()
    tuesday, wednesday, thursday = (APRIL.first_day + dt.timedelta(days=n) for n in (1, 2, 3))

    # a late BioStar punch of Tuesday arrives: the punches path imports and recomputes that day
    seed(biostar_db, (staff.user(1), f"{tuesday} 09:00", IDENTIFY), (staff.user(1), f"{tuesday} 17:00", IDENTIFY))
    run_async(import_punches(PunchWindow(at(tuesday, "00:00"), at(tuesday, "23:59")),
                             "00000000-0000-0000-0000-00000000d004", employees=[staff.no(1)]))
    merge_month(staff, APRIL, "00000000-0000-0000-0000-00000000d004", [staff.no(1)])

    async def absence() -> None:  # an approved full absence on Wednesday (as the HRIS stage upserts it)
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(absences.insert().values(
                absence_id=f"{staff.prefix}-A1", employee_no=staff.no(1), kind="sick", date_from=wednesday,
                date_to=wednesday, part="full", status="approved", updated_at=dt.datetime.now(dt.UTC),
                synced_at=dt.datetime.now(dt.UTC)))

    run_async(absence())
    merge_month(staff, APRIL, "00000000-0000-0000-0000-00000000d005")  # the nightly / absence recompute
    merge_month(staff, APRIL, "00000000-0000-0000-0000-00000000d006")  # a replay reruns the stage: same refusal
    add_punches(staff, 1, at(thursday, "09:00"), at(thursday, "17:00"))  # stored before the close, recomputed after
    merge_month(staff, APRIL, "00000000-0000-0000-0000-00000000d007", [staff.no(1)])

    assert staff.days() == days_at_close
    changes = run_async(period_info(APRIL))["changes"]
    seen = sorted((c["work_date"], c["execution_id"][-4:], c["before"]["status"], c["after"]["status"])
                  for c in changes)
    assert seen == [
        (str(tuesday), "d004", "absent", "present"), (str(tuesday), "d005", "absent", "present"),
        (str(tuesday), "d006", "absent", "present"), (str(tuesday), "d007", "absent", "present"),
        (str(wednesday), "d005", "absent", "on_leave"), (str(wednesday), "d006", "absent", "on_leave"),
        (str(wednesday), "d007", "absent", "on_leave"),
        (str(thursday), "d007", "absent", "present"),
    ]
    with pytest.raises(PeriodClosed, match="period 2019-04 is closed"):  # a correction is refused, naming it
        run_async(add_punch(staff.no(1), at(thursday, "12:00"), "forgot", actor="hr", via="cli"))
    with pytest.raises(PeriodClosed, match="period 2019-04 is closed"):
        run_async(decide_overtime(staff.no(1), wednesday, approve=False, minutes=None, reason="x", actor="hr",
                                  via="cli"))
    assert [p for p in staff.punches() if p["punched_at"] == at(thursday, "12:00")] == []
    assert app_rows(punches, punches.c.source == "manual", punches.c.employee_no == staff.no(1)) == []
    shown = hrsync("period", "show", str(APRIL))
    assert shown.returncode == 0
    assert "changes kept instead of written (8)" in shown.stdout

    run_async(reopen_period(APRIL, "the sick note counts", actor="hr", via="cli"))
    merge_month(staff, APRIL, "00000000-0000-0000-0000-00000000d008")
    by_day = {row["work_date"]: row["status"] for row in staff.days()}
    assert (by_day[tuesday], by_day[wednesday], by_day[thursday]) == ("present", "on_leave", "present")
