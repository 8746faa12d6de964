"""`hrsync demo --web` on a fresh machine: after the chain, the console serves the demo's own run, signed in
with the printed one-time password, and everything in it works on the embedded defaults — a correction is
stored, audited and recomputed by the demo's own worker (no AMQP server anywhere)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from cli import demo_data
from cli.demo import DEMO_ZONE
from tests.integration.scenarios import clean_env, free_port
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.conftest import csrf_of

pytestmark = pytest.mark.slow

SIGN_IN = re.compile(r"sign in as\s+(\S+)\s+with the one-time password\s+(\S+)")
URL = re.compile(r"console on\s+(http://127\.0\.0\.1:\d+/)")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # screenshots kept after the run


@dataclass
class DemoConsole:
    """The served demo: its URL, the one-time sign-in, its output so far, its run folder."""

    base: str
    name: str
    password: str
    lines: list[str]
    home: Path

    @property
    def text(self) -> str:
        return "".join(self.lines)

    @property
    def app_db(self) -> Path:
        [run] = list((self.home / "demo").glob("run-*"))
        return run / "app.db"

    def sick_case(self) -> demo_data.Case:
        """The showcase's approved sick day (no punches: `on_leave`), found as tests/integration/test_demo does."""
        with closing(sqlite3.connect(self.app_db)) as db:
            first, last = (dt.date.fromisoformat(d) for d in db.execute(
                "SELECT min(work_date), max(work_date) FROM attendance_days").fetchone())
        return demo_data.generate(first, last, ZoneInfo(DEMO_ZONE)).showcase.sick


@contextmanager
def demo_console(tmp_path: Path) -> Iterator[DemoConsole]:
    """`hrsync demo --web` until its console answers; SIGTERM afterwards, and it must end cleanly."""
    script = str(Path(sys.executable).parent / "hrsync")
    home = tmp_path / "home"
    env = {**clean_env(home), "COLUMNS": "200"}
    process = subprocess.Popen([script, "demo", "--web", "--port", str(free_port())], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not URL.search("".join(lines)):
            assert process.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.2)
        text = "".join(lines)
        name, password = SIGN_IN.search(text).groups()  # type: ignore[union-attr]
        base = URL.search(text).group(1).rstrip("/")  # type: ignore[union-attr]
        for _ in range(100):  # uvicorn binds just after the line is printed
            try:
                httpx.get(f"{base}/login", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield DemoConsole(base, name, password, lines, home)
    finally:
        process.terminate()
        code = process.wait(60)
        reader.join(10)
        if process.stdout:
            process.stdout.close()
    output = "".join(lines)
    assert code in (0, -signal.SIGTERM), output[-3000:]  # uvicorn re-raises the signal after its shutdown
    assert "Traceback" not in output
    assert "worker stopped (exit code 0)" in " ".join(output.split()), output[-3000:]


@contextmanager
def signed_in(demo: DemoConsole) -> Iterator[httpx.Client]:
    """A client signed in with the demo's one-time password."""
    with httpx.Client(base_url=demo.base, timeout=30) as client:
        login = client.get("/login")
        signed = client.post("/login", data={"name": demo.name, "password": demo.password, "next": "/executions",
                                             "csrf_token": csrf_of(login.text)})
        assert signed.status_code == 303, signed.text
        yield client


def test_demo_serves_the_console_on_its_run(tmp_path: Path) -> None:
    """The demo prints the console's URL and a one-time password; signed in with it, the executions page
    lists the demo's succeeded execution and the dead-letters page answers (no broker on the embedded
    defaults); a correction for an unknown employee is "no employee" (404 on
    the page, 422 naming `employee_no` on the API) and stores nothing; the process stops on SIGTERM."""
    with demo_console(tmp_path) as demo, signed_in(demo) as client:
        execution_id = re.search(r"execution ([0-9a-f-]{36}) succeeded", demo.text).group(1)  # type: ignore[union-attr]
        page = client.get("/executions")
        assert page.status_code == 200
        assert execution_id in page.text
        assert demo.password not in page.text
        letters = client.get("/dead-letters")  # a SELECT on the demo's SQLite: no broker needed
        assert letters.status_code == 200, letters.text
        assert client.get("/api/dead-letters").json() == []

        form = client.get(f"/employees/{demo.sick_case().employee_no}")
        refused = client.post("/employees/NOBODY/punches", data={
            "at": "2026-11-23T09:00", "reason": "typo", "csrf_token": csrf_of(form.text)})
        assert refused.status_code == 404
        assert "no employee &#39;NOBODY&#39;" in refused.text
        token = client.get("/api/session").json()["csrf_token"]
        api = client.post("/api/punches", headers={"X-CSRF-Token": token}, json={
            "employee_no": "NOBODY", "at": "2026-11-23T09:00:00+01:00", "reason": "typo"})
        assert (api.status_code, api.json()) == (422, {"detail": "employee_no: no employee 'NOBODY'"})
        # nothing stored, nothing audited (the demo's own month close is audited, as `period.close`)
        assert [row for row in client.get("/api/audit").json() if row["action"].startswith("punch.")] == []


def test_a_correction_in_the_demo_console_is_audited_and_recomputed(tmp_path: Path) -> None:
    """In Chromium: sign in with the printed password, add the missing punch on the showcase's sick day;
    the page names the recompute's execution and shows the day recomputed when it is done; the audit
    log has the correction. Screenshots go to test-artifacts/demo-console/."""
    from playwright.sync_api import expect, sync_playwright

    shots = ARTIFACTS / "demo-console"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    with demo_console(tmp_path) as demo, sync_playwright() as p:
        sick = demo.sick_case()
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)

        def snap(name: str) -> None:
            page.screenshot(path=shots / f"{name}.png", full_page=True)

        page.goto(f"{demo.base}/employees/{sick.employee_no}?from={sick.day}&to={sick.day}")
        page.fill("input[name=name]", demo.name)
        page.fill("input[name=password]", demo.password)
        page.click("form.login button[type=submit]")
        day = page.locator("#days tbody tr").first
        # an approved full sick day without punches: absent becomes on_leave (DESIGN §6, absences)
        expect(day.locator(".badge")).to_have_text("on_leave")
        snap("1-sick-day")

        period = f"{sick.day:%Y-%m}"
        if page.request.get(f"{demo.base}/api/periods/{period}").json()["state"] == "closed":
            # the demo closes last month, whose days then take no correction: HR reopens it first
            token = page.request.get(f"{demo.base}/api/session").json()["csrf_token"]
            reopened = page.request.post(f"{demo.base}/api/periods/{period}/reopen", headers={"X-CSRF-Token": token},
                                         data={"reason": "a correction to make"})
            assert reopened.ok, reopened.text()
        page.fill("input[name=at]", f"{sick.day}T09:00")
        page.fill("input[name=reason]", "badge reader was down")
        page.click("form[action$='/punches'] button[type=submit]")
        notice = page.locator("#recompute")
        expect(notice).to_contain_text(f"recompute of {sick.day} requested as execution")
        snap("2-recompute-requested")
        expect(page.locator("#recompute-status")).to_have_text("succeeded", timeout=120_000)  # the page updates
        # one punch in the day's instance: missing_punch (DESIGN §6); a full absence only turns absent into on_leave
        expect(day.locator(".badge")).to_have_text("missing_punch")
        expect(day.locator("td").last).to_have_text("1")  # punch_count
        snap("3-day-recomputed")
        execution = page.locator("#recompute a").get_attribute("href")

        page.goto(f"{demo.base}/audit")
        row = page.locator("#audit tbody tr", has_text="punch.add")
        expect(row).to_contain_text(demo.name)
        expect(row).to_contain_text("badge reader was down")
        snap("4-audit")
        assert execution is not None
        page.goto(f"{demo.base}{execution}")
        expect(page.locator("#status")).to_have_text("succeeded")
        browser.close()
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "1-sick-day.png", "2-recompute-requested.png", "3-day-recomputed.png", "4-audit.png"]
