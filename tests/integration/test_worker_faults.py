"""The running product under worker, broker and database faults: every execution completes once.

A stage is held in the middle of its work by a real lock: the test's own MariaDB connection takes
`LOCK TABLES attendance_days READ`, so the merge day shards wait on it when they write their rows (no code
hooks); reads go on, so the merge planner, which reads the open days, is not held. While they
wait, the test kills or stops the worker, RabbitMQ or MariaDB, then lets go. Afterwards: one
execution, one set of rows, each mail once. Tests that stop a shared server run alone (marker `fault`).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pika
import pymysql
import pytest

from shared.database.tables import employees
from shared.events.bus import BRIDGE_DELIVERY_LIMIT, REASON_HEADER, event_channel
from shared.events.inbox import inbox_entry
from shared.records.queries import get_execution, get_stages
from shared.runtime.runner import run_async
from tests.integration import services
from tests.integration.hris_fixtures import PgHris
from tests.integration.scenarios import admin, table_locked, wait_until, waiting_on_lock
from tests.integration.smtp_fixtures import SmtpServer
from tests.integration.stack_fixtures import (
    MONDAY,
    TUESDAY,
    BridgeProcess,
    Stack,
    attendance_rows,
    count_rows,
    drain,
    executions_of,
    hrsync,
    nightly,
    read_dead_letters,
    running_stack,
)
from tests.integration.tcp_proxy import TcpProxy
from workers.app import TASK_EXCHANGE
from workers.bridge import HANDLE_ATTEMPTS

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]

# Short waits between retries (stage tasks, the bridge's attempts), so faults resolve within a test.
FAST_RETRIES = {"HRSYNC_RETRY_BACKOFF_SECONDS": "1", "HRSYNC_BRIDGE_RETRY_SECONDS": "0.05"}
# What one nightly run of Monday and Tuesday sends (the outbox keys are per recipient and day): the
# manager's digest of each day, LONE's missing punch on Monday, nothing to FULL or NONE.
MAILS = {"m": 2, "lone": 1, "full": 0, "none": 0}
TEAM = 4  # employees of the stack: M, FULL, LONE, NONE
TEAM_DAYS = TEAM * 2  # an attendance day each on Monday and Tuesday


@pytest.fixture
def stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,
          hrsync_env: Any) -> Iterator[Stack]:
    with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env, extra_env=FAST_RETRIES) as rig:
        yield rig


# -- helpers -------------------------------------------------------------------------------------------


def is_day_shard(row: dict[str, Any]) -> bool:
    return bool(row["stage"] == "merge" and not row["shard"].startswith(("punches:", "@")))


def wait_for_blocked_merge(stack: Stack, database: str, event_id: str) -> str:
    """Wait until the event's merge day shards are running and waiting on the lock; its execution id."""
    execution_id = wait_until(lambda: [e["id"] for e in stack.executions_of(event_id)], f"{event_id} admitted")[0]
    wait_until(lambda: any(is_day_shard(r) and r["status"] == "running" for r in run_async(get_stages(execution_id))),
               f"a merge day shard of {event_id} running")
    wait_until(lambda: waiting_on_lock(database) > 0, "a statement waiting on the table lock")
    return str(execution_id)


def mail_counts(stack: Stack) -> dict[str, int]:
    return {who: len(stack.mails_to(stack.address(who))) for who in MAILS}


def assert_each_mail_once(stack: Stack) -> None:
    assert mail_counts(stack) == MAILS
    message_ids = Counter(str(m.message["Message-ID"]) for m in stack.smtp.handler.messages)
    assert message_ids
    assert set(message_ids.values()) == {1}, message_ids


def assert_stage_rows_sane(execution_id: str) -> None:
    """Every shard of every stage succeeded, once: no row left running, none failed."""
    rows = run_async(get_stages(execution_id))
    left = [(r["stage"], r["shard"], r["status"]) for r in rows if r["status"] not in ("succeeded", "retrying")]
    assert left == [], left
    shards = {(r["stage"], r["shard"]) for r in rows}
    succeeded = Counter((r["stage"], r["shard"]) for r in rows if r["status"] == "succeeded")
    assert set(succeeded) == shards, succeeded
    assert set(succeeded.values()) == {1}, succeeded


def assert_ran_once(stack: Stack, event_id: str) -> dict[str, Any]:
    """The event's one execution succeeded with one set of rows and each mail sent once."""
    execution = stack.wait_for_execution(event_id)
    assert len(stack.executions_of(event_id)) == 1
    assert execution["status"] == "succeeded", execution
    assert set(execution["summary"]) == {"extract", "merge", "notify"}
    assert_stage_rows_sane(execution["id"])
    assert count_rows(employees, employees.c.employee_no.like(f"{stack.prefix}%")) == TEAM
    assert len(attendance_rows(stack)) == TEAM_DAYS
    assert_each_mail_once(stack)
    return execution


# -- the tests -----------------------------------------------------------------------------------------

def test_a_worker_killed_mid_stage_is_redelivered_and_completes_once(stack: Stack, app_db: str) -> None:
    """SIGKILL while merge shards run: a new worker gets them again and the execution completes once."""
    assert stack.worker is not None
    with table_locked(app_db, "attendance_days"):
        event_id = nightly(stack)
        wait_for_blocked_merge(stack, app_db, event_id)
        assert stack.worker.kill() == -signal.SIGKILL
        stack.worker.start()
    assert_ran_once(stack, event_id)


def test_a_warm_shutdown_under_load_finishes_running_shards_and_nothing_runs_twice(stack: Stack,
                                                                                     app_db: str) -> None:
    """SIGTERM with four executions in their merge: the worker finishes what runs, the next one the rest."""
    assert stack.worker is not None
    ranges = [(MONDAY, TUESDAY), (MONDAY, MONDAY), (TUESDAY, TUESDAY), (MONDAY, TUESDAY)]
    with table_locked(app_db, "attendance_days") as release:
        events = [stack.publish_event("hrsync.sync.requested", {"scope": "nightly", "from": str(first),
                                                                "to": str(last)}) for first, last in ranges]
        runs = [wait_for_blocked_merge(stack, app_db, event_id) for event_id in events]
        in_flight = [r["task_id"] for run in runs for r in run_async(get_stages(run))
                     if is_day_shard(r) and r["status"] == "running"]
        stack.worker.terminate()
        wait_until(lambda: "Warm shutdown" in stack.worker.text(), "the worker's warm shutdown")
        release()
    assert stack.worker.stop() == 0
    finished_before_exit = stack.worker.text()
    for task_id in in_flight:  # warm shutdown: the running shards finished in the old worker (a lone day
        # shard runs inline in its planner `hrsync.merge.days`)
        assert any(f"{task}[{task_id}] succeeded" in finished_before_exit
                   for task in ("hrsync.merge.shard", "hrsync.merge.days"))
    stack.worker.start()
    executions = [stack.wait_for_execution(event_id) for event_id in events]
    for event_id, execution in zip(events, executions, strict=True):
        assert len(stack.executions_of(event_id)) == 1
        assert execution["status"] == "succeeded", execution
        assert_stage_rows_sane(execution["id"])
    assert executions[0]["summary"]["merge"]["by_status"] == executions[3]["summary"]["merge"]["by_status"]
    assert len(attendance_rows(stack)) == TEAM_DAYS
    assert_each_mail_once(stack)


@contextmanager
def inbox_refuses(database: str, event_id: str) -> Iterator[None]:
    """A trigger on the app DB's inbox that rejects `event_id` on every insert (a real, lasting failure)."""
    trigger = f"refuse_{uuid.uuid4().hex[:8]}"
    with admin(database) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TRIGGER `{trigger}` BEFORE INSERT ON event_inbox FOR EACH ROW "
                    "IF NEW.event_id = %s THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; "
                    "END IF", (event_id,))
    try:
        yield
    finally:
        with admin(database) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS `{trigger}`")


def test_a_poison_event_is_dead_lettered_with_its_reason_while_others_flow(stack: Stack, app_db: str) -> None:
    """An event whose admission always fails: dead-lettered by the bridge with the error after its last
    delivery; the events published after it are launched meanwhile."""
    poison = f"{stack.prefix}-poison"
    dead: dict[str, dict[str, Any]] = {}

    def dead_lettered() -> bool:
        dead.update(read_dead_letters(stack.amqp_url))
        return poison in dead

    with inbox_refuses(app_db, poison):
        stack.publish_event("hrsync.sync.requested", {"scope": "hris"}, event_id=poison)
        others = [stack.publish_event("hrsync.sync.requested", {"scope": "hris"}) for _ in range(3)]
        for other in others:
            assert stack.wait_for_execution(other)["status"] == "succeeded"
        wait_until(dead_lettered, "the poison event in the dead-letter queue")
    headers = dead[poison]
    reason = str(headers[REASON_HEADER])
    assert "refused by the test" in reason
    assert f"{BRIDGE_DELIVERY_LIMIT + 1} deliveries" in reason
    assert "[SQL" not in reason  # the error's first line only
    assert "x-death" not in headers  # the bridge dead-lettered it (with a reason), not the queue's limit
    rejected_at = dt.datetime.fromisoformat(str(headers["x-hrsync-rejected-at"]))
    launched = [run_async(inbox_entry(other)) for other in others]
    assert all(entry and entry["launched_at"] < rejected_at for entry in launched), (launched, rejected_at)
    assert stack.executions_of(poison) == []
    assert run_async(inbox_entry(poison)) is None


SPIED = ("hrsync.merge.shard", "hrsync.merge.done", "hrsync.notify.send", "hrsync.notify.done",
         "hrsync.merge.days", "hrsync.notify.plan")  # planners: a lone shard and the final step run inline
PLANNERS = ("hrsync.merge.days", "hrsync.notify.plan")
Message = tuple[str, bytes, pika.BasicProperties]


def spy_on_tasks(url: str, queue: str) -> None:
    """A queue of our own that gets a copy of every merge and notify task message."""
    with event_channel(url) as channel:
        channel.queue_declare(queue)
        for key in ("hrsync.merge", "hrsync.notify"):
            channel.queue_bind(queue, TASK_EXCHANGE, routing_key=key)


def take_messages(url: str, queue: str) -> list[Message]:
    return [(str(method.routing_key), body, properties) for method, properties, body in drain(url, queue)]


def republish(url: str, messages: list[Message]) -> None:
    """Deliver the same task messages again, as the broker does after a lost acknowledgement."""
    with event_channel(url) as channel:
        channel.confirm_delivery()
        for routing_key, body, properties in messages:
            channel.basic_publish(TASK_EXCHANGE, routing_key, body, properties, mandatory=True)


def recorded(execution_id: str) -> tuple[Any, ...]:
    """What an execution left in the app DB: its row and its stage rows (with their timings)."""
    execution = run_async(get_execution(execution_id)) or {}
    stages = [(r["stage"], r["shard"], r["attempt"], r["status"], r["started_at"], r["finished_at"], r["result"])
              for r in run_async(get_stages(execution_id))]
    return execution["status"], execution["summary"], execution["finished_at"], stages


def test_chord_header_and_body_tasks_delivered_again_change_nothing(stack: Stack) -> None:
    """The merge and notify shards and their chords' bodies delivered a second time: the shards return their
    recorded results, the bodies stop, no row is written again, no mail goes twice, `finish` runs once."""
    assert stack.worker is not None
    spy = f"{stack.prefix}-spy"
    spy_on_tasks(stack.amqp_url, spy)
    event_id = nightly(stack)
    execution = assert_ran_once(stack, event_id)
    before = recorded(execution["id"])
    copies = [m for m in take_messages(stack.amqp_url, spy) if m[2].headers["task"] in SPIED]
    assert set(PLANNERS) <= {m[2].headers["task"] for m in copies}
    seen = len(stack.worker.text())
    republish(stack.amqp_url, copies)

    def handled_again(task: str, task_id: str) -> bool:
        log = stack.worker.text()[seen:] if stack.worker else ""
        if task.endswith(".done") or task in PLANNERS:  # a chord body (or a planner) sent twice stops at once
            return f"{task}[{task_id}] ignored" in log
        return f"{task}[{task_id}] succeeded" in log  # a succeeded shard returns its recorded result

    copied = [(m[2].headers["task"], m[2].headers["id"]) for m in copies]
    wait_until(lambda: all(handled_again(*task) for task in copied), f"the copies handled: {copied}")
    time.sleep(2)  # room for anything the copies might set off (there must be nothing)
    assert "hrsync.workflow.finish[" not in stack.worker.text()[seen:]
    assert recorded(execution["id"]) == before
    assert_each_mail_once(stack)


def test_the_same_event_ten_times_runs_once(stack: Stack, app_db: str) -> None:
    """One event id published 10 times, 7 of them while its execution runs: one execution, rows and mails once."""
    event_id = f"{stack.prefix}-again"
    with table_locked(app_db, "attendance_days"):
        nightly(stack, event_id)
        execution_id = wait_for_blocked_merge(stack, app_db, event_id)
        for _ in range(7):
            nightly(stack, event_id)
        marker = stack.publish_event("hrsync.sync.requested", {"scope": "hris"})
        assert stack.wait_for_execution(marker)["status"] == "succeeded"  # the bridge is past the copies
        assert (run_async(get_execution(execution_id)) or {})["status"] == "running"
    stack.wait_for_execution(event_id)
    for _ in range(2):
        nightly(stack, event_id)
    stack.wait_for_execution(stack.publish_event("hrsync.sync.requested", {"scope": "hris"}))
    assert_ran_once(stack, event_id)
    assert (run_async(inbox_entry(event_id)) or {})["status"] == "launched"


def succeeded_run(stack: Stack, event_id: str) -> dict[str, Any]:
    """The event's execution once it succeeded: at once, or after one `hrsync replay` if it failed cleanly."""
    execution = stack.wait_for_execution(event_id)
    if execution["status"] == "failed":
        replayed = hrsync(stack, "replay", execution["id"], "--reason", "test", "--wait", "--timeout", "150", "--json")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        execution = run_async(get_execution(json.loads(replayed.stdout.splitlines()[0])["execution_id"])) or {}
    assert execution["status"] == "succeeded", execution
    assert len(stack.executions_of(event_id)) == 1
    return execution


def assert_done_once(stack: Stack, execution: dict[str, Any]) -> None:
    assert_stage_rows_sane(execution["id"])
    assert count_rows(employees, employees.c.employee_no.like(f"{stack.prefix}%")) == TEAM
    assert len(attendance_rows(stack)) == TEAM_DAYS
    assert_each_mail_once(stack)


def test_rabbitmq_restarted_while_a_stage_runs_the_execution_completes_once(stack: Stack, app_db: str) -> None:
    """The broker's application stopped and started while merge shards run: worker and bridge reconnect, the
    execution completes (or fails cleanly and a replay completes it), nothing is done twice."""
    with table_locked(app_db, "attendance_days"):
        event_id = nightly(stack)
        wait_for_blocked_merge(stack, app_db, event_id)
        try:
            services.rabbitmq_stop_app()
        finally:
            services.rabbitmq_start_app()
    assert_done_once(stack, succeeded_run(stack, event_id))
    after = stack.publish_event("hrsync.sync.requested", {"scope": "hris"})  # the bridge consumes again
    assert stack.wait_for_execution(after)["status"] == "succeeded"


def app_db_answers() -> bool:
    try:
        executions_of("-")
    except Exception:  # the pool's connections died with the server: the next try opens new ones
        return False
    return True


def test_mariadb_killed_mid_chord_the_execution_completes_once(stack: Stack, app_db: str) -> None:
    """MariaDB killed with SIGKILL while merge shards wait in it: transient errors are retried, the execution
    completes (or fails cleanly and a replay completes it), nothing is done twice."""
    with table_locked(app_db, "attendance_days"):
        event_id = nightly(stack)
        wait_for_blocked_merge(stack, app_db, event_id)
        services.mariadb_kill9_and_restart()
    wait_until(app_db_answers, "the app DB answering again")
    assert_done_once(stack, succeeded_run(stack, event_id))


def test_an_event_waits_out_a_database_outage_in_the_bridge_not_in_the_dead_letter_queue(stack: Stack) -> None:
    """MariaDB down while an event arrives: the bridge keeps retrying the same delivery past its attempt
    limit (a transient error is not the message's fault), then launches it once the database is back."""
    services.mariadb_kill9()
    try:
        event_id = nightly(stack)
        wait_until(lambda: len(stack.bridge_logs("bridge.handle_failed", event_id)) > HANDLE_ATTEMPTS + 1,
                   "the bridge failing on the event past its attempt limit")
    finally:
        services.mariadb_start()
    wait_until(app_db_answers, "the app DB answering again")
    assert_ran_once(stack, event_id)
    [launched] = stack.bridge_logs("bridge.launched", event_id)
    assert launched["redelivered"] is False  # held, never given back
    assert read_dead_letters(stack.amqp_url) == {}


@contextmanager
def inbox_updates_stall(database: str) -> Iterator[None]:
    """A trigger that makes every update of the inbox sleep (the bridge's "mark launched" step)."""
    trigger = f"stall_{uuid.uuid4().hex[:8]}"
    with admin(database) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TRIGGER `{trigger}` BEFORE UPDATE ON event_inbox FOR EACH ROW DO SLEEP(600)")
    try:
        yield
    finally:
        with admin(database) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS `{trigger}`")
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND STATE = 'User sleep'",
                        (database,))
            for (thread,) in cur.fetchall():  # the killed bridge's statement: it would hold the row lock
                with suppress(pymysql.Error):
                    cur.execute(f"KILL {int(thread)}")


def sleeping(database: str) -> bool:
    with admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND STATE = 'User sleep'",
                    (database,))
        return bool(cur.fetchone()[0])  # type: ignore[index]


def test_a_bridge_killed_between_the_launch_and_the_ack_leaves_one_execution(stack: Stack, app_db: str) -> None:
    """SIGKILL while the bridge marks the event launched (the canvas already sent): the redelivered event
    is re-admitted and launched again, and the second launch stops at the execution's claim."""
    assert stack.bridge is not None
    with inbox_updates_stall(app_db):
        event_id = nightly(stack)
        wait_until(lambda: sleeping(app_db), "the bridge stuck marking the event launched")
        assert stack.bridge.kill() == -signal.SIGKILL
    stack.bridge.start()
    # The new bridge's launch (the killed one never got that far) may come after the execution finished:
    # the killed bridge's statement holds the inbox row until MariaDB notices the client is gone.
    launches = wait_until(lambda: stack.bridge_logs("bridge.launched", event_id), "the new bridge's launch")
    assert [(r["redelivered"], r["readmitted"]) for r in launches] == [(True, True)]
    assert_ran_once(stack, event_id)


def test_a_bridge_killed_between_the_inbox_commit_and_the_launch_leaves_one_execution(stack: Stack) -> None:
    """SIGKILL while the bridge's canvas publish hangs (its broker connection blackholed by a proxy, after the
    inbox commit): the redelivered event is re-admitted and launched once."""
    assert stack.bridge is not None
    assert stack.bridge.stop() == 0
    proxy = TcpProxy()
    try:
        bridge = stack.bridge = BridgeProcess({**stack.env, "HRSYNC_BROKER_URL": stack.amqp_url.replace(
            ":5672/", f":{proxy.port}/")}).start()
        proxy.set_mode("blackhole")
        event_id = nightly(stack)
        wait_until(lambda: run_async(inbox_entry(event_id)), "the event admitted")
        time.sleep(1)  # the bridge is in its launch now, which the silent broker connection never confirms
        assert (run_async(inbox_entry(event_id)) or {})["status"] != "launched"
        assert bridge.kill() == -signal.SIGKILL
        proxy.set_mode("pass")
        bridge.start()
        assert_ran_once(stack, event_id)
    finally:
        proxy.close()
    [launched] = bridge.logs("bridge.launched", event_id)
    assert (launched["redelivered"], launched["readmitted"]) == (True, True)
