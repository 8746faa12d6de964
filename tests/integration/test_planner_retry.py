"""A planner whose inline shard failed is retried, on the real stack: the retry goes on past its recorded
plan (no second plan), reruns only the shard that failed, in the planner's own task, and the execution
succeeds with each effect once.

The failure is a deadlock (1213, transient) raised server-side by a MariaDB trigger on the table the inline
shard writes, as many times as one transaction's retries inside the stage allow, so the task itself retries.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql
import pytest
from tenacity import stop_after_attempt

from pipelines.merge.stage import DAYS as DAY_SHARDS
from pipelines.merge.stage import PLAN_DAYS, PUNCHES, DayShard, ImportShard
from pipelines.stage import WorkKind
from shared.config.retry import transient_retrying
from shared.database.tables import attendance_days, punches
from shared.records.queries import get_stages
from shared.records.shards import ShardKind
from shared.runtime.runner import run_async
from tests.conftest import MARIADB
from tests.integration.stack_fixtures import MONDAY, Stack, app_rows, at, stack_fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RETRIES = {"HRSYNC_TASK_MAX_RETRIES": "2", "HRSYNC_RETRY_BACKOFF_SECONDS": "0.2"}  # retries 1 s apart

stack = stack_fixture(extra_env=RETRIES)


def inner_tries() -> int:
    """Tries of one transaction inside a stage (`transient_retrying`) before the task itself retries."""
    stop = transient_retrying().stop
    assert isinstance(stop, stop_after_attempt)
    return int(stop.max_attempt_number)


@dataclass(frozen=True)
class Fault:
    """Where the deadlock is injected: the table the inline shard writes, that shard's kind and its planner."""

    table: str
    shard_kind: WorkKind
    planner: str


IMPORT = Fault("punches", PUNCHES, ShardKind.PLAN)  # `merge.plan`: its import, then the days planner
DAYS = Fault("attendance_days", DAY_SHARDS, PLAN_DAYS)  # `merge.days`: its day shard, then @done


class Injector:
    """A BEFORE INSERT trigger on one app table that raises a deadlock for this stack's employees while its
    budget lasts; the budget sits in a non-transactional (Aria) table, so each decrement survives the
    rollback of the statement it failed."""

    def __init__(self, conn: pymysql.Connection, suffix: str) -> None:
        self.conn, self.budget_table = conn, f"fault_budget_{suffix}"
        self.triggers: list[str] = []
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {self.budget_table} (n INT NOT NULL) ENGINE=Aria")
            cur.execute(f"INSERT INTO {self.budget_table} VALUES (0)")

    def arm(self, table: str, prefix: str, times: int) -> None:
        """Fail the next `times` inserts into `table` of employees numbered `prefix…`."""
        trigger = f"fault_{table}_{prefix}"
        with self.conn.cursor() as cur:
            cur.execute(f"""
                CREATE TRIGGER {trigger} BEFORE INSERT ON {table} FOR EACH ROW
                BEGIN
                  IF NEW.employee_no LIKE '{prefix}%' AND (SELECT n FROM {self.budget_table}) > 0 THEN
                    UPDATE {self.budget_table} SET n = n - 1;
                    SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'injected deadlock';
                  END IF;
                END""")
            self.triggers.append(trigger)
            cur.execute(f"UPDATE {self.budget_table} SET n = %s", (times,))

    def left(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT n FROM {self.budget_table}")
            return int(cur.fetchone()[0])

    def close(self) -> None:
        with self.conn.cursor() as cur:
            for trigger in self.triggers:
                cur.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            cur.execute(f"DROP TABLE IF EXISTS {self.budget_table}")
        self.conn.close()


@pytest.fixture
def injector(app_db: str, stack: Stack) -> Iterator[Injector]:
    """An `Injector` on the test's app database; its triggers and budget are dropped afterwards."""
    conn = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", database=app_db, autocommit=True)
    faults = Injector(conn, stack.prefix)
    try:
        yield faults
    finally:
        faults.close()


def by_shard(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The merge stage's rows per shard, by attempt."""
    shards: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["attempt"]):
        if row["stage"] == "merge":
            shards[row["shard"]].append(row)
    return shards


def attempts(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(r["attempt"], r["status"]) for r in rows]


@pytest.mark.parametrize("fault", [IMPORT, DAYS], ids=["import-shard", "day-shard"])
def test_a_planner_retried_after_its_inline_shard_failed_goes_on_from_its_recorded_plan(
        stack: Stack, injector: Injector, fault: Fault) -> None:
    """The inline shard's first attempt fails past the in-stage retries: the planner task retries, reuses its one
    recorded plan, reruns that shard in the same task, and the execution succeeds with each row written once."""
    assert stack.wait_for_execution(stack.publish_event("hrsync.sync.requested", {"scope": "hris"}))[
        "status"] == "succeeded"
    tries = inner_tries()
    injector.arm(fault.table, stack.prefix, tries)
    event_id = stack.publish_event("hrsync.punches.imported", {"from": at(MONDAY, "08:50").isoformat(),
                                                               "to": at(MONDAY, "08:57").isoformat()})
    execution = stack.wait_for_execution(event_id)
    assert execution["status"] == "succeeded", execution
    assert injector.left() == 0  # every injected deadlock was met

    shards = by_shard(run_async(get_stages(execution["id"])))
    # Each planner recorded one plan, once; every planned shard ran, under the name the plan gave it.
    assert attempts(shards[ShardKind.PLAN]) == [(1, "succeeded")]
    assert attempts(shards[PLAN_DAYS]) == [(1, "succeeded")]
    imports = [ImportShard.from_json(s) for s in shards[ShardKind.PLAN][0]["result"]["shards"]]
    days = [DayShard.from_json(s) for s in shards[PLAN_DAYS][0]["result"]["shards"]]
    assert len(imports) == 1  # one window and one day shard: both run inline
    assert len(days) == 1
    work = {s for s in shards if not s.startswith("@")}
    assert work == {imports[0].key, days[0].key}

    # The faulted shard: attempt 1 `retrying` with the deadlock, then attempt 2 `succeeded`, both run by its
    # planner's task (a Celery retry keeps the task id). Steps after it in that task run as attempt 2 (the
    # task's retries + 1); the other shard ran once.
    faulted = imports[0].key if fault is IMPORT else days[0].key
    other = days[0].key if fault is IMPORT else imports[0].key
    assert attempts(shards[faulted]) == [(1, "retrying"), (2, "succeeded")], shards[faulted]
    assert "injected deadlock" in (shards[faulted][0]["error_message"] or "")
    planner_task = shards[fault.planner][0]["task_id"]
    assert {r["task_id"] for r in shards[faulted]} == {planner_task}
    assert attempts(shards[other]) == [(1, "succeeded")]
    # `merge.days` runs @done inline after its shard; `merge.plan` replaces itself with `merge.days` (a new
    # message: retries 0), so there @done is a first attempt.
    assert attempts(shards[ShardKind.DONE]) == [(2 if fault is DAYS else 1, "succeeded")]

    # Effects once: the window's taps (M and FULL at 08:55) stored once each, the import counted them once.
    stored = app_rows(punches, punches.c.employee_no.like(f"{stack.prefix}%"))
    assert sorted((r["employee_no"], r["punched_at"]) for r in stored) == sorted(
        (stack.no(who), at(MONDAY, "08:55")) for who in ("M", "FULL"))
    imported = shards[imports[0].key][-1]["result"]
    assert (imported["punches"], imported["punches_new"]) == (len(stored), len(stored))
    # The day shard named the two employees; each (employee, day) has one row, written by this execution, and
    # the stage's summary counts each row once.
    assert days[0].employees == sorted(stack.no(who) for who in ("M", "FULL"))
    written = app_rows(attendance_days, attendance_days.c.execution_id == execution["id"])
    pairs = Counter((r["employee_no"], r["work_date"]) for r in written)
    assert set(pairs.values()) == {1}, pairs
    assert {(no, MONDAY) for no in days[0].employees} <= set(pairs)
    assert all(no in days[0].employees and days[0].days.date_from <= day <= days[0].days.date_to
               for no, day in pairs)
    assert shards[days[0].key][-1]["rows_out"] == len(written)
    assert sum(execution["summary"]["merge"]["by_status"].values()) == len(written)
