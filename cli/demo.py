"""`hrsync demo`: the nightly chain for real, on embedded defaults, with nothing to install.

    fresh folder  →  demo data into the embedded sources (HRIS, BioStar: SQLite files)
                  →  a real Celery worker subprocess (gevent pool) on the embedded transport
                  →  an execution made as the bridge makes one (event → request_for → admit_event)
                  →  workers.canvas.launch  →  wait for the execution  →  stop the worker  →  report

Each run gets its own folder `$HRSYNC_HOME/demo/run-<time>` (the newest few are kept) and points
HRSYNC_HOME there, for this process and the worker. Settings that name real services are used as they
are: the demo writes generated data only into sources that are embedded (never into a real HRIS or
BioStar), and the chain runs against whatever the settings say.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from cli import demo_data, demo_month_end, demo_report
from shared.config.errors import HrsyncError
from shared.config.settings import get_settings

DEMO_ZONE = "Europe/Berlin"
KEEP_RUNS = 5
WORKER_CONCURRENCY = 20
FINISH_TIMEOUT = 240.0  # seconds; the demo takes ~15 s on a laptop
STOP_TIMEOUT = 30.0


class DemoFailed(HrsyncError):
    """The demo's chain failed or its worker died (exit code 1); the message says where to look."""


@dataclass
class DemoSetup:
    """Where this run keeps its files, which parts are embedded, and the environment of both processes."""

    folder: Path
    zone: str
    embedded: dict[str, bool]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def worker_log(self) -> Path:
        return self.folder / "worker.log"

    @property
    def mail_folder(self) -> Path | None:
        return self.folder / "mail" if self.embedded["mail"] else None


def prepare_setup(now: dt.datetime) -> DemoSetup:
    """Make this run's folder (pruning old runs) and the HRSYNC_* environment pointing into it."""
    settings = get_settings()
    runs = settings.home / "demo"
    runs.mkdir(parents=True, exist_ok=True)
    for old in sorted(runs.glob("run-*"))[:-(KEEP_RUNS - 1)]:
        shutil.rmtree(old, ignore_errors=True)
    folder = runs / f"run-{now:%Y%m%d-%H%M%S}-{os.getpid()}"
    folder.mkdir()
    embedded = {"app_db": settings.database_url is None, "hris": settings.hris_odbc is None,
                "biostar": settings.biostar_url is None, "broker": settings.broker_url is None,
                "result_backend": settings.result_backend is None, "mail": settings.smtp_url is None}
    zone = settings.timezone if "timezone" in settings.model_fields_set else DEMO_ZONE
    env = {"HRSYNC_HOME": str(folder), "HRSYNC_TIMEZONE": zone, "HRSYNC_LOG_FORMAT": "json"}
    if settings.shifts_file is None and embedded["hris"]:
        env["HRSYNC_SHIFTS_FILE"] = str(folder / "shifts.yaml")
    return DemoSetup(folder, zone, embedded, env)


def _use_environment(setup: DemoSetup) -> None:
    """Point this process at the run's folder (before anything builds engines or the Celery app)."""
    if "workers.app" in sys.modules:  # its config was read with the old HRSYNC_HOME
        raise RuntimeError("run the demo before workers.app is imported")
    os.environ.update(setup.env)
    get_settings.cache_clear()


# -- data ----------------------------------------------------------------------------------------------

def write_demo_data(setup: DemoSetup, today: dt.date) -> demo_data.DemoData:
    """Generate the data and write it into the embedded sources only (and the shifts file)."""
    from pipelines.extract.source import create_demo_hris, demo_hris_path
    from pipelines.merge.biostar import create_demo_biostar
    from shared.database import migrations
    from shared.runtime.runner import run_async

    first, last = demo_data.demo_days(today)
    data = demo_data.generate(first, last, get_settings().zone)
    run_async(migrations.upgrade())
    _write_ahead_log(setup)
    if setup.embedded["hris"]:
        rows: list[Mapping[str, Any]] = list(data.employees)
        run_async(create_demo_hris(demo_hris_path(), rows, data.absences))
    if setup.embedded["biostar"]:
        run_async(create_demo_biostar(get_settings().biostar_db_url(), data.logs))
    if "HRSYNC_SHIFTS_FILE" in setup.env:
        Path(setup.env["HRSYNC_SHIFTS_FILE"]).write_text(data.shifts_yaml())
    return data


def _write_ahead_log(setup: DemoSetup) -> None:
    """Switch the embedded SQLite databases the worker writes to WAL mode (it stays with the file).

    With a rollback journal every reader blocks the writers and every commit syncs two files; with
    20 greenlets writing stage rows and outbox claims at once, the notify stage took 3 to 10 s.
    """
    settings = get_settings()
    files = [setup.folder / "app.db"] if setup.embedded["app_db"] else []
    if setup.embedded["result_backend"]:
        files.append(Path(settings.backend().removeprefix("db+sqlite:///")))
    for path in files:
        with closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA journal_mode=WAL")


# -- the worker ----------------------------------------------------------------------------------------

class DemoWorker:
    """`celery -A workers.app worker -P gevent` as a child process, its output in a log file.

    It runs in its own session, so a Ctrl-C reaches only the demo, which stops it: SIGTERM (warm
    shutdown), wait, SIGKILL after `STOP_TIMEOUT`.
    """

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = WORKER_CONCURRENCY) -> None:
        from operations.processes import worker_queues  # the Celery app only when the demo starts its worker

        self.argv = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-P", "gevent",
                     "-c", str(concurrency), "-Q", ",".join(worker_queues()), "-n", f"demo-{os.getpid()}@%h",
                     "--without-mingle", "--without-gossip", "-l", "INFO"]
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log,  # noqa: S603
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        """Raise `DemoFailed` if the worker has exited."""
        if self.process is not None and (code := self.process.poll()) is not None:
            raise DemoFailed(f"the demo worker exited with code {code}; its log: {self.log_path}")

    def request_stop(self) -> None:
        """Start a warm shutdown (SIGTERM) without waiting for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int | None:
        """Warm shutdown, killed if it does not end in time; the exit code (None if not running)."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


@contextmanager
def _stop_on_termination() -> Iterator[None]:
    """SIGTERM/SIGHUP end the demo like Ctrl-C does, so the `finally` blocks stop the worker."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# -- the execution -------------------------------------------------------------------------------------

def admit_and_launch(data: demo_data.DemoData) -> str:
    """Create the nightly's execution the way the bridge does, then launch it."""
    from shared.events.models import CLI_SOURCE, build_event

    return launch_event(build_event("hrsync.sync.requested", {
        "scope": "nightly", "from": data.first_day.isoformat(), "to": data.last_day.isoformat()}, source=CLI_SOURCE))


def launch_event(event: Any) -> str:
    """Create an event's execution the way the bridge does (event → request → inbox + execution), then launch."""
    from operations import event_requests
    from shared.runtime.runner import run_async

    return run_async(event_requests.admit_and_launch(event))


def wait_for_execution(execution_id: str, worker: DemoWorker, out: Console, timeout: float) -> dict[str, Any]:
    """Poll the execution until it has finished, showing the stage it is in."""
    from shared.records.queries import get_execution
    from shared.records.status import TERMINAL
    from shared.runtime.runner import run_async

    deadline = time.monotonic() + timeout
    with out.status("starting the worker …") as status:
        while time.monotonic() < deadline:
            worker.check_alive()
            execution = run_async(get_execution(execution_id)) or {}
            if execution.get("status") in TERMINAL:
                return execution
            status.update(f"execution {execution_id[:8]}: {run_async(demo_report.progress(execution_id))}")
            time.sleep(0.25)
    raise DemoFailed(f"execution {execution_id} did not finish in {timeout:.0f}s; worker log: {worker.log_path}")


# -- the command ---------------------------------------------------------------------------------------

def run_demo(out: Console, then: Callable[[], None] | None = None) -> None:
    """Run the demo and print what it did; raise `DemoFailed` (exit 1) when the chain failed.

    `then` (the console of `--web`) runs after the report while the demo's worker keeps running, so what
    it asks for (a correction's recompute) is done on the embedded transport; the worker stops after it.
    """
    from shared.records.status import ExecutionStatus
    from shared.runtime.runner import shutdown

    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    setup = prepare_setup(now)
    _use_environment(setup)
    out.print(f"[bold]hrsync demo[/] — files in {setup.folder}")
    out.print(demo_report.describe_setup(setup.embedded, get_settings()))
    worker = DemoWorker(setup.env, setup.worker_log)
    with _stop_on_termination():
        try:
            worker.start()  # it boots while the data is generated
            data = write_demo_data(setup, now.astimezone(get_settings().zone).date())
            out.print(demo_report.describe_data(data, setup.embedded))
            execution_id = admit_and_launch(data)
            execution = wait_for_execution(execution_id, worker, out, FINISH_TIMEOUT)
            month_end = _close_the_month(execution, now, worker, out)
            if then is None:
                worker.request_stop()  # a warm shutdown takes a few seconds: report meanwhile
            report = demo_report.collect(execution, setup.mail_folder)
            out.print(demo_report.summary(report, data))
            out.print(demo_report.trace_table(report, out.width))
            out.print(demo_report.where_files_are(setup.folder, setup.embedded))
            if month_end is not None:
                out.print(demo_month_end.export_report(*month_end))
            if execution["status"] == ExecutionStatus.SUCCEEDED and then is not None:
                out.print(f"execution {execution_id} [bold]{execution['status']}[/] in "
                          f"{time.monotonic() - started:.1f}s; the worker keeps running for the console")
                then()
            with out.status("stopping the worker …"):
                worker_code = worker.stop()
        finally:
            worker.stop()
            shutdown()
    out.print(f"execution {execution_id} [bold]{execution['status']}[/] in {time.monotonic() - started:.1f}s; "
              f"worker stopped (exit code {worker_code})")
    if execution["status"] != ExecutionStatus.SUCCEEDED:
        raise DemoFailed(f"the chain failed at {execution.get('failed_stage')}: {execution.get('error')}; "
                         f"worker log: {setup.worker_log}")
    if month_end is not None and month_end[1] != ExecutionStatus.SUCCEEDED:
        raise DemoFailed(f"the export of {month_end[0].period} did not succeed; worker log: {setup.worker_log}")


def _close_the_month(execution: dict[str, Any], now: dt.datetime, worker: DemoWorker,
                     out: Console) -> tuple[demo_month_end.ClosedMonth, str] | None:
    """After a successful nightly: close last month and wait for its export (None when the nightly failed)."""
    from pipelines.monthend.periods import CloseRefused
    from shared.records.status import ExecutionStatus

    if execution["status"] != ExecutionStatus.SUCCEEDED:
        return None
    try:
        month = demo_month_end.close_and_launch(now.astimezone(get_settings().zone).date(), launch_event)
    except CloseRefused as refused:  # e.g. last month's last night shift still in progress
        out.print(f"month end: not closed: {refused}")
        return None
    exported = wait_for_execution(month.execution_id, worker, out, FINISH_TIMEOUT)
    return month, str(exported["status"])
