"""`hrsync demo --web` on a fresh machine: after the chain, the console serves the demo's own run, signed in
with the printed one-time password."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_demo import clean_env
from tests.integration.test_replay import free_port
from tests.web.conftest import csrf_of

pytestmark = pytest.mark.slow

SIGN_IN = re.compile(r"sign in as\s+(\S+)\s+with the one-time password\s+(\S+)")
URL = re.compile(r"console on\s+(http://127\.0\.0\.1:\d+/)")


def test_demo_serves_the_console_on_its_run(tmp_path: Path) -> None:
    """The demo prints the console's URL and a one-time password; signed in with it, the executions page
    lists the demo's succeeded execution and the dead-letters page answers (no broker on the embedded
    defaults); the process stops on SIGTERM."""
    script = str(Path(sys.executable).parent / "hrsync")
    env = {**clean_env(tmp_path / "home"), "COLUMNS": "200"}
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
        base = URL.search(text).group(1)  # type: ignore[union-attr]
        execution_id = re.search(r"execution ([0-9a-f-]{36}) succeeded", text).group(1)  # type: ignore[union-attr]
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(100):  # uvicorn binds just after the line is printed
                try:
                    login = client.get("/login")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            signed = client.post("/login", data={"name": name, "password": password, "next": "/executions",
                                                 "csrf_token": csrf_of(login.text)})
            assert signed.status_code == 303, signed.text
            page = client.get("/executions")
            assert page.status_code == 200
            assert execution_id in page.text
            assert password not in page.text
            letters = client.get("/dead-letters")  # a SELECT on the demo's SQLite: no broker needed
            assert letters.status_code == 200, letters.text
            assert client.get("/api/dead-letters").json() == []
    finally:
        process.terminate()
        code = process.wait(60)
        reader.join(10)
        if process.stdout:
            process.stdout.close()
    assert code in (0, -signal.SIGTERM), "".join(lines)[-3000:]  # uvicorn re-raises the signal after its shutdown
    assert "Traceback" not in "".join(lines)
