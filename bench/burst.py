"""Benchmark of a shift change: per-punch `punches.imported` events at a steady rate, one worker process.

One command:   python bench/burst.py [--punches 2000] [--rate 40] [--single 20] [--mail 1] [--poll 0.2] [--keep]

A RabbitMQ vhost of its own, a fresh migrated MariaDB app database with `--punches + --single` employees
(4 departments, each with a BioStar user id) and a fresh BioStar MariaDB database. `hrsync bridge` and
one gevent worker (`-P gevent -c 50`, all hrsync queues) run as subprocesses, with one round-the-clock
shift (`ROUND_THE_CLOCK`). Each punch is one BioStar log written at its publish time (UTC, device 7) and
one `hrsync.punches.imported` event `{from: at - 1 s, to: at + 1 s, devices: [7]}` published as a relay
would (pika, confirms). A poller reads
`attendance_days` every 0.2 s: a punch is visible when its employee has a row with `punch_count >= 1`.

1. Baseline, in the same run: `--single` punches one at a time (the next after the previous is visible):
   publish → visible, p50 (the issue's "one event at a time", target p50 ≤ 1 s).
2. Burst: `--punches` punches (one per employee) at `--rate` events/s: publish → visible p50/p99, how
   many are visible, and the drain (last visible - last publish). Targets (issue 26): p99 ≤ 3 s,
   drain ≤ 3 s.

`--mail 1`, the shape of the outside run (issue 26): the employees have e-mail addresses and a manager
(the first employee of each department manages the others), and a recording SMTP server (aiosmtpd) is
`HRSYNC_SMTP_URL`, so each execution's notify builds and sends what a site's would (digests, missing
punches of closed days) instead of finding no one to mail. `--poll`: the visibility poll's interval.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import socket
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.events import (  # noqa: E402 - after the path fix, so `python bench/burst.py` works
    Process,
    VirtualHost,
    app_database,
    app_query,
    bench_main,
    percentile,
    stack_env,
    start_bridge,
    start_worker,
)
from bench.pipeline import MARIADB, drop_mariadb, mariadb_admin  # noqa: E402

DEVICE = 7
# One shift whose punch windows cover every instant of every day: [00:00, 24:00], the next day's window
# starting where this one ends (DESIGN §6), so a punch at whatever hour the run happens counts for a day.
# With the demo's shifts (09-17 and 22-06, Monday to Friday) a punch between 18:00 and 21:00 counts for no
# day and its employee never gets a row: the benchmark's result depended on the hour it ran.
ROUND_THE_CLOCK = ('shifts:\n  all_day: {start: "00:00", end: "23:00", check_in_before: 0, check_out_after: 60,'
                   ' workdays: [mon, tue, wed, thu, fri, sat, sun]}\nassignments:\n  default: all_day\n')
VERIFY = 0x1001  # an authentication success
DEPARTMENTS = 4


@contextlib.contextmanager
def biostar_database(keep: bool) -> Iterator[str]:
    """A fresh BioStar database with this month's log table."""
    from pipelines.merge.biostar import BiostarLog, create_demo_biostar
    from shared.runtime.runner import run_async, shutdown

    name = f"hrsync_bench_biostar_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(mariadb_admin()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    url = MARIADB + name
    now = dt.datetime.now(dt.UTC)
    run_async(create_demo_biostar(url, [BiostarLog("nobody", DEVICE, now - dt.timedelta(days=1), VERIFY)]))
    shutdown()
    try:
        yield url
    finally:
        if not keep:
            drop_mariadb(name)


def seed_employees(app_url: str, count: int, mail: bool = False) -> list[str]:
    """`count` active employees (E00001…, BioStar users 1…) in `DEPARTMENTS` departments; with `mail`, each
    with an e-mail address and (but a department's first) that first one as manager."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    managers = {i % DEPARTMENTS: f"E{i:05d}" for i in range(min(count, DEPARTMENTS), 0, -1)}
    rows = [(f"E{i:05d}", f"Employee {i}", f"D{i % DEPARTMENTS}", "active", str(i),
             f"e{i}@example.test" if mail else None,
             managers[i % DEPARTMENTS] if mail and managers[i % DEPARTMENTS] != f"E{i:05d}" else None, now)
            for i in range(1, count + 1)]
    import pymysql

    database = app_url.rsplit("/", 1)[1]
    with contextlib.closing(pymysql.connect(host="127.0.0.1", user="root", database=database,
                                            autocommit=True)) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO employees (employee_no, full_name, department, status, biostar_user_id, "
                        "email, manager_no, synced_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
    return [row[0] for row in rows]


class MailRecorder:
    """An SMTP server (aiosmtpd, its own thread) counting messages by Message-ID."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: Counter[str] = Counter()
        recorder = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = message_from_bytes(envelope.original_content or b"")
                recorder.received[str(message.get("Message-ID"))] += 1
                return "250 Message accepted for delivery"

        with socket.socket() as probe:  # a free port (the controller checks its port by connecting to it)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    def close(self) -> None:
        self.controller.stop()


def log_sql(at: dt.datetime) -> str:
    """The INSERT of one BioStar log (DEVDT, DEVUID, USRID, EVT) into the month table of `at`."""
    return f"INSERT INTO t_lg{at:%Y%m} (DEVDT, DEVUID, USRID, EVT, TNAKEY) VALUES (%s, %s, %s, %s, NULL)"


def punch_event(at: dt.datetime) -> tuple[str, bytes]:
    """A new `hrsync.punches.imported` CloudEvent for the second `at` (± 1 s, device `DEVICE`): id and body."""
    event_id = str(uuid.uuid4())
    body = json.dumps({"specversion": "1.0", "id": event_id, "source": "bench/relay",
                       "type": "hrsync.punches.imported", "time": at.isoformat(),
                       "datacontenttype": "application/json",
                       "data": {"from": (at - dt.timedelta(seconds=1)).isoformat(),
                                "to": (at + dt.timedelta(seconds=1)).isoformat(), "devices": [DEVICE]}})
    return event_id, body.encode()


class Relay:
    """Writes a BioStar log and publishes its `punches.imported`, as a per-punch relay would."""

    def __init__(self, amqp_url: str, biostar_url: str) -> None:
        import pika
        import pymysql

        from shared.events.bus import connection_parameters

        self.pika = pika
        self.connection = pika.BlockingConnection(connection_parameters(amqp_url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.db = pymysql.connect(host="127.0.0.1", user="root", database=biostar_url.rsplit("/", 1)[1],
                                  autocommit=True)

    def punch(self, user: str) -> float:
        """Log one punch of `user` now and publish its event; the publish time (s since the epoch)."""
        return self.team([user])[1]

    def team(self, users: list[str]) -> tuple[str, float]:
        """Log a punch of each of `users` now, then publish one event covering them; its id and publish time."""
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        with self.db.cursor() as cur:
            cur.executemany(log_sql(at), [(int(at.timestamp()), DEVICE, user, VERIFY) for user in users])
        event_id, body = punch_event(at)
        properties = self.pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2,
                                               message_id=event_id)
        sent = time.time()
        self.channel.basic_publish("hrsync.events", "hrsync.punches.imported", body, properties, mandatory=True)
        return event_id, sent

    def close(self) -> None:
        self.db.close()
        if self.connection.is_open:
            self.connection.close()


class Visibility:
    """Polls `attendance_days` every 0.2 s; `seen[employee]`: when a row of theirs first had a punch."""

    def __init__(self, app_url: str, poll: float = 0.2) -> None:
        self.app_url, self.poll = app_url, poll
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):  # MariaDB restarting (bench/burst_faults.py): poll again
                rows = app_query(self.app_url,
                                 "SELECT DISTINCT employee_no FROM attendance_days WHERE punch_count >= 1")
                now = time.time()
                for (no,) in rows:
                    self.seen.setdefault(no, now)
            time.sleep(self.poll)

    def wait(self, employees: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(no not in self.seen for no in employees):
            time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@dataclass
class PunchStack:
    """What `punch_stack` started: the URLs, the seeded employees, the subprocesses' environment, and the
    subprocesses by role (a caller may replace one, e.g. to restart it; whatever is here at the end is stopped)."""

    vhost_url: str
    app_url: str
    biostar_url: str
    employees: list[str]
    env: dict[str, str]
    procs: dict[str, Process] = field(default_factory=dict)


@contextlib.contextmanager
def punch_stack(name: str, keep: bool, folder: Path, seed: Callable[[str], list[str]],
                **env: str) -> Iterator[PunchStack]:
    """A RabbitMQ vhost, a fresh migrated app database seeded by `seed(app_url)`, a fresh BioStar database,
    the shifts of `ROUND_THE_CLOCK`, then `hrsync bridge` and one gevent worker with `env` added; all
    stopped and dropped on exit."""
    with contextlib.ExitStack() as stack:
        vhost = stack.enter_context(VirtualHost(keep))
        app_url = stack.enter_context(app_database(name, keep))
        biostar_url = stack.enter_context(biostar_database(keep))
        employees = seed(app_url)
        shifts = folder / "shifts.yaml"
        shifts.write_text(ROUND_THE_CLOCK)
        started = PunchStack(vhost.url, app_url, biostar_url, employees,
                             stack_env(app_url, vhost.url, HRSYNC_BIOSTAR_URL=biostar_url,
                                       HRSYNC_SHIFTS_FILE=str(shifts), **env))
        stack.callback(lambda: [proc.stop() for proc in reversed(list(started.procs.values()))])
        started.procs["bridge"] = start_bridge(started.env, folder)
        started.procs["worker"] = start_worker(started.env, folder)
        yield started


def latencies(sent: dict[str, float], seen: dict[str, float]) -> dict[str, Any]:
    values = [seen[no] - at for no, at in sent.items() if no in seen]
    return {"events": len(sent), "visible": len(values),
            "p50_s": round(statistics.median(values), 3) if values else None,
            "p99_s": round(percentile(values, 0.99), 3) if values else None}


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        mail: dict[str, str] = {}
        recorder = None
        if args.mail:
            recorder = MailRecorder()
            stack.callback(recorder.close)
            mail = {"HRSYNC_SMTP_URL": recorder.url}
        run_stack = stack.enter_context(punch_stack(
            "burst", args.keep, folder, lambda url: seed_employees(url, args.single + args.punches, bool(args.mail)),
            **mail))
        app_url, employees = run_stack.app_url, run_stack.employees
        relay = stack.enter_context(contextlib.closing(Relay(run_stack.vhost_url, run_stack.biostar_url)))
        watch = stack.enter_context(contextlib.closing(Visibility(app_url, args.poll)))
        single: dict[str, float] = {}
        for no in employees[:args.single]:
            single[no] = relay.punch(str(int(no[1:])))
            watch.wait([no], 60)
        burst: dict[str, float] = {}
        start = time.time()
        for i, no in enumerate(employees[args.single:]):
            time.sleep(max(0.0, start + i / args.rate - time.time()))
            burst[no] = relay.punch(str(int(no[1:])))
        last_publish = time.time()
        published_per_s = args.punches / (last_publish - start) if args.punches else 0.0
        watch.wait(list(burst), args.timeout)
        seen = dict(watch.seen)
        visible = [seen[no] for no in burst if no in seen]
        return {
            "single": latencies(single, seen),
            "burst": {**latencies(burst, seen), "published_per_s": round(published_per_s, 1),
                      "drain_s": round(max(visible) - last_publish, 3)
                      if len(visible) == len(burst) and visible else None},
            "executions": app_query(app_url, "SELECT status, COUNT(*) FROM executions GROUP BY status"),
            "outbox": app_query(app_url, "SELECT kind, status, COUNT(*) FROM notifications GROUP BY kind, status"),
            "mails_received": sum(recorder.received.values()) if recorder is not None else None,
            "code": str(ROOT),
        }


def main() -> None:
    result = bench_main(__doc__, "burst", run, timeout=300.0, punches=2000, rate=40.0, single=20, mail=0, poll=0.2)
    single, burst = result["single"], result["burst"]
    if single["p50_s"] and burst["p99_s"]:
        print(f"burst p99 / single p50: {burst['p99_s'] / single['p50_s']:.1f}x")


if __name__ == "__main__":
    main()
