"""`hrsync demo` on a fresh machine: a subprocess whose only hrsync setting is HRSYNC_HOME, no services."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest

from cli import demo_data
from cli.demo import DEMO_ZONE
from cli.demo_company import CREWS
from pipelines.mail.smtp import eml_path
from tests.integration.scenarios import clean_env

pytestmark = pytest.mark.slow


def demo_processes(demo_pid: int) -> list[psutil.Process]:
    """Processes still running that the demo started: its worker is named `demo-<demo pid>@host`."""
    mark = f"demo-{demo_pid}@"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(mark in part for part in process.info["cmdline"] or ()):
                found.append(process)
        except psutil.Error:
            continue
    return found


def local_time(stored: str, zone: ZoneInfo) -> dt.datetime:
    """A naive UTC instant as SQLite stores it, as a naive local wall-clock time."""
    return dt.datetime.fromisoformat(stored).replace(tzinfo=dt.UTC).astimezone(zone).replace(tzinfo=None)


def check_showcase(db: sqlite3.Connection) -> None:
    """The demo's showcase rows (`cli.demo_data.Showcase`, fixed local times) are what DESIGN §6 gives by hand."""
    db.row_factory = sqlite3.Row
    zone = ZoneInfo(DEMO_ZONE)
    first, last = (dt.date.fromisoformat(d) for d in db.execute(
        "SELECT min(work_date), max(work_date) FROM attendance_days").fetchone())
    data = demo_data.generate(first, last, zone)  # seeded: the same range gives the same company and cases
    show, dates = data.showcase, data.dates

    def day(case: demo_data.Case) -> dict[str, Any]:
        [row] = db.execute("SELECT * FROM attendance_days WHERE employee_no = ? AND work_date = ?",
                           (case.employee_no, case.day.isoformat())).fetchall()
        return dict(row)

    vacation = day(show.vacation)
    # a full approved vacation on a workday without punches: absent becomes on_leave, with the absence's kind
    assert (vacation["status"], vacation["absence_kind"]) == ("on_leave", "vacation")
    cancelled = day(show.cancelled)
    # cancelled counts for nothing; 08:55→17:05 = 490 min ≥ 6 h, -30 break = 460 ≥ 4 h → present, no kind
    assert (cancelled["status"], cancelled["absence_kind"], cancelled["worked_minutes"]) == ("present", None, 460)
    half = day(show.half_day)
    # pm: 08:57→13:02 = 245 min, no break; ≥ 1 h (halved) → present; early ref. 13:00 → 0; 245 - 240 = 5 ≤ 15 → 0
    assert (half["status"], half["worked_minutes"], half["early_exit_minutes"], half["overtime_minutes"],
            half["absence_kind"]) == ("present", 245, 0, 0, "vacation")
    night = day(show.night)
    # rotation → night 22:00-06:00, filed under its start; 21:52→06:07 = 495, -30 break = 465; 465 - 450 = 15 > 0
    assert (night["shift_code"], night["worked_minutes"], night["overtime_minutes"]) == ("night", 465, 15)
    assert local_time(night["first_in"], zone) == dt.datetime.combine(show.night.day, dt.time(21, 52))
    assert local_time(night["last_out"], zone) == dt.datetime.combine(show.night.day + dt.timedelta(days=1),
                                                                      dt.time(6, 7))
    overtime = day(show.overtime)
    # 08:12→17:58 = 586 min ≥ 6 h, -30 = 556 (worked: 555, rounded down to 5); excess 556 - 450 = 106 > 15 → 105
    assert (overtime["worked_minutes"], overtime["overtime_minutes"]) == (555, 105)
    statuses = db.execute("SELECT e.department IN ({}), a.status, count(*) FROM attendance_days a JOIN employees e "
                          "ON e.employee_no = a.employee_no WHERE a.work_date = ? GROUP BY 1, 2"
                          .format(", ".join("?" * len(CREWS))), (*CREWS, dates.saxony.isoformat())).fetchall()
    plant = {status for in_plant, status, _ in statuses if in_plant}
    # the Saxony calendar is the crews' only (calendars.departments): holiday (or off) there, a workday elsewhere
    assert "holiday" in plant
    assert plant <= {"holiday", "off"}
    assert "holiday" not in {status for in_plant, status, _ in statuses if not in_plant}


def test_demo_runs_the_nightly_chain_with_nothing_installed(tmp_path: Path) -> None:
    """The demo exits 0, prints its summary, crews and trace, writes one .eml per outbox row, leaves no process,
    and its showcase days are what the rules give by hand."""
    home = tmp_path / "hrsync-home"
    hrsync = os.path.join(os.path.dirname(sys.executable), "hrsync")
    started = time.monotonic()
    process = subprocess.Popen([hrsync, "demo"], env=clean_env(home), cwd=tmp_path,  # no .env from the repo
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=150)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    seconds = time.monotonic() - started
    print(f"hrsync demo took {seconds:.1f}s")  # reported, not asserted: machines differ
    leftovers = psutil.Process().children(recursive=True) + demo_processes(process.pid)

    assert process.returncode == 0, output[-4000:]
    assert not leftovers, [p.cmdline() for p in leftovers]
    words = " ".join(output.split())  # Rich wraps long lines at 80 columns
    for expected in ("what the chain did", "days missing_punch", "days absent", "days on_leave", "overtime",
                     "emails sent", "the plant's crews", "Plant crew A", "trace of execution", "succeeded",
                     "worker stopped (exit code 0)"):
        assert expected in words, output[-4000:]
    [run] = list((home / "demo").glob("run-*"))
    assert str(run) in output.replace("\n", "")
    with closing(sqlite3.connect(run / "app.db")) as db:
        outbox = db.execute("SELECT message_id, status FROM notifications").fetchall()
        status = db.execute("SELECT status FROM executions").fetchall()
        check_showcase(db)
    assert status == [("succeeded",), ("succeeded",)]  # the nightly, then last month's export
    # the month before the run's is closed over the planted exceptions, and its export printed
    today = dt.datetime.now(ZoneInfo(DEMO_ZONE)).date()
    month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    assert f"month end: period {month} closed (version 1): demo: closed over the planted exceptions" in words
    assert "summary.csv, its header and first 3 rows: employee_no,full_name,department,days_present" in words
    assert (run / "exports" / month / "v1" / "manifest.json").is_file()
    assert len(outbox) > 10
    assert {s for _, s in outbox} == {"sent"}
    emails = sorted(p.name for p in (run / "mail").glob("*.eml"))
    assert emails == sorted(eml_path(run / "mail", m).name for m, _ in outbox)  # one file per outbox row
    assert (run / "worker.log").stat().st_size > 0
