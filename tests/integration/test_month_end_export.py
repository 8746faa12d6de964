"""The export stage on the real stack (DESIGN §11): a month closed with `hrsync period close` launches it
through the bridge on queue `hrsync.export`; its files are byte-identical after a replay and through
`hrsync export --to`, and payroll gets one mail per version with the workbook and payroll.csv."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from pipelines.monthend.period import Period
from shared.database.db import app_engine
from shared.database.tables import attendance_days, attendance_exceptions, period_changes, periods
from shared.records.queries import get_stages
from shared.runtime.runner import run_async
from tests.integration.hris_fixtures import PgHris
from tests.integration.scenarios import FAST_RETRIES, restart_smtp
from tests.integration.smtp_fixtures import SmtpServer, stop_smtp_server
from tests.integration.stack_fixtures import Stack, address_of, hrsync, replays_of, running_stack, settle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEBRUARY = Period(2021, 2)  # 2021-02-01 is a Monday: 20 workdays, 8 weekend days; the team was hired in 2020
FILES = ("days.csv", "summary.csv", "payroll.csv", "attendance-2021-02.xlsx", "manifest.json")


@pytest.fixture
def stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,
          hrsync_env: Any, tmp_path: Path) -> Iterator[Stack]:
    """The running product with an export folder of this test and payroll's address."""
    payroll = address_of("payroll", "export")
    env = {**FAST_RETRIES, "HRSYNC_EXPORT_DIR": str(tmp_path / "exports"), "HRSYNC_PAYROLL_EMAIL": payroll}
    with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env, extra_env=env) as rig:
        yield rig

    async def purge() -> None:  # periods are the session's: let other tests write February 2021 again
        engine = await app_engine()
        async with engine.begin() as conn:
            for table in (periods, period_changes):
                await conn.execute(delete(table).where(table.c.period == str(FEBRUARY)))
            for days in (attendance_days, attendance_exceptions):  # the month is this test's alone
                await conn.execute(delete(days).where(days.c.work_date.between(FEBRUARY.first_day, FEBRUARY.last_day)))

    run_async(purge())


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


def test_a_closed_month_is_exported_mailed_once_and_replayed_identically(stack: Stack, tmp_path: Path) -> None:
    """Close → export stage → five files; SMTP down fails the mail; the replay rewrites the same bytes, mails once."""
    synced = stack.wait_for_execution(stack.publish_event("hrsync.sync.requested", {
        "scope": "nightly", "from": str(FEBRUARY.first_day), "to": str(FEBRUARY.last_day), "notify": False,
        "employees": [stack.no(who) for who in ("M", "FULL", "LONE", "NONE")]}))  # not the session's other people
    assert synced["status"] == "succeeded", synced
    refused = hrsync(stack, "period", "close", str(FEBRUARY), "--reason", "month end")
    # nobody punched in February 2021: 4 people x 20 workdays, each day absent and critical
    assert refused.returncode == 1
    assert "open critical exceptions (absent 80)" in refused.stderr

    stop_smtp_server(stack.smtp)
    back = None
    try:
        closed = hrsync(stack, "period", "close", str(FEBRUARY), "--reason", "nobody came", "--force", "--json")
        assert closed.returncode == 0, closed.stderr
        event_id = json.loads(closed.stdout)["event_id"]
        failed = stack.wait_for_execution(event_id)
        assert (failed["status"], failed["failed_stage"], failed["kind"]) == ("failed", "export", "export"), failed
        settle(failed["id"])
        folder = Path(stack.env["HRSYNC_EXPORT_DIR"]) / str(FEBRUARY) / "v1"
        first = file_bytes(folder)  # the write shard succeeded; the mail in the final step did not go out
        for name in FILES:
            (folder / name).unlink()
        back = restart_smtp(stack.smtp)
        # `--reason` where this release's replay takes one (DESIGN §7 makes it required)
        reason = ["--reason", "mail server back"] if "--reason" in hrsync(stack, "replay", "--help").stdout else []
        done = hrsync(stack, "replay", failed["id"], "--from-stage", "export", *reason, "--wait", "--timeout", "180")
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        if back is not None:
            stop_smtp_server(back)
    [replay] = replays_of(failed["id"])
    assert replay["status"] == "succeeded"
    assert {(r["stage"], r["shard"]) for r in run_async(get_stages(replay["id"])) if r["stage"] == "export"} == {
        ("export", "@plan"), ("export", "export:2021-02:v1"), ("export", "@done")}
    assert file_bytes(folder) == first  # the replay wrote the same bytes, the manifest and the workbook too

    manifest = json.loads(first["manifest.json"])
    # 4 people x 28 days; one summary row each; ABSENT 20.00 days each (no other component is non-zero)
    assert (manifest["period"], manifest["version"], manifest["execution_id"]) == ("2021-02", 1, failed["id"])
    assert [manifest["files"][name]["rows"] for name in FILES[:4]] == [112, 4, 4, 120]
    assert first["payroll.csv"].splitlines()[1].endswith(b",ABSENT,20.00,days")

    payroll = address_of("payroll", "export")
    [mail] = stack.mails_to(payroll)
    attached = {part.get_filename(): part.get_payload(decode=True) for part in mail.message.iter_attachments()}
    assert attached == {"attendance-2021-02.xlsx": first["attendance-2021-02.xlsx"],
                        "payroll.csv": first["payroll.csv"]}

    copied = hrsync(stack, "export", str(FEBRUARY), "--to", str(tmp_path / "copy"))
    assert copied.returncode == 0, copied.stderr
    assert file_bytes(tmp_path / "copy") == first
    printed = hrsync(stack, "export", str(FEBRUARY))
    assert printed.stdout.strip() == str(folder)
