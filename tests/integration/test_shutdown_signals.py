"""SIGTERM reaches the scheduler, the bridge and `hrsync web` at many points of their start-up and work,
and each exits 0 within its shutdown budget: their signal handlers only set flags (DESIGN §3)."""

from __future__ import annotations

import array
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RABBITMQ_URL, REDIS_URL, require_service
from tests.integration.stack_fixtures import HrsyncProcess, reap

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HRSYNC = os.path.join(os.path.dirname(sys.executable), "hrsync")

SHUTDOWN_BUDGET = 15.0  # seconds from SIGTERM to exit, for each of the three processes
DELAYS = (0.0, 0.15, 0.3, 0.5, 0.8, 1.2, 1.8, 2.5)  # after the first output line: start-up, then work


def process_env(app_db: str) -> dict[str, str]:
    return {"HRSYNC_DATABASE_URL": f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}",
            "HRSYNC_EVENTS_URL": RABBITMQ_URL, "HRSYNC_BROKER_URL": RABBITMQ_URL,
            "HRSYNC_RESULT_BACKEND": REDIS_URL, "HRSYNC_TIMEZONE": "Europe/Berlin", "HRSYNC_LOG_FORMAT": "json",
            "HRSYNC_SCHEDULES": json.dumps({"nightly": None})}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_output(process: HrsyncProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not process.output:
        if process.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no output from {process.proc.args}: {process.text()[-3000:]}")
        time.sleep(0.02)


@pytest.mark.parametrize("command", [["scheduler"], ["bridge"], ["web", "--port", "{port}"]],
                         ids=["scheduler", "bridge", "web"])
def test_sigterm_at_many_points_exits_zero(app_db: str, tmp_path: Path, command: list[str]) -> None:
    """At each delay after its first output line (start-up checks, then running), one SIGTERM ends the
    process with exit code 0 within the shutdown budget."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    env = {**process_env(app_db), "HRSYNC_HOME": str(tmp_path)}
    for delay in DELAYS:
        process = HrsyncProcess([part.format(port=free_port()) for part in command], env)
        try:
            wait_for_output(process)
            time.sleep(delay)
        finally:
            code = process.stop(SHUTDOWN_BUDGET)
        assert code == 0, f"{command} after {delay} s: exit {code}\n{process.text()[-3000:]}"


def test_scheduler_stops_while_its_log_write_is_blocked(app_db: str) -> None:
    """SIGTERM while the scheduler's main thread is blocked writing a log line (its output pipe full, the
    log writer's lock held): the scheduler still exits 0 — a handler that logged would wait for that lock
    forever."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    # 800 jobs: the `scheduler.started` line lists each one, more than a pipe holds (64 KiB).
    jobs = {f"job-{n:04d}-{'x' * 40}": {"cron": "0 3 1 1 *", "scope": "attendance", "grace": 60} for n in range(800)}
    env = {**os.environ, **process_env(app_db), "HRSYNC_SCHEDULES": json.dumps({"nightly": None, **jobs})}
    proc = subprocess.Popen([HRSYNC, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output: list[bytes] = []
    try:
        assert wait_pipe_full(proc.stdout, 120), "the scheduler never blocked on its full output pipe"
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the handler runs (interrupting the blocked write) before anything is read
        reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
        reader.start()
        try:
            code = proc.wait(SHUTDOWN_BUDGET)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
            reader.join(10)
            raise AssertionError("the scheduler hung after SIGTERM:\n"
                                 + b"".join(output).decode(errors="replace")[-3000:]) from None
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    text = b"".join(output).decode(errors="replace")
    assert code == 0, text[-3000:]
    assert '"scheduler.stopping"' in text, text[-3000:]
    assert '"scheduler.stopped"' in text, text[-3000:]


def wait_pipe_full(pipe: Any, timeout: float) -> bool:
    """Whether the pipe `pipe` reads from filled up (its writer then blocks) within `timeout` seconds."""
    capacity = fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = array.array("i", [0])
        fcntl.ioctl(pipe.fileno(), termios.FIONREAD, waiting)
        if waiting[0] >= capacity:
            return True
        time.sleep(0.05)
    return False


def test_stopping_a_process_that_ignores_sigterm_fails_with_its_output() -> None:
    """The test helpers' `reap`: a process still running after its budget is killed and the call fails at
    once with the process's output (it does not wait on the pipe its reader thread is blocked reading)."""
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('still here', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
    reader.start()
    while not output:
        time.sleep(0.05)
    proc.terminate()
    started = time.monotonic()
    with pytest.raises(AssertionError, match="did not exit within 1 s:\nstill here"):
        reap(proc, reader, 1, lambda: "".join(output))
    assert time.monotonic() - started < 20
    assert proc.poll() is not None
