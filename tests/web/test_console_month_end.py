"""Month end in the console, in a real headless Chromium on the running product: an operator accepts an
exception, sees the counts that refuse a close, closes with force, downloads the export and reopens; each
action audited with via=web."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from pipelines.monthend.period import Period
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import (
    attendance_days,
    attendance_exceptions,
    event_inbox,
    executions,
    operator_actions,
    period_changes,
    periods,
)
from shared.runtime.runner import run_async
from tests.integration.scenarios import FAST_RETRIES
from tests.integration.stack_fixtures import Stack, app_rows, stack_fixture
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, OPERATOR, PASSWORD, WAIT_MS
from tests.web.conftest import csrf_of, sign_in

pytestmark = pytest.mark.integration

MARCH = Period(2021, 3)  # 2021-03-01 is a Monday: 23 workdays; the stack's four people were hired in 2020

stack = stack_fixture(extra_env=FAST_RETRIES)


@pytest.fixture
def march(stack: Stack) -> Iterator[Period]:
    """March 2021 computed for the stack's people (every workday absent); its period rows removed afterwards."""
    synced = stack.wait_for_execution(stack.publish_event("hrsync.sync.requested", {
        "scope": "nightly", "from": str(MARCH.first_day), "to": str(MARCH.last_day), "notify": False,
        "employees": [stack.no(who) for who in ("M", "FULL", "LONE", "NONE")]}))  # not the session's other people
    assert synced["status"] == "succeeded", synced
    yield MARCH

    async def purge() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            for table in (periods, period_changes):
                await conn.execute(delete(table).where(table.c.period == str(MARCH)))
            for days in (attendance_days, attendance_exceptions):  # the month is this test's alone
                await conn.execute(delete(days).where(days.c.work_date.between(MARCH.first_day, MARCH.last_day)))

    run_async(purge())


@pytest.mark.slow
def test_operator_decides_closes_downloads_and_reopens(stack: Stack, console: str, march: Period,
                                                      tmp_path: Path) -> None:
    """Accept one absence; the close is refused with the counts shown; forced, the export is downloadable."""
    from playwright.sync_api import expect, sync_playwright

    first = stack.no("FULL")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        page.set_default_timeout(30_000)
        page.goto(f"{console}/login?next=%2Fexceptions")
        page.fill("input[name=name]", OPERATOR)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button[type=submit]")
        expect(page.get_by_role("heading", name="Exceptions")).to_be_visible()

        page.fill("input[name=period]", str(march))
        page.select_option("select[name=kind]", "absent")
        page.click("form.filters button[type=submit]")
        # 4 people x 23 workdays in March 2021, each absent
        expect(page.locator("#count")).to_have_text("92")
        row = page.locator(f'tr[data-employee="{first}"][data-date="2021-03-01"]')
        row.locator("form.accept input[name=reason]").fill("known: sick note on paper")
        row.locator("form.accept button").click()
        expect(page.locator("#count")).to_have_text("91")  # back on the same filtered list
        page.screenshot(path=tmp_path / "exceptions.png", full_page=True)

        page.goto(f"{console}/periods/{march}")
        expect(page.locator("#counts")).to_contain_text("absent 91")  # the counts before closing
        page.fill("#close input[name=reason]", "month end")
        page.click("#close button")
        expect(page.locator("p.error")).to_contain_text("open critical exceptions (absent 91)")
        page.goto(f"{console}/periods/{march}")
        page.fill("#close input[name=reason]", "absences are known")
        page.check("#close input[name=force]")
        page.click("#close button")
        expect(page.locator("#state")).to_have_text("closed · version 1 · forced")

        files = page.locator("#files a")
        for _ in range(int(WAIT_MS / 1000)):  # the export stage runs on the worker
            if files.count() == 5:
                break
            page.wait_for_timeout(1000)
            page.reload()
        expect(files).to_have_count(5)
        with page.expect_download() as download:
            page.click('#files a:text("payroll.csv")')
        saved = tmp_path / "payroll.csv"
        download.value.save_as(saved)
        page.screenshot(path=tmp_path / "closed.png", full_page=True)

        page.fill("#reopen input[name=reason]", "a late sick note")
        page.click("#reopen button")
        expect(page.locator("#state")).to_have_text("open · version 1")
        browser.close()

    folder = get_settings().exports() / str(march) / "v1"
    assert saved.read_bytes() == (folder / "payroll.csv").read_bytes()
    audit = [(a["action"], a["actor"], a["via"]) for a in sorted(app_rows(operator_actions), key=lambda a: a["id"])
             if a["target"] in (f"{first}/2021-03-01/absent", f"period:{march}")]
    assert audit == [("exception.accept", OPERATOR, "web"), ("period.close", OPERATOR, "web"),
                     ("period.reopen", OPERATOR, "web")]


def test_viewers_read_month_end_and_actions_need_an_operator_and_a_reason(client: Any) -> None:
    """A viewer lists exceptions and periods as JSON but cannot decide or close (403); a missing reason is 422."""
    sign_in(client, "vera")
    assert client.get("/api/exceptions", params={"period": "2019-02", "open": "true"}).json() == []
    assert client.get("/api/periods/2019-02").json()["state"] == "open"
    token = client.get("/api/session").json()["csrf_token"]
    refused = client.post("/api/periods/2019-02/close", json={"reason": "x", "force": True},
                          headers={"X-CSRF-Token": token})
    assert refused.status_code == 403
    assert client.get("/periods/2019-02/files/payroll.csv").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/periods").text)})
    sign_in(client, "otto")
    token = client.get("/api/session").json()["csrf_token"]
    missing = client.post("/api/exceptions/accept", json={"employee_no": "E1", "work_date": "2019-02-01",
                                                          "kind": "late"}, headers={"X-CSRF-Token": token})
    assert missing.status_code == 422
    assert "reason" in missing.text
    bad_kind = client.post("/api/exceptions/accept", json={"employee_no": "E1", "work_date": "2019-02-01",
                                                           "kind": "lazy", "reason": "r"},
                           headers={"X-CSRF-Token": token})
    assert (bad_kind.status_code, "kind" in bad_kind.text) == (422, True)
    # no event plane here (embedded defaults): the close admits and launches its export itself
    closed = client.post("/api/periods/2019-02/close", json={"reason": "empty month"},
                         headers={"X-CSRF-Token": token})
    try:
        assert closed.status_code == 200, closed.text
        body = closed.json()
        assert (body["state"], body["version"], body["event_id"]) == ("closed", 1, "hrsync-period-closed:2019-02:v1")
        [execution] = app_rows(executions, executions.c.id == body["execution_id"])
        assert (execution["kind"], execution["params"]["export"]) == ("export", {"period": "2019-02", "version": 1})
    finally:
        run_async(forget_period("2019-02", "hrsync-period-closed:2019-02:v1"))


async def forget_period(period: str, event_id: str) -> None:
    """Remove a test's period, and the export execution and inbox row its close made."""
    engine = await app_engine()
    async with engine.begin() as conn:
        for table in (periods, period_changes):
            await conn.execute(delete(table).where(table.c.period == period))
        await conn.execute(delete(executions).where(executions.c.event_id == event_id))
        await conn.execute(delete(event_inbox).where(event_inbox.c.event_id == event_id))
