"""The tasks and app-database round trips of a small execution, measured on the real stack.

One command:   python bench/roundtrips.py [--runs 5] [--keep] [--dump FILE] [--read FILE]

A RabbitMQ vhost of its own, a 20-person PostgreSQL HRIS and a March BioStar database (bench/pipeline.py),
a fresh migrated MariaDB app database, an SMTP sink, `hrsync bridge` and one gevent worker
(`-P gevent -c 50`). Each process reaches MariaDB as a user of its own, made for the run: the worker's
app database, the worker's BioStar reads and the bridge are three users, so their statements are told
apart. Executions run one at a time (publish, wait until it and all its tasks ended): `--runs` of each
kind, after one unmeasured warm-up per kind (connections opened, first reads cached):

- `hrsync.sync.requested {scope: hris}` (extract),
- one-punch `hrsync.punches.imported` (merge, notify): a BioStar log written for one person, the event's
  window one second either side of it,
- one-person `hrsync.employee.changed` (extract, merge, notify).

How it counts:

- Tasks: Celery's own task events (the worker sends them, the app sets `task_send_sent_event`), read by an
  event receiver in this process on the run's vhost. `task-sent` = task messages published (the bridge's
  and the worker's), `task-received` = messages the worker took (distinct ids: the tasks run); a task
  belongs to the execution whose id is its first argument. Cross-check: the distinct `task_id`s in
  `execution_stages`.
- Statements and transactions: MariaDB's general log to a table (`log_output=TABLE`, `general_log=1`, on
  only for the measured runs, both put back afterwards). Every logged command of the worker's app-database
  user between the publish and the end of the execution's last task is the execution's (its round trips):
  statements, `COMMIT`, `ROLLBACK` ending a transaction, `ROLLBACK` right after a `COMMIT` on the same
  connection (the pool's reset on return, which ends nothing), `BEGIN`/`START TRANSACTION`, and a new
  connection's commands (connect, session `SET`s) are counted apart. A command is the task's that started
  last before it (task-started event times; the tasks of a small execution run one after the other, a
  chord's shards side by side under one name). A step's bookkeeping is the transactions opened by the lock
  of the execution row (`begin_stage`, `record_stage_end`), with their COMMIT and the reset after it.

performance_schema is off on this server (it needs a restart to turn on), hence the general log.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.events import (  # noqa: E402 - after the path fix, so `python bench/roundtrips.py` works
    Process,
    Publisher,
    VirtualHost,
    app_query,
    stack_env,
    start_bridge,
    start_worker,
)
from bench.pipeline import MARIADB, SmtpSink, Sources, mariadb_admin  # noqa: E402

EMPLOYEES = 20
AT = dt.datetime(2026, 4, 1, 6, tzinfo=dt.UTC)  # events' time: the recent days are the BioStar data's March
PUNCH_DAY = dt.datetime(2026, 3, 28, 10, tzinfo=dt.UTC)  # a Saturday: no other logs that day
DEVICE = 7
VERIFY = 0x1000  # an authentication success (a punch)
TERMINAL = {"task-succeeded", "task-failed", "task-retried", "task-rejected", "task-revoked"}
KINDS = ("hris", "punches", "employee")
TITLES = {"hris": "sync.requested {scope: hris}", "punches": "punches.imported (one punch)",
          "employee": "employee.changed (one person)"}


# -- MariaDB: users of the run, the general log ------------------------------------------------------------

class DatabaseUsers:
    """MariaDB users for the run's processes (`worker`, `biostar`, `bridge`), dropped at exit."""

    def __init__(self, grants: dict[str, str]) -> None:
        tag = uuid.uuid4().hex[:6]
        self.grants = grants  # role → database it may use
        self.names = {role: f"hrsync_rt_{role}_{tag}" for role in grants}
        self.password = secrets.token_hex(12)

    def __enter__(self) -> DatabaseUsers:
        with contextlib.closing(mariadb_admin()) as conn, conn.cursor() as cur:
            for role, database in self.grants.items():
                cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (self.names[role], self.password))
                cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'127.0.0.1'", (self.names[role],))
        return self

    def url(self, role: str) -> str:
        return MARIADB.replace("root@", f"{self.names[role]}:{self.password}@") + self.grants[role]

    def __exit__(self, *_: object) -> None:
        with contextlib.closing(mariadb_admin()) as conn, conn.cursor() as cur:
            for name in self.names.values():
                cur.execute("DROP USER IF EXISTS %s@'127.0.0.1'", (name,))


@dataclass(frozen=True)
class Command:
    """One command of the general log."""

    at: float  # seconds since the epoch
    user: str
    thread: int
    command: str  # Query, Connect, Quit, Ping, …
    text: str


class GeneralLog:
    """MariaDB's general log to `mysql.general_log` while the context is open; the globals are put back after."""

    def __enter__(self) -> GeneralLog:
        with contextlib.closing(mariadb_admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.general_log, @@GLOBAL.log_output")
            self.was_on, self.output = cur.fetchone()
            cur.execute("SELECT COUNT(*) FROM mysql.general_log")
            self.rows_before = int(cur.fetchone()[0])
            cur.execute("SET GLOBAL log_output = %s", ("TABLE" if not self.was_on else f"{self.output},TABLE",))
            cur.execute("SET GLOBAL general_log = 1")
        self.started = time.time()
        return self

    def commands(self, users: list[str]) -> list[Command]:
        """The logged commands of `users` since the log was turned on, in log order."""
        like = " OR ".join(["user_host LIKE %s"] * len(users))  # `u[u] @ …`, and `[u] @ …` on a Connect
        with contextlib.closing(mariadb_admin()) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT UNIX_TIMESTAMP(event_time), user_host, thread_id, command_type, argument "
                        f"FROM mysql.general_log WHERE event_time >= FROM_UNIXTIME(%s) AND ({like})",
                        (int(self.started) - 1, *[f"%[{user}] @%" for user in users]))
            rows = cur.fetchall()
        found = [Command(float(at), host.split("[", 1)[-1].split("]", 1)[0], int(thread), command,
                         text.decode(errors="replace") if isinstance(text, bytes) else str(text))
                 for at, host, thread, command, text in rows]
        return sorted(found, key=lambda c: c.at)  # stable: same-microsecond rows keep the log's order

    def __exit__(self, *_: object) -> None:
        with contextlib.closing(mariadb_admin()) as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL general_log = %s", (int(self.was_on),))
            cur.execute("SET GLOBAL log_output = %s", (self.output,))
            if not self.was_on and self.rows_before == 0:  # ours alone: no one else's statements left behind
                cur.execute("TRUNCATE TABLE mysql.general_log")


# -- Celery task events ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskEvent:
    type: str
    uuid: str
    at: float
    name: str | None
    args: str


class TaskEvents:
    """Celery's task events of the vhost, received in a thread of this process. An event without a name
    (task-started, -succeeded, …) takes that of its message's task-received: a task replaced by another
    (`Task.replace`, a planner handing over to its phase's chord or to the next planner) keeps its id."""

    def __init__(self, url: str) -> None:
        from celery import Celery

        self.app = Celery("roundtrips-events", broker=url)
        self.events: list[TaskEvent] = []
        self.names: dict[str, str] = {}  # task-sent/-received carry the name; later events do not
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.receiver: Any = None
        self.thread = threading.Thread(target=self._capture, daemon=True)
        self.thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("the task event receiver did not start")

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if not kind.startswith("task-"):
            return
        task_id = str(event["uuid"])
        with self.lock:
            if event.get("name"):
                self.names[task_id] = str(event["name"])
            self.events.append(TaskEvent(kind, task_id, float(event["timestamp"]), self.names.get(task_id),
                                         str(event.get("args") or "")))

    def _capture(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self._on_event})
            self.receiver.on_consume_ready = lambda *_, **__: self.ready.set()  # its queue is bound by then
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def of(self, execution_id: str) -> list[TaskEvent]:
        """The task events of `execution_id` (its id is every hrsync task's first argument)."""
        with self.lock:
            ids = {e.uuid for e in self.events if execution_id in e.args}
            return [e for e in self.events if e.uuid in ids]

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.should_stop = True
        self.thread.join(10)


# -- the runs ----------------------------------------------------------------------------------------------

@dataclass
class Run:
    kind: str
    execution_id: str
    started: float  # just before the publish
    ended: float = 0.0
    status: str = ""
    events: list[TaskEvent] = field(default_factory=list)
    steps: int = 0
    step_task_ids: int = 0


def wait_for_execution(app_url: str, events: TaskEvents, event_id: str, timeout: float = 120) -> tuple[str, str]:
    """(execution id, status) once the execution of `event_id` ended and each of its tasks sent its last event."""
    deadline = time.monotonic() + timeout
    execution_id, status = "", ""
    while time.monotonic() < deadline:
        rows = app_query(app_url, "SELECT e.id, e.status FROM event_inbox i JOIN executions e "
                                  "ON e.id = i.execution_id WHERE i.event_id = %s", event_id)
        if rows:
            execution_id, status = str(rows[0][0]), str(rows[0][1])
            if status in ("succeeded", "failed", "cancelled"):
                seen = events.of(execution_id)
                received = {e.uuid for e in seen if e.type == "task-received"}
                ended = {e.uuid for e in seen if e.type in TERMINAL}
                if received and received <= ended:
                    return execution_id, status
        time.sleep(0.1)
    raise RuntimeError(f"the execution of {event_id} did not end within {timeout:.0f} s "
                       f"(execution {execution_id or '-'}: {status or 'not admitted'})")


class Workload:
    """Publishes one small execution of a kind; each call its own person (and, for a punch, its own log)."""

    def __init__(self, publisher: Publisher, biostar_url: str) -> None:
        import pymysql

        self.publisher = publisher
        self.biostar = pymysql.connect(host="127.0.0.1", user="root", database=biostar_url.rsplit("/", 1)[1],
                                       autocommit=True)
        self.person = 0

    def publish(self, kind: str) -> str:
        self.person = self.person % EMPLOYEES + 1
        event_id = f"bench-rt-{kind}-{uuid.uuid4().hex[:10]}"
        if kind == "hris":
            self.publisher.publish(event_id, {"scope": "hris"}, "hrsync.sync.requested", AT)
        elif kind == "employee":
            self.publisher.publish(event_id, {"employee_no": f"E{self.person:06d}"}, "hrsync.employee.changed", AT)
        else:
            at = PUNCH_DAY + dt.timedelta(minutes=self.person)
            with self.biostar.cursor() as cur:
                cur.execute(f"INSERT INTO t_lg{at:%Y%m} (DEVDT, DEVUID, USRID, EVT) VALUES (%s, %s, %s, %s)",
                            (int(at.timestamp()), DEVICE, str(self.person), VERIFY))
            window = {"from": (at - dt.timedelta(seconds=1)).isoformat(),
                      "to": (at + dt.timedelta(seconds=1)).isoformat(), "devices": [DEVICE]}
            self.publisher.publish(event_id, window, "hrsync.punches.imported", AT)
        return event_id

    def close(self) -> None:
        self.biostar.close()


def run_one(kind: str, workload: Workload, events: TaskEvents, app_url: str) -> Run:
    started = time.time()
    event_id = workload.publish(kind)
    execution_id, status = wait_for_execution(app_url, events, event_id)
    time.sleep(0.3)  # a command logged as the last task ends is in the log by now
    run = Run(kind, execution_id, started, time.time(), status, events.of(execution_id))
    steps, task_ids = app_query(app_url, "SELECT COUNT(*), COUNT(DISTINCT task_id) FROM execution_stages "
                                         "WHERE execution_id = %s", execution_id)[0]
    run.steps, run.step_task_ids = int(steps), int(task_ids)
    return run


# -- counting ----------------------------------------------------------------------------------------------

TASK_ID = re.compile(r"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'")
LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\b\d+(?:\.\d+)?\b")
ROW_LOCK = re.compile(r"^SELECT executions\.status, executions\.failed_stage\s+FROM executions\s.*"
                      r"(FOR UPDATE|LOCK IN SHARE MODE)$",
                      re.DOTALL)  # `_lock_execution`: what opens a step's bookkeeping transaction


@dataclass(frozen=True)
class Classified:
    """A logged command and what it is: `statement`, `commit`, `rollback`, `reset` (a ROLLBACK right after a
    COMMIT on the same connection: the pool's reset on return), `begin`, `setup` (a session `SET`), or
    another command's type (`connect`, `quit`, …)."""

    command: Command
    kind: str
    step_record: bool  # part of a step's bookkeeping transaction (begin_stage / record_stage_end)
    shape: str  # the statement with its literals taken out


def shape_of(text: str) -> str:
    """`SELECT status … FROM executions WHERE id = ? FOR UPDATE`: literals as ?, columns unqualified, lists cut."""
    flat = " ".join(re.sub(r"\b\w+\.(?=\w)", "", LITERAL.sub("?", text)).split())
    flat = re.sub(r"\((?:\?, )+\?\)", "(…)", flat)
    if m := re.match(r"SELECT (\S+?),? .*?FROM (\w+)(.*)$", flat):
        return f"SELECT {m.group(1)} … FROM {m.group(2)}{m.group(3)}"
    if m := re.match(r"INSERT (IGNORE )?INTO (\w+)", flat):
        upsert = " … ON DUPLICATE KEY UPDATE" if " ON DUPLICATE KEY UPDATE " in flat else ""
        return f"INSERT {m.group(1) or ''}INTO {m.group(2)}{upsert}"
    if m := re.match(r"UPDATE (\w+) SET (.*?) WHERE (.*)$", flat):
        columns = ", ".join(c.split("=", 1)[0] for c in m.group(2).split(", ") if "=" in c)
        return f"UPDATE {m.group(1)} SET {columns} WHERE {m.group(3)}"
    return flat


def classify(commands: list[Command]) -> list[Classified]:
    """Each command of one process (in log order) with its kind; transactions are followed per connection.

    A step's bookkeeping transaction is the one opened by the lock of the execution row
    (`shared.records.executions._lock_execution`); its COMMIT and the reset after it count to it too.
    """
    found: list[Classified] = []
    open_tx: dict[int, list[str]] = {}  # connection → the statements of its open transaction
    ended: dict[int, str] = {}  # connection → how its last transaction ended: "commit", "lock-commit"
    for command in commands:
        thread = command.thread
        if command.command != "Query":
            found.append(Classified(command, command.command.lower(), False, command.command))
            continue
        head = command.text.lstrip().upper()
        if head.startswith(("COMMIT", "ROLLBACK")):
            statements = open_tx.pop(thread, [])
            locked = bool(statements) and bool(ROW_LOCK.match(statements[0].strip()))
            if head.startswith("ROLLBACK") and not statements and thread in ended:
                found.append(Classified(command, "reset", ended.pop(thread) == "lock-commit",
                                        "ROLLBACK right after a COMMIT (the pool's reset)"))
                continue
            kind = "commit" if head.startswith("COMMIT") else "rollback"
            ended[thread] = ("lock-commit" if locked else "commit") if kind == "commit" else "rollback"
            if kind == "rollback":
                ended.pop(thread)
            found.append(Classified(command, kind, locked, kind.upper()))
        elif head.startswith(("BEGIN", "START TRANSACTION")):
            found.append(Classified(command, "begin", False, "BEGIN"))
        elif head.startswith("SET "):  # a new connection's session settings (aiomysql): no transaction
            found.append(Classified(command, "setup", False, shape_of(command.text)))
        else:
            ended.pop(thread, None)
            statements = open_tx.setdefault(thread, [])
            statements.append(command.text)
            found.append(Classified(command, "statement", bool(ROW_LOCK.match(statements[0].strip())),
                                    shape_of(command.text)))
    return found


@dataclass
class Counts:
    round_trips: int = 0  # every command logged
    statements: int = 0
    commits: int = 0
    rollbacks: int = 0  # ending a transaction (a read's, on `engine.connect()`)
    resets: int = 0  # ROLLBACK right after a COMMIT: ends nothing
    begins: int = 0
    other: int = 0  # a new connection's (connect, session SETs), quit, ping, …
    step_records: int = 0  # round trips of the steps' bookkeeping transactions
    shapes: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, commands: list[Classified]) -> Counts:
        counts = cls()
        for c in commands:
            counts.round_trips += 1
            counts.step_records += c.step_record
            counts.shapes[c.shape] += 1
            if c.kind in ("statement", "commit", "rollback", "reset", "begin"):
                name = {"statement": "statements", "commit": "commits", "rollback": "rollbacks", "reset": "resets",
                        "begin": "begins"}[c.kind]
                setattr(counts, name, getattr(counts, name) + 1)
            else:
                counts.other += 1
        return counts


@dataclass
class Measured:
    """One execution's measurements."""

    run: Run
    tasks: list[tuple[str, Counts]]  # (task name, counts) per task message, in start order
    before_tasks: Counts
    total: Counts
    biostar: Counts
    bridge: Counts
    misattributed: int  # stage-row upserts naming a task other than (a task of the same name as) theirs

    def received(self) -> int:
        return sum(e.type == "task-received" for e in self.run.events)

    def sent(self) -> int:
        return sum(e.type == "task-sent" for e in self.run.events)

    def task_ids(self) -> int:
        return len({e.uuid for e in self.run.events if e.type == "task-received"})


def measure(run: Run, worker: list[Classified], biostar: list[Classified], bridge: list[Classified]) -> Measured:
    def window(commands: list[Classified]) -> list[Classified]:
        return [c for c in commands if run.started <= c.command.at <= run.ended]

    mine = window(worker)
    starts = sorted((e.at, e.uuid, e.name or "?") for e in run.events if e.type == "task-started")
    names_of: dict[str, set[str]] = {}
    for _, task_id, name in starts:
        names_of.setdefault(task_id, set()).add(name)
    # A command belongs to the task message that started last before it. The tasks of a small execution run
    # one after the other, except a chord's shards, which run side by side but share their task's name.
    buckets: list[list[Classified]] = [[] for _ in starts]
    before: list[Classified] = []
    misattributed = 0
    for c in mine:
        at = max((i for i, (started, _, _) in enumerate(starts) if started <= c.command.at), default=None)
        (before if at is None else buckets[at]).append(c)
        if at is not None and c.command.text.startswith("INSERT INTO execution_stages"):
            named = [t for t in TASK_ID.findall(c.command.text) if t in names_of]
            _, task_id, name = starts[at]
            misattributed += any(t != task_id and name not in names_of[t] for t in named)
    tasks = [(name, Counts.of(bucket)) for (_, _, name), bucket in zip(starts, buckets, strict=True)]
    return Measured(run, tasks, Counts.of(before), Counts.of(mine), Counts.of(window(biostar)),
                    Counts.of(window(bridge)), misattributed)


# -- the report --------------------------------------------------------------------------------------------

def mean(values: list[float]) -> str:
    value = statistics.fmean(values) if values else 0.0
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def counts_cells(per_run: list[list[Counts]]) -> str:
    """Round trips | statements | COMMIT | ROLLBACK | resets | step bookkeeping | other: means over the runs."""
    def total(attr: str) -> str:
        return mean([sum(getattr(c, attr) for c in counts) for counts in per_run])

    other = total("other")
    return (f"{total('round_trips')} | {total('statements')} | {total('commits')} | {total('rollbacks')} |"
            f" {total('resets')} | {total('step_records')} | {other} |")


def kind_table(measured: list[Measured]) -> list[str]:
    """Per task name (mean over the runs), then the execution's totals and the other processes."""
    lines = ["| task | messages | round trips | statements | COMMIT | ROLLBACK | reset ROLLBACK |"
             " step bookkeeping | connecting, other |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    names: list[str] = []
    for m in measured:
        for name, _ in m.tasks:
            if name not in names:
                names.append(name)
    for name in names:
        per_run = [[c for task_name, c in m.tasks if task_name == name] for m in measured]
        lines.append(f"| `{name}` | {mean([len(p) for p in per_run])} | {counts_cells(per_run)}")
    if any(m.before_tasks.round_trips for m in measured):
        lines.append(f"| before its first task | - | {counts_cells([[m.before_tasks] for m in measured])}")
    lines.append(f"| **the execution (worker, app DB)** | {mean([m.received() for m in measured])} |"
                 f" {counts_cells([[m.total] for m in measured])}")
    lines.append(f"| the worker's BioStar reads | - | {counts_cells([[m.biostar] for m in measured])}")
    lines.append(f"| the bridge (admission, launch) | - | {counts_cells([[m.bridge] for m in measured])}")
    return lines


def shapes_table(measured: list[Measured], most: int) -> list[str]:
    """The statements the execution's worker sends most (mean per execution)."""
    total: Counter[str] = Counter()
    for m in measured:
        total.update(m.total.shapes)
    lines = ["| per execution | statement (literals as ?) |", "|---:|---|"]
    for shape, n in total.most_common(most):
        lines.append(f"| {mean([n / len(measured)])} | `{shape[:150]}` |")
    return lines


def summary_table(by_kind: dict[str, list[Measured]]) -> list[str]:
    lines = ["| execution | runs | task messages taken | task ids | task messages sent | steps recorded |"
             " app-DB round trips | statements | COMMIT | ROLLBACK | reset ROLLBACK |"
             " step bookkeeping (per step) | bridge round trips (COMMIT) | BioStar round trips |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for kind, measured in by_kind.items():
        if not measured:
            continue

        def m(get: Any, of: list[Measured] = measured) -> str:
            return mean([float(get(x)) for x in of])

        per_step = mean([x.total.step_records / x.run.steps for x in measured if x.run.steps])
        lines.append(
            f"| {TITLES[kind]} | {len(measured)} | {m(Measured.received)} | {m(Measured.task_ids)} |"
            f" {m(Measured.sent)} | {m(lambda x: x.run.steps)} | {m(lambda x: x.total.round_trips)} |"
            f" {m(lambda x: x.total.statements)} | {m(lambda x: x.total.commits)} | {m(lambda x: x.total.rollbacks)} |"
            f" {m(lambda x: x.total.resets)} | {m(lambda x: x.total.step_records)} ({per_step}) |"
            f" {m(lambda x: x.bridge.round_trips)} ({m(lambda x: x.bridge.commits)}) |"
            f" {m(lambda x: x.biostar.round_trips)} |")
    return lines


def checks(by_kind: dict[str, list[Measured]], outside: int) -> list[str]:
    """What must hold for the counts to mean anything; each line says whether it did."""
    every = [m for measured in by_kind.values() for m in measured]
    ended = [sum(e.type in TERMINAL - {"task-succeeded"} for e in m.run.events) for m in every]
    return [
        f"- executions succeeded: {sum(m.run.status == 'succeeded' for m in every)} of {len(every)}",
        f"- task ids seen in the events = distinct task ids in execution_stages: "
        f"{sum(m.task_ids() == m.run.step_task_ids for m in every)} of {len(every)}",
        f"- every task message sent was taken (sent = taken): {sum(m.sent() == m.received() for m in every)}"
        f" of {len(every)}; tasks failed or retried: {sum(ended)}",
        f"- stage-row upserts counted for another task than the one they name: {sum(m.misattributed for m in every)}",
        f"- worker app-DB commands before an execution's first task started: "
        f"{sum(m.before_tasks.round_trips for m in every)}",
        f"- worker app-DB commands outside every execution (an idle worker's): {outside}",
    ]


def report(by_kind: dict[str, list[Measured]], outside: int, command: str, when: str) -> str:
    lines = [f"`{command}` — {when}", "", "Mean per execution:", "", *summary_table(by_kind)]
    for kind, measured in by_kind.items():
        lines += ["", f"### {TITLES[kind]}: per task (mean over {len(measured)} runs)", "", *kind_table(measured),
                  "", "Its most frequent app-DB statements:", "", *shapes_table(measured, 8)]
    lines += ["", "Checks:", "", *checks(by_kind, outside)]
    return "\n".join(lines)


# -- the orchestrator --------------------------------------------------------------------------------------

def measure_stack(args: argparse.Namespace, folder: Path) -> tuple[list[Run], dict[str, list[Command]]]:
    """Run the executions on the stack; their runs and the general log's commands per MariaDB user role."""
    with (VirtualHost(args.keep) as vhost, Sources(EMPLOYEES, EMPLOYEES * 44, 0.05, args.keep) as sources,
          SmtpSink() as sink):
        app_db = sources.app_db("roundtrips")
        app_url = MARIADB + app_db
        with DatabaseUsers({"worker": app_db, "biostar": sources.biostar, "bridge": app_db}) as users:
            env = {**stack_env(users.url("worker"), vhost.url), **sources.env(app_db, sink.url),
                   "HRSYNC_DATABASE_URL": users.url("worker"), "HRSYNC_BIOSTAR_URL": users.url("biostar"),
                   "HRSYNC_LOG_LEVEL": "INFO", "HRSYNC_HRIS_ABSENCES_QUERY": "off"}
            events = TaskEvents(vhost.url)
            workload = Workload(Publisher(vhost.url), MARIADB + sources.biostar)
            worker: Process | None = None
            bridge: Process | None = None
            runs: list[Run] = []
            try:
                worker = start_worker(env, folder)
                bridge = start_bridge({**env, "HRSYNC_DATABASE_URL": users.url("bridge")}, folder)
                for kind in KINDS:  # warm-up: pools filled, first reads done; not counted
                    run_one(kind, workload, events, app_url)
                with GeneralLog() as general_log:
                    for kind in KINDS:
                        for _ in range(args.runs):
                            runs.append(run_one(kind, workload, events, app_url))
                    logged = {role: general_log.commands([name]) for role, name in users.names.items()}
            finally:
                workload.close()
                workload.publisher.close()
                events.close()
                if bridge is not None:
                    bridge.stop()
                if worker is not None:
                    worker.stop()
    return runs, logged


def counted(runs: list[Run], logged: dict[str, list[Command]], command: str, when: str) -> str:
    """The report of the runs: their commands classified, attributed and counted."""
    classified = {role: classify(commands) for role, commands in logged.items()}
    by_kind: dict[str, list[Measured]] = {kind: [] for kind in KINDS}
    for r in runs:
        by_kind[r.kind].append(measure(r, classified["worker"], classified["biostar"], classified["bridge"]))
    outside = sum(1 for c in logged["worker"] if not any(r.started <= c.at <= r.ended for r in runs))
    return report(by_kind, outside, command, when)


def code_version() -> str:
    """The commit measured, and the tracked code files that differed from it."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    changed = [f for f in git("diff", "--name-only", "HEAD").splitlines() if f.endswith(".py")]
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (f" with {', '.join(changed)} changed" if changed else "")


def read_dump(path: Path) -> tuple[list[Run], dict[str, list[Command]], str, str]:
    raw = json.loads(path.read_text())
    runs = [Run(**{**r, "events": [TaskEvent(**e) for e in r["events"]]}) for r in raw["runs"]]
    logged = {role: [Command(**c) for c in commands] for role, commands in raw["commands"].items()}
    return runs, logged, raw["command"], raw["when"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured executions of each kind")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the vhost")
    parser.add_argument("--dump", metavar="FILE", help="also write the task events and logged commands there")
    parser.add_argument("--read", metavar="FILE", help="count a --dump again instead of running")
    args = parser.parse_args()
    if args.read:
        print(counted(*read_dump(Path(args.read))))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the general log's globals are put back
    command = f"python bench/roundtrips.py --runs {args.runs}"
    print(command, flush=True)
    with tempfile.TemporaryDirectory(prefix="hrsync-bench-roundtrips-") as tmp:
        runs, logged = measure_stack(args, Path(tmp))
    when = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {code_version()}"
    if args.dump:
        Path(args.dump).write_text(json.dumps({
            "command": command, "when": when, "runs": [asdict(r) for r in runs],
            "commands": {role: [asdict(c) for c in commands] for role, commands in logged.items()}}))
    print(counted(runs, logged, command, when))


if __name__ == "__main__":
    main()
