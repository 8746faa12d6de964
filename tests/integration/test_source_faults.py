"""A source database that hangs or resets: bounded waits, a clear failure, nothing stuck.

A TCP proxy (`tcp_proxy.TcpProxy`) stands between hrsync and the real PostgreSQL (the HRIS over ODBC)
or MariaDB (BioStar): `blackhole` makes the server go silent, `refuse` drops every connection and
refuses new ones, `pass` brings it back. Nothing here touches the shared servers themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.merge.biostar import BiostarLog, create_demo_biostar, stream_punch_logs
from shared.config.deadlines import SourceTimeout
from shared.config.retry import is_transient
from shared.database.db import engine_for
from shared.database.odbc import odbc_fetch_batches
from shared.database.tables import employees
from shared.runtime.runner import run_async
from tests.integration.biostar_fixtures import SetEnv, dispose_engine
from tests.integration.hris_fixtures import PgHris, person
from tests.integration.smtp_fixtures import SmtpServer
from tests.integration.stack_fixtures import count_rows, hrsync, nightly, replays_of, running_stack, settle
from tests.integration.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration]

PG, MARIADB = ("127.0.0.1", 5432), ("127.0.0.1", 3306)
KEYS_SQL = "SELECT employee_no FROM hrsync_employees WHERE employee_no LIKE ? ORDER BY employee_no"


@pytest.fixture
def proxy(request: pytest.FixtureRequest) -> Iterator[TcpProxy]:
    """A proxy in `pass` mode to the server `request.param` (PG or MARIADB)."""
    proxied = TcpProxy(request.param)
    try:
        yield proxied
    finally:
        proxied.close()


def via(proxy: TcpProxy, address: str) -> str:
    """`address` (an ODBC string or a URL naming the proxied port) pointed at the proxy instead."""
    port = str(proxy.target[1])
    return address.replace(f"Port={port}", f"Port={proxy.port}").replace(f":{port}/", f":{proxy.port}/")


def hris_keys(dsn: str, prefix: str) -> list[str]:
    async def read() -> list[str]:
        return [row[0] async for batch in odbc_fetch_batches(dsn, KEYS_SQL, (f"{prefix}%",), 2) for row in batch]

    return run_async(read())


def biostar_users(url: str) -> list[str]:
    async def read() -> list[str]:
        engine = await engine_for(url)
        start, end = datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
        rows: AsyncIterator[list[Any]] = stream_punch_logs(engine, start, end, partition=1)
        return sorted([row[0] async for batch in rows for row in batch])

    return run_async(read())


@pytest.mark.parametrize("proxy", [PG], indirect=True)
def test_a_silent_hris_fails_within_the_source_timeout_and_the_pool_recovers(
        pg_hris: PgHris, hrsync_env: SetEnv, proxy: TcpProxy) -> None:
    """A pooled ODBC connection goes silent mid-life: `SourceTimeout` (transient), then reads work again."""
    hrsync_env(source_timeout="1")
    pg_hris.replace_rows([person("SF1"), person("SF2"), person("SF3")])
    dsn = via(proxy, pg_hris.dsn)
    assert hris_keys(dsn, "SF") == ["SF1", "SF2", "SF3"]  # the pool now holds a connection through the proxy

    proxy.set_mode("blackhole")
    with pytest.raises(SourceTimeout, match=r"^HRIS did not answer within 1 s") as silent:
        hris_keys(dsn, "SF")
    assert is_transient(silent.value)  # the stage task retries it with backoff
    with pytest.raises(SourceTimeout):  # a new connection to the silent server: bounded the same way
        hris_keys(dsn, "SF")

    proxy.set_mode("pass")  # the abandoned connections are never handed out again
    assert hris_keys(dsn, "SF") == ["SF1", "SF2", "SF3"]


@pytest.mark.parametrize("proxy", [PG], indirect=True)
def test_an_hris_reset_is_a_transient_error_and_the_pool_recovers(
        pg_hris: PgHris, proxy: TcpProxy) -> None:
    """Every HRIS connection dropped and new ones refused: a transient ODBC error, not a hang."""
    pg_hris.replace_rows([person("SR1"), person("SR2")])
    dsn = via(proxy, pg_hris.dsn)
    assert hris_keys(dsn, "SR") == ["SR1", "SR2"]
    proxy.set_mode("refuse")
    with pytest.raises(Exception) as reset:  # noqa: PT011 - the driver's error class is the point
        hris_keys(dsn, "SR")
    assert is_transient(reset.value), repr(reset.value)
    proxy.set_mode("pass")
    assert hris_keys(dsn, "SR") == ["SR1", "SR2"]


@pytest.mark.parametrize("proxy", [MARIADB], indirect=True)
def test_a_silent_biostar_fails_within_the_source_timeout_and_the_engine_recovers(
        biostar_db: str, hrsync_env: SetEnv, proxy: TcpProxy) -> None:
    """A BioStar connection goes silent while rows stream: `SourceTimeout`, and the engine serves again."""
    hrsync_env(source_timeout="1")
    at = datetime(2026, 11, 23, 8, tzinfo=UTC)
    run_async(create_demo_biostar(biostar_db, [BiostarLog(str(u), 7, at, 0x1000) for u in (11, 12, 13)]))
    url = via(proxy, biostar_db)
    assert biostar_users(url) == ["11", "12", "13"]

    proxy.set_mode("blackhole")
    with pytest.raises(SourceTimeout, match=r"^BioStar did not answer within 1 s"):
        biostar_users(url)
    proxy.set_mode("refuse")
    with pytest.raises(Exception) as reset:  # noqa: PT011 - the driver's error class is the point
        biostar_users(url)
    assert is_transient(reset.value), repr(reset.value)

    proxy.set_mode("pass")  # the invalidated connection is not reused
    assert biostar_users(url) == ["11", "12", "13"]
    run_async(dispose_engine(url))


@pytest.mark.parametrize("proxy", [MARIADB], indirect=True)
def test_a_read_stopped_early_does_not_wait_on_a_silent_biostar(
        biostar_db: str, hrsync_env: SetEnv, proxy: TcpProxy) -> None:
    """A consumer stops after the first of three partitions, and the server has gone silent meanwhile:
    closing the read drops the connection instead of draining the two partitions left through the silent
    socket (which no timeout bounds), and the engine then reads everything again."""
    hrsync_env(source_timeout="1")
    at = datetime(2026, 11, 23, 8, tzinfo=UTC)
    run_async(create_demo_biostar(biostar_db, [BiostarLog(str(u), 7, at, 0x1000) for u in (21, 22, 23)]))
    url = via(proxy, biostar_db)

    async def stop_after_first_partition() -> list[Any]:
        engine = await engine_for(url)
        rows = stream_punch_logs(engine, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC),
                                 partition=1)
        first = await anext(rows)
        proxy.set_mode("blackhole")
        # Without the drop, the close's rollback first reads the unread rows through the silent socket, with
        # no bound (aiomysql warns "Previous unbuffered result was left incomplete" before it waits).
        await asyncio.wait_for(rows.aclose(), 30)
        return first

    assert len(run_async(stop_after_first_partition())) == 1
    proxy.set_mode("pass")  # a blackholed link stays silent: only a connection made now can answer
    assert biostar_users(url) == ["21", "22", "23"]
    run_async(dispose_engine(url))


@pytest.mark.slow  # a hang through the test's own proxy: no shared server is touched, so not `fault`
@pytest.mark.parametrize(("proxy", "stage"), [(PG, "extract"), (MARIADB, "merge")], indirect=["proxy"])
def test_a_hung_source_fails_the_execution_cleanly_and_the_worker_keeps_working(
        app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,
        hrsync_env: SetEnv, proxy: TcpProxy, stage: str) -> None:
    """The stage that reads the silent source fails with a clear error after its retries; the replay
    completes once the source is back; the worker still stops cleanly while the source hangs again."""
    source = {"HRSYNC_HRIS_ODBC": via(proxy, pg_hris.dsn)} if stage == "extract" \
        else {"HRSYNC_BIOSTAR_URL": via(proxy, biostar_db)}
    settings = {**source, "HRSYNC_SOURCE_TIMEOUT": "2", "HRSYNC_TASK_MAX_RETRIES": "1",
                "HRSYNC_RETRY_BACKOFF_SECONDS": "1"}
    with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env, worker_env=settings) as stack:
        proxy.set_mode("blackhole")
        failed = stack.wait_for_execution(nightly(stack))
        assert (failed["status"], failed["failed_stage"]) == ("failed", stage), failed
        source_name = "HRIS" if stage == "extract" else "BioStar"
        assert f"SourceTimeout: {source_name} did not answer within 2 s" in failed["error"], failed["error"]
        rows = settle(failed["id"])
        tries: dict[str, list[tuple[int, str]]] = {}
        for row in rows:
            if row["stage"] == stage and row["error_type"] == "SourceTimeout":
                tries.setdefault(row["shard"], []).append((row["attempt"], row["status"]))
        assert tries
        assert all(t == [(1, "retrying"), (2, "failed")] for t in tries.values()), tries  # one retry, then failed

        proxy.set_mode("pass")
        done = hrsync(stack, "replay", failed["id"], "--reason", "test", "--wait", "--timeout", "180")
        assert done.returncode == 0, done.stdout + done.stderr
        [replay] = replays_of(failed["id"])
        assert replay["status"] == "succeeded"
        assert count_rows(employees, employees.c.employee_no.like(f"{stack.prefix}%")) == 4

        proxy.set_mode("blackhole")  # hung again: the worker must still stop (asserted on leaving)
        assert stack.wait_for_execution(nightly(stack))["status"] == "failed"

