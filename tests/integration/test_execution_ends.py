"""No execution stays pending or running for good (DESIGN §7), on the running product: a transient database
error injected at the claim and at the finish (by MariaDB triggers, server-side: no code hooks), and
`hrsync cancel` on an execution whose extract is blocked in the HRIS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pyodbc
import pytest

from shared.records.queries import get_execution, get_stages
from shared.runtime.runner import run_async
from tests.conftest import MARIADB
from tests.integration.stack_fixtures import Stack, hrsync, stack_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RETRIES = {"HRSYNC_TASK_MAX_RETRIES": "2", "HRSYNC_RETRY_BACKOFF_SECONDS": "0.2"}
INNER_TRIES = 5  # shared.config.retry: tries of one transaction before the task itself retries


stack = stack_fixture(extra_env=RETRIES)  # two task retries (1 s apart)


@pytest.fixture
def faults(app_db: str) -> Iterator[pymysql.Connection]:  # type: ignore[type-arg]
    """Triggers that raise a deadlock (1213, transient) on the claim (pending → running) and the finish
    (running → succeeded) of executions whose event id starts with `fault-`, as many times as the
    non-transactional `fault_budget` table says (its count survives the statement's rollback)."""
    conn = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", database=app_db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE fault_budget (point VARCHAR(16) PRIMARY KEY, n INT NOT NULL) ENGINE=Aria")
        cur.execute("""
            CREATE TRIGGER fault_claim_finish BEFORE UPDATE ON executions FOR EACH ROW
            BEGIN
              DECLARE point VARCHAR(16) DEFAULT NULL;
              IF NEW.event_id LIKE 'fault-%' THEN
                IF OLD.status = 'pending' AND NEW.status = 'running' THEN SET point = 'claim';
                ELSEIF OLD.status = 'running' AND NEW.status = 'succeeded' THEN SET point = 'finish';
                END IF;
              END IF;
              IF point IS NOT NULL AND (SELECT n FROM fault_budget WHERE fault_budget.point = point) > 0 THEN
                UPDATE fault_budget SET n = n - 1 WHERE fault_budget.point = point;
                SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'injected deadlock';
              END IF;
            END""")
    try:
        yield conn
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS fault_claim_finish")
            cur.execute("DROP TABLE IF EXISTS fault_budget")
        conn.close()


def rows_of(execution_id: str, stage: str, shard: str) -> list[tuple[int, str, str | None]]:
    return [(r["attempt"], r["status"], r["error_message"]) for r in run_async(get_stages(execution_id))
            if (r["stage"], r["shard"]) == (stage, shard)]


def test_transient_errors_at_claim_and_finish_are_retried_and_the_execution_ends(
        stack: Stack, faults: pymysql.Connection) -> None:  # type: ignore[type-arg]
    """Claim and finish each fail more often than one transaction's retries: the task retries them, their rows
    show the failed attempt, and the execution still succeeds."""
    with faults.cursor() as cur:
        cur.executemany("INSERT INTO fault_budget VALUES (%s, %s)", [("claim", INNER_TRIES), ("finish", INNER_TRIES)])
    event_id = stack.publish_event("hrsync.sync.requested", {"scope": "hris"}, event_id=f"fault-{stack.prefix}")
    execution = stack.wait_for_execution(event_id)
    assert execution["status"] == "succeeded", execution
    for shard in ("@start", "@finish"):
        rows = rows_of(execution["id"], "workflow", shard)
        assert [(attempt, status) for attempt, status, _ in rows] == [(1, "retrying"), (2, "succeeded")], rows
        assert "injected deadlock" in str(rows[0][2])
    with faults.cursor() as cur:
        cur.execute("SELECT point, n FROM fault_budget ORDER BY point")
        assert cur.fetchall() == (("claim", 0), ("finish", 0))  # every injected error was met


def test_cancel_a_running_execution(stack: Stack) -> None:
    """`hrsync cancel` while the extract planner is blocked in the HRIS: the execution is cancelled at once,
    the planner's shards stop at their start, it never becomes succeeded or failed; a second cancel exits 1."""
    blocker = pyodbc.connect(stack.hris.dsn, autocommit=False)
    try:
        blocker.execute("LOCK TABLE hr_people IN ACCESS EXCLUSIVE MODE")  # the extract's reads wait
        event_id = stack.publish_event("hrsync.sync.requested", {"scope": "hris"})
        execution_id = wait_for(lambda: next((e["id"] for e in stack.executions_of(event_id)
                                              if rows_of(e["id"], "extract", "@plan")), None))
        done = hrsync(stack, "cancel", execution_id, "--reason", "blocked source", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["previous_status"] == "running"
    finally:
        blocker.rollback()
        blocker.close()
    wait_for(lambda: any(line.get("execution_id") == execution_id
                         for line in worker_lines(stack, "stage.stopped")) or None)
    execution = run_async(get_execution(execution_id)) or {}
    assert (execution["status"], execution["error"]) == ("cancelled", "cancelled: blocked source")
    ran = {(r["stage"], r["shard"]) for r in run_async(get_stages(execution_id))}
    assert ran <= {("workflow", "@start"), ("extract", "@plan")}, ran  # nothing started after the cancel
    again = hrsync(stack, "cancel", execution_id, "--reason", "test")
    assert again.returncode == 1
    assert "is cancelled" in again.stderr


def worker_lines(stack: Stack, event: str) -> list[dict[str, Any]]:
    """The worker's JSON log lines `event`."""
    found = []
    for line in (stack.worker.text() if stack.worker else "").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            found.append(record)
    return found


def wait_for(probe: Any, timeout: float = 90) -> Any:
    """Poll `probe()` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := probe()) is not None:
            return value
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting after {timeout:.0f} s")
