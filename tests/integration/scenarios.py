"""What several scenario tests share: the CLI and web helpers, recorded chains, punches and their events,
servers and ports to fail and restore (moved from the test modules that first needed them)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import pyodbc
import pytest
from aiosmtpd.smtp import SMTP

from pipelines.extract.source import Batches, HrisSource, hris_source
from pipelines.merge.biostar import BiostarLog, create_demo_biostar
from shared.database.db import app_engine
from shared.database.tables import execution_stages, executions, punches
from shared.events.bus import (
    BRIDGE_QUEUE,
    event_channel,
)
from shared.runtime.runner import run_async
from tests.conftest import MARIADB, wait_until  # noqa: F401 - wait_until is used from here by other tests
from tests.integration.biostar_fixtures import SetEnv, Staff
from tests.integration.smtp_fixtures import SmtpServer
from tests.integration.stack_fixtures import (
    private_vhost,
)

REPO = Path(__file__).resolve().parents[2]


def clean_env(home: Path) -> dict[str, str]:
    """No HRSYNC_* but HRSYNC_HOME, a fresh HOME (no ~/.hrsync), the repo importable for the worker."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home.parent),
            "PYTHONPATH": str(REPO), "HRSYNC_HOME": str(home)}


FAST_RETRIES = {"HRSYNC_TASK_MAX_RETRIES": "1", "HRSYNC_RETRY_BACKOFF_SECONDS": "0.2"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def restart_smtp(server: SmtpServer) -> SmtpServer:
    """Listen again on the same port with the same recording handler (the mail server is back)."""
    async def start() -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: SMTP(server.handler, hostname="hrsync-test", loop=loop),
                                        server.host, server.port)

    return SmtpServer(server.host, server.port, server.handler, run_async(start()))


NOW = dt.datetime.now(dt.UTC)


def hrsync(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script with this session's settings (app database included)."""
    script = str(Path(sys.executable).parent / "hrsync")
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ))


def one_line_error(done: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hrsync: error: ")
    assert fragment in lines[0]


def record(kind: str, *, status: str = "succeeded", trigger: str = "event", age: dt.timedelta = dt.timedelta(0),
           failed_stage: str | None = None, replay_of: str | None = None,
           stages: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
           execution_id: str | None = None) -> str:
    """Insert an execution (created `age` ago) and its (stage, shard, status) rows; return its id."""
    execution_id = execution_id or str(uuid.uuid4())
    created = NOW - age
    start = created + dt.timedelta(seconds=1)

    async def insert() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(executions.insert().values(
                id=execution_id, kind=kind, trigger=trigger, event_id=None, replay_of=replay_of, attempt=1,
                status=status, params={"stages": ["extract", "merge", "notify"], "scope": "nightly"},
                created_at=created, started_at=start,
                finished_at=start + dt.timedelta(seconds=9) if status in ("succeeded", "failed") else None,
                failed_stage=failed_stage, error="merge[x]: ValueError: boom" if status == "failed" else None))
            for n, (stage, shard, state) in enumerate(stages):
                began = start + dt.timedelta(seconds=n)
                await conn.execute(execution_stages.insert().values(
                    execution_id=execution_id, stage=stage, shard=shard, attempt=1, status=state,
                    started_at=began, finished_at=began + dt.timedelta(seconds=1), duration_ms=1000,
                    rows_in=1, rows_out=1, result={"shards": [{"key": "k1"}]} if shard == "@plan" else {},
                    error_type="ValueError" if state == "failed" else None,
                    error_message="boom" if state == "failed" else None))

    run_async(insert())
    return execution_id


CHAIN = [("extract", "@plan", "succeeded"), ("extract", "k1", "succeeded"), ("extract", "@done", "succeeded"),
         ("merge", "@plan", "succeeded"), ("merge", "k1", "failed")]


def admin(database: str | None = None) -> pymysql.Connection:  # type: ignore[type-arg]
    return pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", database=database, autocommit=True)


@contextmanager
def table_locked(database: str, table: str) -> Iterator[Callable[[], None]]:
    """`LOCK TABLES <table> READ` on a connection of the test (every write to it waits); yields `release`
    (also called at the end)."""
    conn = admin(database)
    with conn.cursor() as cur:
        cur.execute(f"LOCK TABLES `{table}` READ")

    def release() -> None:
        with suppress(pymysql.Error):  # the server may have been killed meanwhile: the lock went with it
            if conn.open:
                with conn.cursor() as cur:
                    cur.execute("UNLOCK TABLES")
        with suppress(pymysql.Error):
            conn.close()

    try:
        yield release
    finally:
        release()


def waiting_on_lock(database: str) -> int:
    """How many statements on `database` wait for a table lock."""
    with admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND STATE LIKE %s",
                    (database, "Waiting for table%"))
        return int(cur.fetchone()[0])  # type: ignore[index]


@dataclass
class DropsConnectionOnce:
    """A real source whose first read fails after one batch, as when the server kills the connection."""

    inner: HrisSource
    queries: list[list[Any]] = field(default_factory=list)

    async def fetch_batches(self, sql: str, params: Sequence[Any], batch_size: int) -> Batches:
        self.queries.append(list(params))
        served = 0
        async for batch in self.inner.fetch_batches(sql, params, batch_size):
            if len(self.queries) == 1 and served == 1:
                raise pyodbc.OperationalError("08S01", "[08S01] communication link failure")
            served += 1
            yield batch


async def _source() -> HrisSource:
    return hris_source()


def add_punches(staff: Staff, n: int, *instants: dt.datetime) -> None:
    """Store device punches of employee `n` directly in `punches`."""
    async def insert() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(punches.insert(), [
                {"employee_no": staff.no(n), "device_id": 7, "punched_at": at, "event_code": 0x1001,
                 "received_at": dt.datetime.now(dt.UTC)} for at in instants])

    run_async(insert())


@pytest.fixture
def event_plane(hrsync_env: SetEnv) -> Iterator[str]:
    """HRSYNC_EVENTS_URL on a private RabbitMQ virtual host."""
    with private_vhost(f"hrsync-test-corr-{uuid.uuid4().hex[:6]}") as url:
        hrsync_env(events_url=url)
        yield url


def published(url: str) -> list[dict[str, Any]]:
    with event_channel(url) as channel:
        bodies = []
        while True:
            method, _, body = channel.basic_get(BRIDGE_QUEUE, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(json.loads(body))


VERIFY, IDENTIFY, DUAL = 0x1001, 0x1301, 0x1601  # success main codes with a sub code


def utc(text: str) -> dt.datetime:
    """An aware UTC instant from `YYYY-MM-DD HH:MM[:SS]`."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def seed(url: str, *logs: tuple[str, str, int] | tuple[str, str, int, int]) -> None:
    """Write BioStar logs `(user, UTC time, event code[, device])` at `url`."""
    run_async(create_demo_biostar(url, [
        BiostarLog(user_id=entry[0], device_id=entry[3] if len(entry) == 4 else 7, at=utc(entry[1]),
                   event_code=entry[2])
        for entry in logs
    ]))
