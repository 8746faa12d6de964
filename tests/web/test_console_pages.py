"""Pages people can read, in-process on the real MariaDB app database: the execution page's labelled inputs
and per-stage figures with the raw JSON behind a disclosure, the executions list's short ids, durations,
events served and failed stages, and the day board's counts by status."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest

from shared.database.tables import schedule_pauses, watchdog_alerts
from tests.conftest import set_env
from tests.integration.biostar_fixtures import Staff
from tests.web.conftest import record_failed, sign_in
from tests.web.page_fixtures import board_day, delete, insert, record_succeeded

pytestmark = pytest.mark.integration


def cells(page: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells of the table with this id."""
    body = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>", 1)[-1], re.S)]


def test_execution_page_shows_inputs_and_stages_as_tables(client: Any) -> None:
    """Inputs as labelled rows, each stage's read/written/sent/failed, and the raw JSON only in a <details>."""
    execution_id = record_succeeded(f"t{uuid.uuid4().hex[:8]}")
    sign_in(client, "vera")
    page = client.get(f"/executions/{execution_id}").text
    inputs = dict((row[0], row[1]) for row in cells(page, "inputs"))
    assert inputs["stages"] == "extract → merge → notify"
    assert inputs["merge"] == "dates 2026-11-09 to 2026-12-06, employees: all"
    per_stage = {row[0]: row[1:5] for row in cells(page, "per-stage")}
    # extract wrote inserted + updated = 240 + 11; merge wrote its days, 4605 + 56 + 1887 = 6548
    assert per_stage == {"extract": ["251", "251", "-", "0"], "merge": ["10167", "6548", "-", "-"],
                         "notify": ["-", "-", "400", "2"]}
    raw = page.split('<details id="raw-json">', 1)[1].split("</details>", 1)[0]
    assert "&#34;by_status&#34;" in raw or '"by_status"' in raw
    assert "by_status" not in page.split('<details id="raw-json">', 1)[0]  # nowhere else as raw JSON


def test_executions_list_shows_short_ids_durations_events_and_failed_stage(client: Any) -> None:
    """Each row: the id's first 8 characters (the whole one on hover and in the link), took, events served,
    the failed stage."""
    kind = f"t{uuid.uuid4().hex[:8]}"
    done = record_succeeded(kind, events=3)
    sign_in(client, "vera")
    page = client.get(f"/executions?kind={kind}").text
    assert f'<a href="/executions/{done}" class="mono" title="{done}">{done[:8]}</a>' in page
    [row] = cells(page, "rows") if 'id="rows"' in page else [[]]
    assert row[6:9] == ["12.5 s", "3", ""]
    failed = record_failed()
    page = client.get("/executions?status=failed&limit=500").text
    assert f'title="{failed}">{failed[:8]}</a>' in page
    assert re.search(rf'title="{failed}">.*?class="failed-stage">merge<', page, re.S)


def test_day_board_starts_with_counts_by_status(client: Any, staff: Staff) -> None:
    """Two present, one absent, one not computed: the board's counts say so before the table."""
    day = dt.date(2026, 6, 3)
    board_day(staff, day)
    sign_in(client, "vera")
    page = client.get(f"/attendance?department={staff.department}&date={day}").text
    counts = page.split('id="status-counts"', 1)[1].split("</ul>", 1)[0]
    found = re.findall(r'<span class="badge [^"]+">([^<]+)</span> <strong>(\d+)</strong>', counts)
    assert found == [("present", "2"), ("absent", "1"), ("not computed", "1")]
    assert page.index('id="status-counts"') < page.index('id="board"')


def test_executions_page_lists_an_open_watchdog_alert(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An open alert shows above the list with its `since` in the company's zone (the page rendered it as
    text before: a 500 whenever a watchdog had fired)."""
    key = f"pending_wait:{uuid.uuid4()}"
    since = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
    insert(watchdog_alerts, [{"alert_key": key, "alert": "pending_wait", "target": key.split(":", 1)[1],
                              "kind": "punches", "detected_at": since + dt.timedelta(minutes=20),
                              "since": since, "detail": "pending for 20 min"}])
    set_env(monkeypatch, timezone="Europe/Berlin")
    try:
        sign_in(client, "vera")
        page = client.get("/executions")
        assert page.status_code == 200, page.text[-2000:]
        [alert] = [row for row in cells(page.text, "late-alerts") if row[1] == key.split(":", 1)[1]]
        # 08:00 UTC is 09:00 in Europe/Berlin (CET, UTC+1 in December)
        assert alert[0::2] == ["pending_wait", "2026-12-07 09:00:00"]
    finally:
        delete(watchdog_alerts, watchdog_alerts.c.alert_key == key)


def test_executions_page_shows_a_paused_schedule(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused job shows on the executions page: who paused it, since when (company time), and why."""
    job = f"job-{uuid.uuid4().hex[:8]}"
    set_env(monkeypatch, timezone="Europe/Berlin")
    insert(schedule_pauses, [{"job": job, "paused_at": dt.datetime(2026, 12, 7, 6, 30, tzinfo=dt.UTC),
                              "paused_by": "olga", "via": "cli", "reason": "HRIS maintenance"}])
    try:
        sign_in(client, "vera")
        page = client.get("/executions")
        assert page.status_code == 200, page.text[-2000:]
        # 06:30 UTC is 07:30 in Europe/Berlin (CET, UTC+1 in December)
        assert [job, "olga (cli)", "2026-12-07 07:30:00", "HRIS maintenance"] in cells(page.text, "paused-schedules")
    finally:
        delete(schedule_pauses, schedule_pauses.c.job == job)
