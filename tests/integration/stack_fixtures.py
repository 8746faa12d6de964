"""The whole product running for a test: a gevent worker and a bridge (subprocesses) on the real RabbitMQ
and Redis, pointed at the session's MariaDB app database, a PostgreSQL HRIS, a MariaDB BioStar and an
aiosmtpd server; plus helpers to publish events, wait for executions and read what they left.

`running_stack(...)` starts it (extra settings for the worker and the bridge may be given); a test module
wraps it in its own `stack` fixture. HRIS and BioStar hold a small known team (see `running_stack`).
Each stack gets a RabbitMQ virtual host of its own (`rabbitmqctl`, when available), so stacks of test runs
that share the broker at the same time never consume each other's events or tasks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from typing import Any

import pika
import pytest
from sqlalchemy import func, select, text

from pipelines.merge.biostar import BiostarLog, create_demo_biostar
from shared.database.db import app_engine
from shared.database.tables import attendance_days, dead_letters, event_inbox, executions
from shared.events.bus import BRIDGE_QUEUE, DEAD_QUEUE, event_channel, pika_url
from shared.records.queries import get_execution, get_stages
from shared.runtime.runner import run_async
from tests.conftest import RABBITMQ_URL, REDIS_URL, rabbitmqctl, require_service
from tests.integration.biostar_fixtures import SetEnv
from tests.integration.hris_fixtures import PgHris, person
from tests.integration.smtp_fixtures import SmtpServer
from tests.integration.worker_process import WorkerProcess
from workers.queues import stage_queues

ZONE = "Europe/Berlin"
MONDAY, TUESDAY = date(2026, 11, 23), date(2026, 11, 24)
OPS = "ops@example.test"


def at(day: date, hhmm: str) -> datetime:
    """A Berlin wall-clock time on `day` as an aware UTC instant (CET is UTC+1 in November)."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours - 1, minutes, tzinfo=UTC)


class Stack:
    """The running bridge and worker, the addresses they use, and helpers to drive them."""

    def __init__(self, env: dict[str, str], smtp: SmtpServer, hris: PgHris, prefix: str) -> None:
        self.env, self.smtp, self.hris, self.prefix = env, smtp, hris, prefix
        self.worker: WorkerProcess | None = None
        self.bridge: BridgeProcess | None = None

    def no(self, who: str) -> str:
        return f"{self.prefix}{who}"

    @property
    def amqp_url(self) -> str:
        """The broker URL of this stack (its own virtual host)."""
        return self.env["HRSYNC_EVENTS_URL"]

    def publish(self, body: bytes, routing_key: str, message_id: str | None = None) -> None:
        """Publish as another system would: plain pika, confirms, mandatory, persistent."""
        connection = pika.BlockingConnection(pika.URLParameters(pika_url(self.amqp_url)))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish("hrsync.events", routing_key, body, pika.BasicProperties(
                content_type="application/cloudevents+json", delivery_mode=2, message_id=message_id),
                mandatory=True)
        finally:
            connection.close()

    def publish_event(self, event_type: str, data: dict[str, Any], event_id: str | None = None) -> str:
        event_id = event_id or f"{self.prefix}-{uuid.uuid4().hex[:8]}"
        self.publish(json.dumps(event_body(event_type, data, event_id)).encode(), event_type, event_id)
        return event_id

    def executions_of(self, event_id: str) -> list[dict[str, Any]]:
        return executions_of(event_id)

    def wait_for_execution(self, event_id: str, timeout: float = 180) -> dict[str, Any]:
        """Poll until the event's execution has finished (succeeded or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.executions_of(event_id)
            if found and found[0]["status"] in ("succeeded", "failed"):
                return run_async(get_execution(found[0]["id"])) or {}
            time.sleep(0.3)
        found = self.executions_of(event_id)
        stages = [(r["stage"], r["shard"], r["attempt"], r["status"], r["error_type"], r["error_message"])
                  for f in found for r in run_async(get_stages(f["id"]))]
        log = self.worker.text()[-4000:] if self.worker else ""
        raise AssertionError(f"execution of {event_id} did not finish: {found}; stages: {stages}\nworker: {log}")

    def address(self, local: str) -> str:
        """This stack's e-mail address for `local` (m, full, lone, none, ops): unique per test, so a
        backlog of other tests' pending mails, which any notify run drains, is never counted here."""
        return address_of(local, self.prefix)

    @property
    def ops(self) -> str:
        return self.address("ops")

    def bridge_logs(self, event: str, event_id: str | None = None) -> list[dict[str, Any]]:
        return self.bridge.logs(event, event_id) if self.bridge else []

    def mails_to(self, address: str) -> list[Any]:
        return [m for m in self.smtp.handler.messages if address in m.rcpt_tos]


def address_of(local: str, prefix: str) -> str:
    return f"{local}.{prefix}@example.test"


def app_rows(table: Any, *where: Any) -> list[dict[str, Any]]:
    """The rows of `table` in the app DB that match `where`."""
    async def query() -> list[dict[str, Any]]:
        engine = await app_engine()
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(select(table).where(*where))]

    return run_async(query())


def executions_of(event_id: str) -> list[dict[str, Any]]:
    """The `executions` rows launched for `event_id`."""
    return app_rows(executions, executions.c.event_id == event_id)


def replays_of(execution_id: str) -> list[dict[str, Any]]:
    """The executions that replay `execution_id`."""
    return app_rows(executions, executions.c.replay_of == execution_id)


def nightly(stack: Stack, event_id: str | None = None) -> str:
    """Publish a nightly sync of Monday and Tuesday; its event id."""
    return stack.publish_event("hrsync.sync.requested", {"scope": "nightly", "from": str(MONDAY),
                                                         "to": str(TUESDAY)}, event_id=event_id)


def hrsync(stack: Stack, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the `hrsync` CLI with the stack's settings."""
    script = os.path.join(os.path.dirname(sys.executable), "hrsync")
    return subprocess.run([script, *args], env={**os.environ, **stack.env}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def settle(execution_id: str, timeout: float = 90) -> list[dict[str, Any]]:
    """Wait until no task of the failed execution is still running or retrying (the ops notice included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = run_async(get_stages(execution_id))
        latest = {(r["stage"], r["shard"]): r for r in rows}  # rows are in start order: the last attempt wins
        if ("notify_failure", "@failure") in latest \
                and all(r["status"] in ("succeeded", "failed") for r in latest.values()):
            return rows
        time.sleep(0.3)
    rows = [(r["stage"], r["shard"], r["attempt"], r["status"], r["error_type"])
            for r in run_async(get_stages(execution_id))]
    raise AssertionError(f"execution {execution_id} did not settle: {rows}")


def event_body(event_type: str, data: dict[str, Any], event_id: str) -> dict[str, Any]:
    """A CloudEvent as another system would send it."""
    return {"specversion": "1.0", "id": event_id, "source": "test/other-system", "type": event_type,
            "time": "2026-11-25T01:00:00Z", "datacontenttype": "application/json", "data": data}


class BridgeProcess:
    """`hrsync bridge` as a subprocess; its output lines collect in `output`, across restarts."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**os.environ, **env}
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 60) -> BridgeProcess:
        """Start it and wait until it consumes (its start-up checks passed, SIGTERM handled from then on)."""
        hrsync = os.path.join(os.path.dirname(sys.executable), "hrsync")
        process = self.process = subprocess.Popen([hrsync, "bridge"], env=self.env, stdout=subprocess.PIPE,
                                                  stderr=subprocess.STDOUT, text=True)
        seen = len(self.logs("bridge.consuming"))
        self._reader = threading.Thread(target=lambda: self.output.extend(process.stdout or []), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while len(self.logs("bridge.consuming")) == seen:
            if process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("bridge did not start consuming:\n" + "".join(self.output)[-3000:])
            time.sleep(0.1)
        return self

    def logs(self, event: str, event_id: str | None = None) -> list[dict[str, Any]]:
        """Its JSON log lines `event` (about `event_id`, when given)."""
        found = []
        for line in list(self.output):
            with suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == event \
                        and (event_id is None or record.get("event_id") == event_id):
                    found.append(record)
        return found

    def kill(self) -> int:
        """SIGKILL, as a crash: the message in hand stays unacked; returns the exit code."""
        assert self.process is not None
        self.process.kill()
        return self._reap(30)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (the message in hand finishes) and the exit code."""
        assert self.process is not None
        self.process.terminate()
        return self._reap(timeout)

    def _reap(self, timeout: float) -> int:
        assert self.process is not None
        return reap(self.process, self._reader, timeout, lambda: "".join(self.output))


def reap(process: subprocess.Popen[str], reader: threading.Thread | None, timeout: float,
         text: Callable[[], str]) -> int:
    """Wait for `process` to exit and return its code; still running after `timeout` seconds, it is killed
    and an `AssertionError` carries its output. The pipe is closed only once its reader has ended: closing
    a pipe a thread is blocked reading blocks the closer too."""
    try:
        code: int | None = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)
        code = None
    if reader is not None:
        reader.join(10)
    if process.stdout and (reader is None or not reader.is_alive()):
        process.stdout.close()
    if code is None:
        raise AssertionError(f"{' '.join(map(str, process.args))} did not exit within {timeout} s:\n"
                             f"{text()[-4000:]}")
    return code


class HrsyncProcess:
    """An `hrsync` subprocess whose output (JSON log lines) is collected in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        hrsync = os.path.join(os.path.dirname(sys.executable), "hrsync")
        self.proc = subprocess.Popen([hrsync, *args], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        self.reader = threading.Thread(target=lambda: self.output.extend(self.proc.stdout or []), daemon=True)
        self.reader.start()

    def logs(self, event: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in list(self.output):
            with suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and (event is None or record.get("event") == event):
                    found.append(record)
        return found

    def wait_for_log(self, event: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.logs(event):
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {event!r} log line: {self.text()[-3000:]}")

    def text(self) -> str:
        return "".join(self.output)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code; a process still running after `timeout` seconds is killed and the
        call fails with its output (never waits on the pipe its reader still reads)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return reap(self.proc, self.reader, timeout, self.text)


def purge(url: str, *queues: str) -> None:
    with event_channel(url) as channel:
        for queue in queues:
            channel.queue_purge(queue)


@contextmanager
def private_vhost(name: str) -> Iterator[str]:
    """An AMQP URL on a fresh virtual host `name` (deleted afterwards); the shared one without rabbitmqctl."""
    if shutil.which("rabbitmqctl") is None:
        yield RABBITMQ_URL
        return
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


def stack_env(app_db: str, hris: PgHris, biostar_db: str, smtp: SmtpServer,
              amqp_url: str = RABBITMQ_URL, ops: str = OPS) -> dict[str, str]:
    """The HRSYNC_* settings of a stack on this test's databases, broker virtual host and mail server."""
    return {"HRSYNC_DATABASE_URL": f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}",
            "HRSYNC_BIOSTAR_URL": biostar_db, "HRSYNC_HRIS_ODBC": hris.dsn,
            "HRSYNC_BROKER_URL": amqp_url, "HRSYNC_RESULT_BACKEND": REDIS_URL,
            "HRSYNC_EVENTS_URL": amqp_url, "HRSYNC_SMTP_URL": smtp.url(),
            "HRSYNC_MAIL_FROM": "hrsync@example.test", "HRSYNC_OPS_EMAIL": ops, "HRSYNC_TIMEZONE": ZONE,
            "HRSYNC_LOG_FORMAT": "json"}


@contextmanager
def running_stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer, hrsync_env: SetEnv,
                  *, extra_env: dict[str, str] | None = None, worker_env: dict[str, str] | None = None,
                  bridge_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """HRIS rows, BioStar logs, a gevent worker and a bridge, all pointed at this test's databases.

    The team (numbers carry the stack's prefix): M (manager, Ops), FULL (Ops, full days), LONE (Ops, one
    punch on Monday), NONE (Sales, no punches); BioStar user base+9 matches nobody.
    `extra_env` goes to this process, the worker and the bridge; `worker_env` / `bridge_env` to one only.
    """
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"w{uuid.uuid4().hex[:6]}"
    with private_vhost(f"hrsync-test-{prefix}") as amqp_url:
        env = {**stack_env(app_db, pg_hris, biostar_db, smtp_server, amqp_url, address_of("ops", prefix)),
               **(extra_env or {})}
        yield from _run_stack(env, prefix, pg_hris, biostar_db, smtp_server, hrsync_env, worker_env, bridge_env)


def stack_fixture(**options: Any) -> Any:
    """A `stack` fixture for a test module: `running_stack` with `options` (e.g. `extra_env=…`)."""

    @pytest.fixture
    def stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,
              hrsync_env: SetEnv) -> Iterator[Stack]:
        """The running product, with the module's options."""
        with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env, **options) as rig:
            yield rig

    return stack


def _run_stack(env: dict[str, str], prefix: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,
               hrsync_env: SetEnv, worker_env: dict[str, str] | None,
               bridge_env: dict[str, str] | None) -> Iterator[Stack]:
    hrsync_env(**{k.removeprefix("HRSYNC_").lower(): v for k, v in env.items()})
    rig = Stack(env, smtp_server, pg_hris, prefix)
    manager = rig.no("M")
    base = int(uuid.uuid4().int % 10**8) * 10  # BioStar user ids of this test: base+1 … base+9
    pg_hris.replace_rows([
        person(manager, department="Ops", biostar_user_id=base + 1, email=rig.address("m")),
        person(rig.no("FULL"), department="Ops", manager_no=manager, biostar_user_id=base + 2,
               email=rig.address("full")),
        person(rig.no("LONE"), department="Ops", manager_no=manager, biostar_user_id=base + 3,
               email=rig.address("lone")),
        person(rig.no("NONE"), department="Sales", manager_no=manager, biostar_user_id=base + 4,
               email=rig.address("none")),
    ])
    success = 0x1000  # main code 0x10: verify success
    logs = [BiostarLog(str(base + uid), 7, at(day, hhmm), success)
            for uid in (1, 2) for day in (MONDAY, TUESDAY) for hhmm in ("08:55", "17:05")]
    logs += [BiostarLog(str(base + 3), 7, at(MONDAY, "08:58"), success),
             BiostarLog(str(base + 3), 7, at(TUESDAY, "08:59"), success),
             BiostarLog(str(base + 3), 7, at(TUESDAY, "17:01"), success),
             BiostarLog(str(base + 3), 7, at(TUESDAY, "12:00"), 0x1100),  # a failed verify never counts
             BiostarLog(str(base + 9), 7, at(MONDAY, "09:00"), success)]  # nobody we know
    run_async(create_demo_biostar(biostar_db, logs))
    purge(env["HRSYNC_EVENTS_URL"], BRIDGE_QUEUE, DEAD_QUEUE)
    take_dead_letters()  # the app table is the session's: start each stack without another test's letters
    worker = rig.worker = WorkerProcess({**env, **(worker_env or {})}, stage_queues()).start()
    try:
        bridge = rig.bridge = BridgeProcess({**env, **(bridge_env or {})}).start()
    except BaseException:
        worker.stop()
        raise
    try:
        yield rig
    finally:
        try:
            bridge_code = bridge.stop()
        finally:
            worker_code = worker.stop()
    assert bridge_code == 0, "".join(bridge.output)[-3000:]
    assert worker_code == 0, worker.text()[-3000:]
    # A quiet warm shutdown: no "Exception ignored in: <AsyncResult.__del__ …> greenlet is being finalized".
    assert "Exception ignored" not in worker.text(), worker.text()[-3000:]


def count_rows(table: Any, *where: Any) -> int:
    async def query() -> int:
        engine = await app_engine()
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())

    return run_async(query())


def attendance_rows(stack: Stack) -> list[dict[str, Any]]:
    return app_rows(attendance_days, attendance_days.c.employee_no.like(f"{stack.prefix}%"))


def drain(url: str, queue: str) -> list[tuple[Any, Any, bytes]]:
    """Take (acked) every message now in `queue`: (method, properties, body) each."""
    found: list[tuple[Any, Any, bytes]] = []
    with event_channel(url) as channel:
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append((method, properties, body))


def read_dead_letters(url: str) -> dict[str, dict[str, Any]]:
    """event id → headers of every dead letter the bridge moved into the app table so far, taken off it (the
    letters are ours in tests); `url` is the event plane, whose dead-letter queue the bridge empties."""
    return {str(letter.event_id): dict(letter.headers) for letter in take_dead_letters()}


def take_dead_letters() -> list[Any]:
    """The dead letters in the app table (`shared.events.dead_letters.DeadLetter`), deleted from it."""
    from shared.events.dead_letters import list_dead_letters

    letters = run_async(list_dead_letters())
    if letters:
        run_async(_delete_dead_letters([letter.id for letter in letters]))
    return letters


async def _delete_dead_letters(ids: list[str]) -> None:
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(dead_letters.delete().where(dead_letters.c.id.in_(ids)))


def wait_admitted(ids: list[str], timeout: float = 120) -> list[dict[str, Any]]:
    """The inbox rows of `ids` once every one is launched (marked after its canvas was sent)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = app_rows(event_inbox, event_inbox.c.event_id.in_(ids), event_inbox.c.status == "launched")
        if len(rows) == len(ids):
            return rows
        time.sleep(0.3)
    raise AssertionError(f"not all of {ids} admitted: {app_rows(event_inbox, event_inbox.c.event_id.in_(ids))}")


async def on_app_database(statement: str) -> None:
    """Run one statement on the app database, in its own transaction."""
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(text(statement))


@contextmanager
def refused_attendance_of(employee_no: str) -> Iterator[None]:
    """While inside, the app database refuses every attendance row of `employee_no` (a trigger)."""
    trigger = f"refuse_{employee_no}"
    run_async(on_app_database(f"""CREATE TRIGGER `{trigger}` BEFORE INSERT ON attendance_days FOR EACH ROW
                                  BEGIN IF NEW.employee_no = '{employee_no}' THEN
                                    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'engineered failure';
                                  END IF; END"""))
    try:
        yield
    finally:
        run_async(on_app_database(f"DROP TRIGGER IF EXISTS `{trigger}`"))
