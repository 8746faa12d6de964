"""The scheduler process (`hrsync scheduler`) against the real RabbitMQ and MariaDB: slot ids, two
schedulers → one execution, broker outages (through a TCP proxy), catch-up after a restart, and the
`hrsync schedule` commands."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pika
import pika.exceptions
import pytest

from scheduler.runs import runs_of
from shared.database.db import app_engine
from shared.database.tables import schedule_runs
from shared.events.bus import BRIDGE_QUEUE, EVENTS_EXCHANGE, connection_parameters, declare_topology, event_channel
from shared.events.models import CLI_SOURCE, SCHEDULER_SOURCE, SYNC_REQUESTED
from shared.runtime.runner import run_async
from tests.conftest import RABBITMQ_URL, REDIS_URL, require_service
from tests.integration.stack_fixtures import HrsyncProcess, executions_of
from tests.integration.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ZONE = ZoneInfo("Europe/Berlin")
HRSYNC = os.path.join(os.path.dirname(sys.executable), "hrsync")
CELERY_QUEUES = ("hrsync.workflow", "hrsync.extract", "hrsync.merge", "hrsync.notify", "hrsync.export")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def daily_cron_at(moment: dt.datetime) -> str:
    """A 6-field cron (seconds first) firing once a day at `moment`'s Berlin wall-clock second."""
    local = moment.astimezone(ZONE)
    return f"{local.second} {local.minute} {local.hour} * * *"


# A slot this far ahead is still ahead once a scheduler started on a busy machine (two test processes) has read its
# jobs; a slot that passed during the start would be scheduled for tomorrow.
START_MARGIN = 8


def slot_in(seconds: float) -> dt.datetime:
    """A whole-second instant about `seconds` from now (UTC)."""
    return (utcnow() + dt.timedelta(seconds=seconds)).replace(microsecond=0)


def slot_id(job: str, slot: dt.datetime) -> str:
    return f"{job}:{slot.astimezone(dt.UTC).replace(tzinfo=None).isoformat()}Z"


def new_job() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


class EventObserver:
    """A temporary exclusive queue bound to `hrsync.events` for sync requests."""

    def __init__(self) -> None:
        self.connection = pika.BlockingConnection(connection_parameters(RABBITMQ_URL))
        self.channel = self.connection.channel()
        declare_topology(self.channel)
        self.queue = self.channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.channel.queue_bind(self.queue, EVENTS_EXCHANGE, routing_key=SYNC_REQUESTED)
        self.seen: list[tuple[str, pika.BasicProperties, dict[str, Any]]] = []

    def _drain(self) -> None:
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return
            with suppress(ValueError):  # other tests on this broker publish invalid events on purpose
                event = json.loads(body)
                if isinstance(event, dict) and isinstance(event.get("id"), str):
                    self.seen.append((method.routing_key, properties, event))

    def events(self, prefix: str, count: int = 1, timeout: float = 30, settle: float = 2.0) -> list[
            tuple[str, pika.BasicProperties, dict[str, Any]]]:
        """The events whose id starts with `prefix`: waits for `count`, then `settle` seconds for extras."""
        deadline = time.monotonic() + timeout
        matching: list[tuple[str, pika.BasicProperties, dict[str, Any]]] = []
        while time.monotonic() < deadline and len(matching) < count:
            self._drain()
            matching = [m for m in self.seen if m[2]["id"].startswith(prefix)]
            self.connection.sleep(0.1)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            self._drain()
            self.connection.sleep(0.1)
        return [m for m in self.seen if m[2]["id"].startswith(prefix)]

    def close(self) -> None:
        with suppress(pika.exceptions.AMQPError):
            self.connection.close()


def purge(*queues: str) -> None:
    """Empty shared queues (those that exist) so no other test sees this module's messages."""
    for queue in queues:
        with suppress(pika.exceptions.ChannelClosedByBroker), event_channel(RABBITMQ_URL) as channel:
            channel.queue_purge(queue)


@pytest.fixture
def observer(app_db: str) -> Iterator[EventObserver]:
    """An event observer on the real RabbitMQ; the bridge queue is emptied before and after."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    purge(BRIDGE_QUEUE)
    watcher = EventObserver()
    try:
        yield watcher
    finally:
        watcher.close()
        purge(BRIDGE_QUEUE, *CELERY_QUEUES)


@pytest.fixture
def scheduler_env(app_db: str) -> Any:
    """Builds the environment of an `hrsync scheduler` with the given jobs (the nightly switched off)."""

    def build(jobs: dict[str, dict[str, Any]], events_url: str = RABBITMQ_URL) -> dict[str, str]:
        return {"HRSYNC_DATABASE_URL": f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}",
                "HRSYNC_EVENTS_URL": events_url, "HRSYNC_BROKER_URL": RABBITMQ_URL,
                "HRSYNC_RESULT_BACKEND": REDIS_URL, "HRSYNC_TIMEZONE": str(ZONE), "HRSYNC_LOG_FORMAT": "json",
                "HRSYNC_SCHEDULES": json.dumps({"nightly": None, **jobs})}

    return build


def recorded(job: str) -> list[dict[str, Any]]:
    return run_async(runs_of(job))


def test_due_slot_publishes_one_event_with_the_slot_id(observer: EventObserver, scheduler_env: Any) -> None:
    """A slot due seconds after start publishes one event: id `<job>:<slot UTC>`, routing key = type."""
    job, slot = new_job(), slot_in(START_MARGIN)
    process = HrsyncProcess(["scheduler"], scheduler_env(
        {job: {"cron": daily_cron_at(slot), "scope": "attendance", "days": 1, "grace": 60}}))
    try:
        started = process.wait_for_log("scheduler.started")
        assert {"job": job, "next_fire_time": slot.isoformat()} in started["jobs"]
        seen = observer.events(job, timeout=20)
    finally:
        code = process.stop()
    assert code == 0, process.text()[-3000:]
    assert len(seen) == 1, seen
    routing_key, properties, body = seen[0]
    assert routing_key == SYNC_REQUESTED
    assert properties.message_id == body["id"] == slot_id(job, slot)
    assert body["source"] == SCHEDULER_SOURCE
    assert dt.datetime.fromisoformat(body["time"]) == slot
    local_day = slot.astimezone(ZONE).date().isoformat()
    assert body["data"] == {"scope": "attendance", "from": local_day, "to": local_day, "notify": True}
    assert not process.logs("schedule.catch_up")  # fired by the trigger, not caught up at start
    [run] = recorded(job)
    assert (run["status"], run["attempts"], run["fire_time"]) == ("published", 1, slot)


def test_two_schedulers_on_one_slot_launch_one_execution(observer: EventObserver, scheduler_env: Any) -> None:
    """Two scheduler processes fire the same slot: one event id, and the bridge makes one execution of it."""
    require_service("Redis", "127.0.0.1", 6379)
    job, slot = new_job(), slot_in(START_MARGIN + 2)
    env = scheduler_env({job: {"cron": daily_cron_at(slot), "scope": "hris", "grace": 60}})
    bridge = HrsyncProcess(["bridge"], env)
    schedulers = [HrsyncProcess(["scheduler"], env) for _ in range(2)]
    try:
        for process in schedulers:
            process.wait_for_log("scheduler.started")
        seen = observer.events(job, count=2, timeout=25)
        deadline = time.monotonic() + 30
        while not executions_of(slot_id(job, slot)) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # time for a second execution, were the inbox to let one through
        found = executions_of(slot_id(job, slot))
    finally:
        codes = [process.stop() for process in schedulers]
        bridge_code = bridge.stop()
    assert codes == [0, 0], [p.text()[-2000:] for p in schedulers]
    assert bridge_code == 0, bridge.text()[-3000:]
    assert seen
    assert {body["id"] for _, _, body in seen} == {slot_id(job, slot)}
    assert len(found) == 1, found
    assert found[0]["trigger"] == "schedule"
    assert [r["status"] for r in recorded(job)] == ["published"]


@pytest.mark.parametrize("outage", ["refuse", "blackhole"])
def test_broker_back_within_the_grace_gets_the_event_once(
        observer: EventObserver, scheduler_env: Any, tcp_proxy: TcpProxy, outage: str) -> None:
    """The broker is unreachable at fire time and back within the grace: the event arrives once."""
    job, slot = new_job(), slot_in(START_MARGIN)
    process = HrsyncProcess(["scheduler"], scheduler_env(
        {job: {"cron": daily_cron_at(slot), "scope": "hris", "grace": 120}}, events_url=tcp_proxy.url))
    try:
        process.wait_for_log("scheduler.started")
        tcp_proxy.set_mode(outage)  # type: ignore[arg-type]
        process.wait_for_log("schedule.publish_retry", timeout=30)
        time.sleep(2)
        tcp_proxy.set_mode("pass")
        seen = observer.events(job, timeout=60, settle=3)
        published = process.wait_for_log("schedule.published")
    finally:
        code = process.stop()
    assert code == 0, process.text()[-3000:]
    assert [body["id"] for _, _, body in seen] == [slot_id(job, slot)]
    assert published["attempts"] >= 2
    [run] = recorded(job)
    assert run["status"] == "published"
    assert run["attempts"] >= 2


def test_slot_not_published_within_the_grace_is_recorded_failed(
        observer: EventObserver, scheduler_env: Any, tcp_proxy: TcpProxy) -> None:
    """With the broker away for the whole grace, the slot is recorded `failed` with the reason, not lost."""
    job, slot = new_job(), slot_in(START_MARGIN)
    tcp_proxy.set_mode("refuse")
    process = HrsyncProcess(["scheduler"], scheduler_env(
        {job: {"cron": daily_cron_at(slot), "scope": "hris", "grace": 3}}, events_url=tcp_proxy.url))
    try:
        line = process.wait_for_log("schedule.not_published", timeout=30)
    finally:
        code = process.stop()
    assert code == 0, process.text()[-3000:]
    assert line["event_id"] == slot_id(job, slot)
    assert line["status"] == "failed"
    [run] = recorded(job)
    assert run["status"] == "failed"
    assert "grace" in run["error"]
    assert run["attempts"] >= 2
    assert observer.events(job, count=0, timeout=0, settle=1) == []


def test_restart_within_the_grace_catches_up_the_slot_once(observer: EventObserver, scheduler_env: Any) -> None:
    """A slot that passed while no scheduler ran is published once at start, and not again on a restart."""
    job, slot = new_job(), slot_in(-5)
    env = scheduler_env({job: {"cron": daily_cron_at(slot), "scope": "hris", "grace": 600}})
    first = HrsyncProcess(["scheduler"], env)
    try:
        caught_up = first.wait_for_log("schedule.catch_up")
        first.wait_for_log("schedule.published")
    finally:
        first_code = first.stop()
    second = HrsyncProcess(["scheduler"], env)
    try:
        second.wait_for_log("scheduler.started")
        seen = observer.events(job, count=2, timeout=3)
    finally:
        second_code = second.stop()
    assert (first_code, second_code) == (0, 0), first.text()[-2000:] + second.text()[-2000:]
    assert caught_up["event_id"] == slot_id(job, slot)
    assert [body["id"] for _, _, body in seen] == [slot_id(job, slot)]
    assert not second.logs("schedule.catch_up")


def test_slots_gone_by_while_down_are_recorded_missed(observer: EventObserver, scheduler_env: Any) -> None:
    """Slots older than the grace that no scheduler published are recorded `missed` at start."""
    job = new_job()
    slot = (utcnow() - dt.timedelta(hours=1)).replace(microsecond=0)
    two_days_ago = slot - dt.timedelta(days=2)

    async def seed() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(schedule_runs.insert().values(
                event_id=slot_id(job, two_days_ago), job=job, fire_time=two_days_ago, status="published",
                attempts=1, published_at=two_days_ago, updated_at=two_days_ago))

    run_async(seed())
    process = HrsyncProcess(["scheduler"], scheduler_env(
        {job: {"cron": daily_cron_at(slot), "scope": "hris", "grace": 60}}))
    try:
        line = process.wait_for_log("schedule.not_published")
    finally:
        code = process.stop()
    assert code == 0, process.text()[-3000:]
    assert line["status"] == "missed"
    assert line["event_id"] == slot_id(job, slot)
    assert "2 slot(s)" in line["error"]
    assert [r["status"] for r in recorded(job)] == ["missed", "published"]
    assert observer.events(job, count=0, timeout=0, settle=0.5) == []


def test_schedule_list_json_shows_next_fire_times(scheduler_env: Any) -> None:
    """`hrsync schedule list --json` lists the nightly and configured jobs with their next fire times."""
    env = {**os.environ, **scheduler_env({"hourly": {"cron": "5 * * * *", "scope": "attendance", "days": 1}}),
           "HRSYNC_SCHEDULES": json.dumps({"hourly": {"cron": "5 * * * *", "scope": "attendance", "days": 1}}),
           "HRSYNC_NIGHTLY_CRON": "30 2 * * *"}
    result = subprocess.run([HRSYNC, "schedule", "list", "--json"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {row["job"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"nightly", "hourly"}
    nightly = dt.datetime.fromisoformat(rows["nightly"]["next_fire_time_local"])
    assert (nightly.hour, nightly.minute, nightly.second) == (2, 30, 0)
    assert rows["nightly"]["grace_seconds"] == 6 * 3600
    assert rows["nightly"]["timezone"] == str(ZONE)
    hourly = dt.datetime.fromisoformat(rows["hourly"]["next_fire_time"])
    assert hourly.minute == 5
    assert dt.timedelta(0) < hourly - utcnow() <= dt.timedelta(hours=1)
    assert rows["hourly"]["next_event_id"] == slot_id("hourly", hourly)


def test_schedule_run_publishes_a_manual_event(observer: EventObserver, scheduler_env: Any) -> None:
    """`hrsync schedule run JOB` publishes the job's request now with a `<job>:manual:<uuid>` id."""
    job = new_job()
    env = {**os.environ, **scheduler_env({job: {"cron": "0 3 * * *", "scope": "hris", "notify": False}})}
    result = subprocess.run([HRSYNC, "schedule", "run", job], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [(routing_key, _, body)] = observer.events(f"{job}:manual:", timeout=10, settle=0.5)
    assert routing_key == SYNC_REQUESTED
    assert str(uuid.UUID(body["id"].removeprefix(f"{job}:manual:"))) in body["id"]
    assert body["source"] == CLI_SOURCE
    assert body["data"] == {"scope": "hris", "notify": False}


def test_schedule_run_of_an_unknown_job_is_bad_usage(scheduler_env: Any) -> None:
    """`hrsync schedule run` of a job that does not exist exits 2 with one line naming the job."""
    env = {**os.environ, **scheduler_env({})}
    result = subprocess.run([HRSYNC, "schedule", "run", "nope"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "'nope'" in result.stderr


FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


class WallClock:
    """The wall clock of child processes, shifted by libfaketime (re-read on every call; the monotonic
    clock, which waits and timeouts use, stays true)."""

    def __init__(self, offset_file: Path) -> None:
        self.offset_file = offset_file
        self.shift(0)

    def shift(self, seconds: float) -> None:
        """From now on the children's wall clock reads real time + `seconds`."""
        self.offset_file.write_text(f"{round(seconds):+d}\n")

    def env(self) -> dict[str, str]:
        return {"LD_PRELOAD": FAKETIME_LIBRARY, "FAKETIME_TIMESTAMP_FILE": str(self.offset_file),
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def slots_of(seen: list[tuple[str, pika.BasicProperties, dict[str, Any]]]) -> list[dt.datetime]:
    return [dt.datetime.fromisoformat(body["time"]) for _, _, body in seen]


# the clock jumps inside the scheduler process only (libfaketime): no shared server is touched, so not `fault`
def test_wall_clock_jumps_publish_each_slot_at_most_once(observer: EventObserver, scheduler_env: Any,
                                                        tmp_path: Path) -> None:
    """The wall clock jumps an hour ahead, then back, then a restarted scheduler meets slots it already
    published: every slot id is published at most once, and the jump ahead is one event, not a burst."""
    if not os.path.exists(FAKETIME_LIBRARY):
        pytest.skip("libfaketime is not installed (apt-get install libfaketime)")
    job, clock = new_job(), WallClock(tmp_path / "offset")
    env = {**scheduler_env({job: {"cron": "*/3 * * * * *", "scope": "hris", "grace": 30}}), **clock.env()}
    first = HrsyncProcess(["scheduler"], env)
    try:
        first.wait_for_log("scheduler.started")
        before = len(observer.events(job, count=2, timeout=20, settle=0))
        jumped = utcnow()
        clock.shift(3600)
        seen = observer.events(job, count=before + 2, timeout=20, settle=0)
        ahead = slots_of(seen)[before:]
        after_jump = (utcnow() - jumped).total_seconds()
        clock.shift(0)  # back an hour: the next slot of this process is an hour away now
        quiet = observer.events(job, count=len(seen) + 1, timeout=7, settle=0)
    finally:
        first_code = first.stop()
    assert first_code == 0, first.text()[-3000:]
    assert ahead
    assert min(ahead) >= jumped + dt.timedelta(seconds=3600 - 30), ahead  # no hour of old slots
    assert len(ahead) <= after_jump / 3 + 2, ahead  # one slot per period after the jump: coalesced
    assert len(quiet) == len(seen), slots_of(quiet)[len(seen):]

    clock.shift((ahead[0] - utcnow()).total_seconds() - 15)  # a restart that lives those slots again
    second = HrsyncProcess(["scheduler"], env)
    try:
        second.wait_for_log("scheduler.started")
        observer.events(job, count=len(quiet) + 12, timeout=22, settle=0)
    finally:
        second_code = second.stop()
    assert second_code == 0, second.text()[-3000:]
    final = observer.events(job, count=0, timeout=0, settle=1.0)  # also what went out just before the stop
    ids = [body["id"] for _, _, body in final]
    assert len(ids) == len(set(ids)), sorted(ids)  # every slot at most once
    skipped = {line["event_id"] for line in second.logs("schedule.already_published")}
    assert slot_id(job, ahead[0]) in skipped, second.text()[-3000:]
    published = [r["event_id"] for r in recorded(job) if r["status"] == "published"]
    assert sorted(published) == sorted(ids)  # one `published` schedule_runs row per event


def test_a_paused_job_publishes_nothing_and_resuming_does_not_fire_the_slots_it_missed(
        observer: EventObserver, scheduler_env: Any) -> None:
    """`schedule pause JOB --reason` (audited, shown by `schedule list`): a slot due while paused is recorded
    `paused` and not published; after `schedule resume JOB` a restarted scheduler does not catch it up."""
    job, slot = new_job(), slot_in(START_MARGIN)
    env = {**os.environ, **scheduler_env({job: {"cron": daily_cron_at(slot), "scope": "hris", "grace": 600}})}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HRSYNC, "schedule", *args], env=env, capture_output=True, text=True, timeout=60)

    paused = cli("pause", job, "--reason", "HRIS maintenance window")
    assert paused.returncode == 0, paused.stderr
    again = cli("pause", job, "--reason", "twice")
    assert again.returncode == 1
    assert "already paused" in again.stderr
    assert again.stderr.strip().count("\n") == 0
    listed = {row["job"]: row for row in json.loads(cli("list", "--json").stdout)}
    assert listed[job]["paused"]["reason"] == "HRIS maintenance window"
    assert listed[job]["paused"]["via"] == "cli"
    assert utcnow() - dt.datetime.fromisoformat(listed[job]["paused"]["paused_at"]) < dt.timedelta(minutes=1)
    process = HrsyncProcess(["scheduler"], env)
    try:
        line = process.wait_for_log("schedule.paused", timeout=30)
    finally:
        code = process.stop()
    assert code == 0, process.text()[-3000:]
    assert line["event_id"] == slot_id(job, slot)
    assert [r["status"] for r in recorded(job)] == ["paused"]
    resumed = cli("resume", job)
    assert resumed.returncode == 0, resumed.stderr
    assert cli("resume", job).returncode == 1  # not paused any more
    restarted = HrsyncProcess(["scheduler"], env)
    try:
        restarted.wait_for_log("scheduler.started")
        seen = observer.events(job, count=1, timeout=3, settle=0.5)
    finally:
        restarted_code = restarted.stop()
    assert restarted_code == 0, restarted.text()[-3000:]
    assert seen == []  # the slot passed while paused is not fired on resume
    assert not restarted.logs("schedule.catch_up")
    audit = subprocess.run([HRSYNC, "audit", "--json"], env=env, capture_output=True, text=True, timeout=60)
    actions = [(a["action"], a["target"]) for a in json.loads(audit.stdout)]
    assert ("schedule_pause", job) in actions
    assert ("schedule_resume", job) in actions
    assert cli("pause", "nope", "--reason", "x").returncode == 2  # an unknown job is bad usage
