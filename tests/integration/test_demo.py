"""`hrsync demo` on a fresh machine: a subprocess whose only hrsync setting is HRSYNC_HOME, no services."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest

from pipelines.notify.smtp import eml_path

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def clean_env(home: Path) -> dict[str, str]:
    """No HRSYNC_* but HRSYNC_HOME, a fresh HOME (no ~/.hrsync), the repo importable for the worker."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home.parent),
            "PYTHONPATH": str(REPO), "HRSYNC_HOME": str(home)}


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


def test_demo_runs_the_nightly_chain_with_nothing_installed(tmp_path: Path) -> None:
    """The demo exits 0, prints its summary and trace, writes one .eml per outbox row and leaves no process."""
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
    for expected in ("what the chain did", "days missing_punch", "days absent", "emails sent",
                     "trace of execution", "succeeded", "worker stopped (exit code 0)"):
        assert expected in words, output[-4000:]
    [run] = list((home / "demo").glob("run-*"))
    assert str(run) in output.replace("\n", "")
    with closing(sqlite3.connect(run / "app.db")) as db:
        outbox = db.execute("SELECT message_id, status FROM notifications").fetchall()
        status = db.execute("SELECT status FROM executions").fetchall()
    assert status == [("succeeded",)]
    assert len(outbox) > 10
    assert {s for _, s in outbox} == {"sent"}
    emails = sorted(p.name for p in (run / "mail").glob("*.eml"))
    assert emails == sorted(eml_path(run / "mail", m).name for m, _ in outbox)  # one file per outbox row
    assert (run / "worker.log").stat().st_size > 0
