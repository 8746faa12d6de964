"""The console in a real headless Chromium (Playwright's Python package driving Debian's `chromium`) on the whole
running product: `hrsync web` as a subprocess with a users file, a gevent worker and a bridge, MariaDB,
PostgreSQL HRIS, BioStar and an SMTP server. Screenshots of each step go to the test's temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.database.tables import operator_actions
from shared.records.queries import get_stages
from shared.runtime.runner import run_async
from tests.integration.scenarios import FAST_RETRIES, restart_smtp, table_locked, wait_until, waiting_on_lock
from tests.integration.smtp_fixtures import stop_smtp_server
from tests.integration.stack_fixtures import Stack, app_rows, nightly, settle, stack_fixture
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS, OPERATOR, PASSWORD, WAIT_MS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

stack = stack_fixture(extra_env=FAST_RETRIES)  # one quick retry per task


def held_running(stack: Stack, database: str, event_id: str) -> str:
    """Wait until the event's execution is running and one of its statements waits on the table lock."""
    found = wait_until(lambda: [e for e in stack.executions_of(event_id) if e["status"] == "running"],
                       f"{event_id} running")
    wait_until(lambda: waiting_on_lock(database) > 0, "a statement waiting on the table lock")
    return str(found[0]["id"])


def test_operator_replays_a_failed_chain_and_cancels_a_stuck_one(stack: Stack, console: str, app_db: str,
                                                                 tmp_path: Path) -> None:
    """Signed in as an operator: find the failed execution, open its trace, dry-run and confirm its replay,
    watch the replay succeed on the page, cancel a stuck execution; both actions audited with via=web."""
    from playwright.sync_api import expect, sync_playwright

    stop_smtp_server(stack.smtp)  # the chain fails at notify
    failed = stack.wait_for_execution(nightly(stack))
    assert (failed["status"], failed["failed_stage"]) == ("failed", "notify"), failed
    settle(failed["id"])
    back = restart_smtp(stack.smtp)
    shot = iter(range(1, 100))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)

            def snap(name: str) -> None:
                page.screenshot(path=tmp_path / f"{next(shot):02d}-{name}.png", full_page=True)

            page.goto(f"{console}/executions")
            expect(page).to_have_url(f"{console}/login?next=%2Fexecutions")
            page.fill("input[name=name]", OPERATOR)
            page.fill("input[name=password]", PASSWORD)
            snap("login")
            page.click("form.login button[type=submit]")
            expect(page.get_by_role("heading", name="Executions")).to_be_visible()

            page.select_option("select[name=status]", "failed")
            page.click("form.filters button[type=submit]")
            row = page.locator(f'a[href="/executions/{failed["id"]}"]')
            expect(row).to_be_visible()
            snap("failed-executions")
            row.click()
            expect(page.locator("#status")).to_have_text("failed")
            expect(page.locator("svg.waterfall g.bar.failed").first).to_be_visible()  # the trace, failures marked
            snap("failed-trace")

            page.click("#plan-replay")
            plan = page.locator("#plan")
            expect(plan).to_be_visible()  # the dry run first: nothing created yet
            expect(plan.locator("tr.plan-run")).to_contain_text("notify")
            snap("replay-plan")
            page.fill("#replay-reason", "the mail server is back")
            page.click("#confirm-replay")
            expect(page.locator("h1")).not_to_contain_text(failed["id"])  # on the new execution's page
            expect(page.locator("#status")).to_have_text("succeeded", timeout=WAIT_MS)  # refreshed by the page
            expect(page.locator("dd a.mono").first).to_have_text(failed["id"])  # its lineage
            snap("replay-succeeded")
            replay_id = page.locator("h1 .mono").inner_text()

            with table_locked(app_db, "attendance_days") as release:
                stuck = held_running(stack, app_db, nightly(stack))
                page.goto(f"{console}/executions/{stuck}")
                expect(page.locator("#status")).to_have_text("running")
                page.fill("input[name=reason]", "held by a table lock")
                snap("stuck-running")
                page.click("#cancel")
                expect(page.locator("#status")).to_have_text("cancelled")
                expect(page.locator("#cancelled-why")).to_have_text("cancelled: held by a table lock")
                snap("cancelled")
                release()
            browser.close()
        wait_until(lambda: all(r["status"] != "running" for r in run_async(get_stages(stuck))),
                   "the cancelled execution's running steps ended")
    finally:
        stop_smtp_server(back)
    audit = {(a["action"], a["target"]): (a["actor"], a["via"]) for a in app_rows(operator_actions)}
    assert audit[("replay", failed["id"])] == (OPERATOR, "web")
    assert audit[("cancel", stuck)] == (OPERATOR, "web")
    assert replay_id != failed["id"]
    assert sorted(path.name for path in tmp_path.glob("*.png")) == [
        "01-login.png", "02-failed-executions.png", "03-failed-trace.png", "04-replay-plan.png",
        "05-replay-succeeded.png", "06-stuck-running.png", "07-cancelled.png"]
