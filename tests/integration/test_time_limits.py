"""A stage longer than the broker's consumer timeout is prevented by configuration: the task's time
limit (below `HRSYNC_CONSUMER_TIMEOUT`, which `hrsync check` enforces) ends it first, so the broker
never closes the worker's channel and the worker goes on consuming.

The broker's `consumer_timeout` is lowered for the test (a node-wide setting: run it alone, marker
`fault`); RabbitMQ checks it about once a minute, so the stage is held well past a minute unless the
time limit ends it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.integration import services
from tests.integration.hris_fixtures import PgHris
from tests.integration.smtp_fixtures import SmtpServer
from tests.integration.stack_fixtures import Stack, nightly, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]

BROKER_CONSUMER_TIMEOUT_MS = 15_000
HELD_SECONDS = 100  # how long the merge would block without the time limit: past the broker's check


@pytest.fixture
def short_consumer_timeout() -> Iterator[None]:
    before = services.rabbitmq_consumer_timeout(BROKER_CONSUMER_TIMEOUT_MS)
    try:
        yield
    finally:
        services.rabbitmq_consumer_timeout(before)


@pytest.fixture
def stack(short_consumer_timeout: None, app_db: str, pg_hris: PgHris, biostar_db: str,
          smtp_server: SmtpServer, hrsync_env: Any) -> Iterator[Stack]:
    """Tasks limited to 10 s (the gevent pool enforces the hard limit only), below the broker's 15 s
    consumer timeout; no retries."""
    limits = {"HRSYNC_TASK_TIME_LIMIT": "10", "HRSYNC_CONSUMER_TIMEOUT": "15", "HRSYNC_TASK_MAX_RETRIES": "0"}
    with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env, worker_env=limits) as rig:
        yield rig


def test_a_stage_longer_than_the_consumer_timeout_is_ended_by_the_time_limit(stack: Stack, app_db: str) -> None:
    """The merge blocks on a table lock: the time limit fails it (a replayable failed execution), the
    channel survives, and the next event runs on the same worker."""
    lock = pymysql.connect(host="127.0.0.1", user="root", database=app_db, autocommit=True)
    try:
        with lock.cursor() as cursor:
            cursor.execute("LOCK TABLES attendance_days WRITE")
        started = time.monotonic()
        failed = stack.wait_for_execution(nightly(stack), timeout=HELD_SECONDS)
        held = time.monotonic() - started
    finally:
        lock.close()  # releases the lock
    assert (failed["status"], failed["failed_stage"]) == ("failed", "merge"), failed
    assert re.search(r"TimeLimitExceeded|time limit", failed["error"]), failed["error"]
    assert held < HELD_SECONDS  # ended by the limit, not by the lock going away

    after = stack.wait_for_execution(nightly(stack))
    assert after["status"] == "succeeded", after
    log = stack.worker.text() if stack.worker else ""
    assert "PRECONDITION_FAILED" not in log, log[-3000:]  # the broker never timed the delivery out
