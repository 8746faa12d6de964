"""A burst of per-punch events while everything is knocked over once: the bridge SIGKILLed and restarted,
the worker SIGKILLed and restarted, MariaDB restarted, RabbitMQ's app stopped and started.

One command:   python bench/burst_faults.py [--punches 150] [--rate 10] [--faults bridge,worker,mariadb,rabbitmq]

The stack of bench/burst.py (its own vhost, app and BioStar databases, `hrsync bridge`, one gevent worker),
employees with e-mail addresses and a recording SMTP server. Each punch is a BioStar log of yesterday (a
closed day, so its `missing_punch` mail is built) and its `hrsync.punches.imported`, published with
confirms (retried until confirmed through the outages; only confirmed ones count); the punches are a
second apart from yesterday 12:00 UTC on, whatever the hour of the run. The faults run in
their own thread while the relay publishes. Printed counts (what tests/integration/test_burst_faults.py
asserts): punches confirmed and reflected within 60 s of the last publish, executions by status, event
ids missing from the inbox, attendance rows doubled, mails received twice, outbox rows by status.
RabbitMQ and MariaDB are the machine's own: run it when nothing else uses them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.burst import DEVICE, VERIFY, MailRecorder, Visibility, log_sql, punch_event, punch_stack  # noqa: E402 - after the path fix
from bench.events import (  # noqa: E402
    Process,
    app_query,
    bench_main,
    hrsync_script,
)

REFLECTED_WITHIN = 60.0  # seconds after the last publish by which every confirmed punch is in its day row
SETTLE = 180.0  # seconds after that for executions to end and mail to go out


def seed_employees(app_url: str, count: int) -> list[str]:
    """`count` active employees with e-mail addresses (F00001…, BioStar users 1…)."""
    import pymysql

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = [(f"F{i:05d}", f"Employee {i}", "D1", "active", str(i), f"f{i}@example.test", now)
            for i in range(1, count + 1)]
    with contextlib.closing(pymysql.connect(host="127.0.0.1", user="root", database=app_url.rsplit("/", 1)[1],
                                            autocommit=True)) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO employees (employee_no, full_name, department, status, biostar_user_id, email, "
                        "synced_at) VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    return [row[0] for row in rows]


def retried(action: Callable[[], Any], what: str, timeout: float = 180) -> Any:
    """`action()` until it succeeds (a server restarting), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: still failing after {timeout} s: {exc}") from exc
            time.sleep(0.5)


class FaultyRelay:
    """A per-punch relay that keeps going through the outages: the BioStar log, then its event, each
    retried until done (the event until the broker confirmed it)."""

    def __init__(self, amqp_url: str, biostar_url: str) -> None:
        self.amqp_url, self.biostar = amqp_url, biostar_url.rsplit("/", 1)[1]
        self.connection: Any = None
        self.channel: Any = None
        self.event_ids: list[str] = []

    def punch(self, user: str, at: dt.datetime) -> float:
        """Log `user`'s punch at `at` and publish its event; the time it was confirmed."""
        import pymysql

        def log() -> None:
            with contextlib.closing(pymysql.connect(host="127.0.0.1", user="root", database=self.biostar,
                                                    autocommit=True)) as db, db.cursor() as cur:
                cur.execute(log_sql(at), (int(at.timestamp()), DEVICE, user, VERIFY))

        retried(log, "BioStar log")
        event_id, body = punch_event(at)
        retried(lambda: self._publish(event_id, body), "publish")
        self.event_ids.append(event_id)
        return time.time()

    def _publish(self, event_id: str, body: bytes) -> None:
        import pika

        from shared.events.bus import connection_parameters

        try:
            if self.connection is None or not self.connection.is_open:
                self.connection = pika.BlockingConnection(connection_parameters(self.amqp_url))
                self.channel = self.connection.channel()
                self.channel.confirm_delivery()
            self.channel.basic_publish("hrsync.events", "hrsync.punches.imported", body, pika.BasicProperties(
                content_type="application/cloudevents+json", delivery_mode=2, message_id=event_id), mandatory=True)
        except Exception:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.connection is not None and self.connection.is_open:
                self.connection.close()


def _run(*argv: str, timeout: float = 180) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=timeout)


def _wait_port(port: int, up: bool, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            is_up = True
        except OSError:
            is_up = False
        if is_up == up:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} still {'down' if up else 'up'}")
        time.sleep(0.2)


def restart_mariadb() -> None:
    """A clean shutdown of mariadbd and a start with the command `.ci/run` uses."""
    _run("mariadb-admin", "-uroot", "shutdown")
    _wait_port(3306, up=False)
    _run("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd")
    _wait_port(3306, up=True)


def restart_rabbitmq_app() -> None:
    """`rabbitmqctl stop_app` / `start_app` (the node stays up)."""
    _run("rabbitmqctl", "stop_app")
    _wait_port(5672, up=False)
    _run("rabbitmqctl", "start_app")
    _run("rabbitmqctl", "await_startup")
    _wait_port(5672, up=True)


FAULTS = ("bridge", "worker", "mariadb", "rabbitmq")


class Faults:
    """The faults (`FAULTS`, or those named), one after another (`gap` seconds apart), in a thread of their own."""

    def __init__(self, env: dict[str, str], folder: Path, procs: dict[str, Process], gap: float,
                 names: tuple[str, ...] = FAULTS) -> None:
        self.env, self.folder, self.procs, self.gap, self.names = env, folder, procs, gap, names
        self.done: list[tuple[str, float]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        every = {"bridge": ("bridge SIGKILL + restart", self._bridge),
                 "worker": ("worker SIGKILL + restart", self._worker),
                 "mariadb": ("MariaDB restart", restart_mariadb),
                 "rabbitmq": ("RabbitMQ stop_app/start_app", restart_rabbitmq_app)}
        try:
            for name, fault in (every[n] for n in self.names):
                time.sleep(self.gap)
                started = time.monotonic()
                fault()
                self.done.append((name, round(time.monotonic() - started, 1)))
        except BaseException as exc:
            self.error = exc

    def _restart(self, role: str, argv: list[str], ready: str) -> None:
        old = self.procs[role]
        old.process.kill()
        old.process.wait(30)
        old.handle.close()
        new = Process(f"{role}-{len(self.done) + 2}", argv, self.env, self.folder)
        new.wait_for(ready, timeout=180)
        self.procs[role] = new

    def _bridge(self) -> None:
        self._restart("bridge", [hrsync_script(), "bridge"], "bridge.consuming")

    def _worker(self) -> None:
        self._restart("worker", [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-P", "gevent",
                                 "-c", "50", "-Q", "hrsync.workflow,hrsync.extract,hrsync.merge,hrsync.notify",
                                 "-n", f"worker-{uuid.uuid4().hex[:6]}@%h", "--without-mingle", "--without-gossip",
                                 "-l", "INFO"], " ready.")


def counts(app_url: str, relay: FaultyRelay, mail: MailRecorder) -> dict[str, Any]:
    """What the end state holds (every number should be 0 where it counts a defect)."""
    ids = relay.event_ids
    in_inbox = {row[0] for row in app_query(app_url, "SELECT event_id FROM event_inbox")}
    return {
        "executions": dict(app_query(app_url, "SELECT status, COUNT(*) FROM executions GROUP BY status")),
        "events_missing_from_inbox": len([i for i in ids if i not in in_inbox]),
        "attendance_rows_doubled": len(app_query(
            app_url, "SELECT employee_no, work_date, shift_code FROM attendance_days "
                     "GROUP BY employee_no, work_date, shift_code HAVING COUNT(*) > 1")),
        "outbox": dict(app_query(app_url, "SELECT status, COUNT(*) FROM notifications GROUP BY status")),
        "mails_received": sum(mail.received.values()),
        "mails_doubled": len([m for m, n in mail.received.items() if n > 1]),
    }


def run_scenario(punches: int, rate: float, folder: Path, keep: bool = False,
                 faults_run: tuple[str, ...] = FAULTS) -> dict[str, Any]:
    """The scenario with the faults named in `faults_run` (all by default); its result (see the module's
    docstring)."""
    with contextlib.closing(MailRecorder()) as mail, \
            punch_stack("faults", keep, folder, lambda url: seed_employees(url, punches), HRSYNC_SMTP_URL=mail.url,
                        HRSYNC_RETRY_BACKOFF_SECONDS="1") as stack:
        app_url, employees, procs = stack.app_url, stack.employees, stack.procs
        relay = FaultyRelay(stack.vhost_url, stack.biostar_url)
        watch = Visibility(app_url)
        faults = Faults(stack.env, folder, procs, gap=punches / rate / (len(faults_run) + 1), names=faults_run)
        try:
            yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(hour=12, minute=0, second=0,
                                                                               microsecond=0)
            sent: dict[str, float] = {}
            start = time.time()
            faults.thread.start()
            for i, no in enumerate(employees):
                time.sleep(max(0.0, start + i / rate - time.time()))
                sent[no] = relay.punch(str(int(no[1:])), yesterday + dt.timedelta(seconds=i))
            last_publish = time.time()
            faults.thread.join(600)
            deadline = last_publish + REFLECTED_WITHIN
            while time.time() < deadline and any(no not in watch.seen for no in sent):
                time.sleep(0.2)
            late = sorted(no for no in sent if watch.seen.get(no, float("inf")) > deadline)
            settle_until = time.monotonic() + SETTLE
            while time.monotonic() < settle_until:
                with contextlib.suppress(Exception):
                    open_ones = app_query(app_url, "SELECT COUNT(*) FROM executions WHERE status IN "
                                                   "('pending', 'running')")[0][0]
                    pending_mail = app_query(app_url, "SELECT COUNT(*) FROM notifications WHERE status = 'pending'")
                    if open_ones == 0 and pending_mail[0][0] == 0:
                        break
                time.sleep(1)
            visible = [watch.seen[no] for no in sent if no in watch.seen]
            result = {
                "punches_confirmed": len(sent), "published_per_s": round(len(sent) / (last_publish - start), 1),
                "faults": faults.done, "fault_error": repr(faults.error) if faults.error else None,
                "reflected_within_60s": len(sent) - len(late), "late_or_missing": late[:20],
                "drain_s": round(max(visible) - last_publish, 1) if visible else None,
                **counts(app_url, relay, mail),
            }
        finally:
            watch.close()
            relay.close()
    return result


def main() -> None:
    bench_main(__doc__, "burst-faults",
               lambda args, folder: run_scenario(args.punches, args.rate, folder, args.keep,
                                                 tuple(args.faults.split(",")) if args.faults else FAULTS),
               timeout=300.0, punches=150, rate=10.0, faults=",".join(FAULTS))


if __name__ == "__main__":
    main()
