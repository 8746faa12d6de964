"""The readable pages in a real headless Chromium (Playwright's Python package driving Debian's `chromium`)
against `hrsync web` as a subprocess on the session's MariaDB app database: the executions list, the execution
page's tables and raw-JSON disclosure, the day board's counts, and a session ended while a live page refreshes.
Screenshots of each step are kept in the test's temporary folder (`01-executions.png` …)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.biostar_fixtures import Staff
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.conftest import console_process
from tests.web.page_fixtures import board_day, record_succeeded
from web.users import add_user, change_password

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OPERATOR, PASSWORD = "olga", "a long operator password"


@pytest.fixture
def console(app_db: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`hrsync web` on a free loopback port, on the session's app database; (its base URL, its users file)."""
    users = tmp_path / "users.json"
    add_user(users, OPERATOR, PASSWORD, "operator")
    with console_process({"HRSYNC_WEB_USERS_FILE": str(users), "HRSYNC_WEB_SECRET": "s" * 32}) as base:
        yield base, users


def test_readable_pages_and_an_ended_session(console: tuple[str, Path], staff: Staff, tmp_path: Path) -> None:
    """Short ids with durations and events in the list, labelled tables on the execution page (raw JSON
    folded away), counts on the day board; when the session ends, the live list goes to the login page."""
    from playwright.sync_api import expect, sync_playwright

    base, users = console
    kind = f"t{uuid.uuid4().hex[:8]}"
    execution_id = record_succeeded(kind, events=3)
    day = dt.date(2026, 6, 3)
    board_day(staff, day)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(f"{base}/login")
        page.fill("input[name=name]", OPERATOR)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button[type=submit]")
        expect(page.get_by_role("heading", name="Executions")).to_be_visible()

        page.goto(f"{base}/executions?kind={kind}")
        link = page.locator(f'a[href="/executions/{execution_id}"]')
        expect(link).to_have_text(execution_id[:8])
        expect(link).to_have_attribute("title", execution_id)
        expect(page.locator("td.took").first).to_have_text("12.5 s")
        expect(page.locator("td.events").first).to_have_text("3")
        page.screenshot(path=shots / "01-executions.png", full_page=True)

        link.click()
        expect(page.locator("#inputs")).to_contain_text("extract → merge → notify")
        expect(page.locator("#per-stage tr", has_text="notify")).to_contain_text("400")
        raw = page.locator("#raw-json pre")
        expect(raw).to_be_hidden()  # behind the disclosure until opened
        page.screenshot(path=shots / "02-execution-tables.png", full_page=True)
        page.click("#raw-json summary")
        expect(raw).to_be_visible()
        expect(raw).to_contain_text("by_status")
        page.screenshot(path=shots / "03-raw-json-open.png", full_page=True)

        page.goto(f"{base}/attendance?department={staff.department}&date={day}")
        counts = page.locator("#status-counts")
        expect(counts).to_contain_text("present 2")
        expect(counts).to_contain_text("absent 1")
        page.screenshot(path=shots / "04-day-board.png", full_page=True)

        page.goto(f"{base}/executions?kind={kind}")
        change_password(users, OPERATOR, "a brand new password")  # ends the session at its next request
        page.wait_for_url(f"{base}/login?next=%2Fexecutions%3Fkind%3D{kind}", timeout=15_000)
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.screenshot(path=shots / "05-ended-session-login.png", full_page=True)
        browser.close()
    assert sorted(path.name for path in shots.glob("*.png")) == [
        "01-executions.png", "02-execution-tables.png", "03-raw-json-open.png", "04-day-board.png",
        "05-ended-session-login.png"]
