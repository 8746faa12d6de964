"""Schedule triggers and slot publishing without services: DST days, 6-field crons, slot events, the
executor that passes the scheduled fire time, and the retry/grace policy with a fake clock."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.jobs import DEFAULT_GRACE, ScheduledJob, cron_trigger, jobs_from_settings
from scheduler.publishing import SlotPublisher
from shared.config.errors import ConfigError
from shared.config.settings import load_settings
from shared.events.bus import PublishError
from shared.events.models import SCHEDULER_SOURCE, Event, parse_event

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def job(cron: str, grace: dt.timedelta = DEFAULT_GRACE, **options: Any) -> ScheduledJob:
    return ScheduledJob("nightly", cron, cron_trigger(cron, BERLIN), scope="nightly", grace=grace, **options)


def fires(cron: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every fire time of `cron` in (start, end], iterating the trigger's `get_next_fire_time`."""
    trigger = cron_trigger(cron, BERLIN)
    found, previous = [], start
    while (moment := trigger.get_next_fire_time(previous, previous)) is not None and moment <= end:
        found.append(moment.astimezone(UTC))
        previous = moment
    return found


def day(year: int, month: int, date: int) -> tuple[dt.datetime, dt.datetime]:
    """The Berlin calendar day as (start, end) instants."""
    start = dt.datetime(year, month, date, tzinfo=BERLIN)
    return start.astimezone(UTC), (start + dt.timedelta(days=1)).astimezone(UTC)


@pytest.mark.parametrize(("date", "expected_utc"), [
    ((2026, 3, 29), dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),   # 02:30 does not exist: 03:30 CEST
    ((2026, 10, 25), dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # 02:30 happens twice: the first (CEST)
    ((2026, 6, 1), dt.datetime(2026, 6, 1, 0, 30, tzinfo=UTC)),
    ((2026, 12, 1), dt.datetime(2026, 12, 1, 1, 30, tzinfo=UTC)),
])
def test_daily_0230_fires_once_a_day_also_on_dst_days(date: tuple[int, int, int], expected_utc: dt.datetime) -> None:
    """A 02:30 Europe/Berlin job fires exactly once on the spring-forward and fall-back days, like any day."""
    assert fires("30 2 * * *", *day(*date)) == [expected_utc]


def test_dst_weeks_fire_once_per_day() -> None:
    """Around both changes, a daily job fires once per local day for a whole week (no skip, no double)."""
    for first in ((2026, 3, 26), (2026, 10, 22)):
        start, _ = day(*first)
        moments = fires("30 2 * * *", start, start + dt.timedelta(days=7))
        assert [m.astimezone(BERLIN).date() for m in moments] == [
            dt.date(*first) + dt.timedelta(days=n) for n in range(7)]


def test_hourly_job_runs_every_real_hour_on_dst_days() -> None:
    """An hourly job (hour `*`) fires in each real hour: 23 times in spring, 25 times in autumn."""
    assert len(fires("30 * * * *", *day(2026, 3, 29))) == 23
    assert len(fires("30 * * * *", *day(2026, 10, 25))) == 25


def test_six_field_cron_has_seconds_first() -> None:
    """A 6-field expression is `second minute hour day month weekday`."""
    start = dt.datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert fires("*/20 * * * * *", start, start + dt.timedelta(minutes=1)) == [
        start + dt.timedelta(seconds=s) for s in (20, 40, 60)]


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("HRSYNC_SCHEDULES", '{"x": {"cron": "0 2 * * 1-5", "scope": "hris"}}', "x.cron: write weekdays as names"),
    ("HRSYNC_SCHEDULES", '{"x": {"cron": "0 2 * *", "scope": "hris"}}', "x.cron: expected 5 fields"),
    ("HRSYNC_SCHEDULES", '{"x": {"cron": "0 2 * * *"}}', "x.scope: Field required"),
    ("HRSYNC_SCHEDULES", '{"x": {"cron": "0 2 * * *", "scope": "hris", "when": 1}}', "x.when: Extra inputs"),
    ("HRSYNC_SCHEDULES", '{"a:b": {"cron": "0 2 * * *", "scope": "hris"}}', "'a:b': job names are"),
    ("HRSYNC_SCHEDULES", '{"nightly": {"cron": "0 2 * * *", "scope": "hris"}}', "HRSYNC_NIGHTLY_CRON"),
    ("HRSYNC_SCHEDULES", "{not json", "not JSON"),
    ("HRSYNC_NIGHTLY_CRON", "0 0 2 * * *", "not a 5-field crontab expression"),
    ("HRSYNC_NIGHTLY_CRON", "0 2 * * 0", "write weekdays as names"),
])
def test_bad_schedules_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
                                         message: str) -> None:
    """A bad schedule setting is one error naming the variable and the job's field."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable}: ") as caught:
        load_settings()
    assert message in str(caught.value)


def test_jobs_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The nightly comes from HRSYNC_NIGHTLY_CRON with the default grace; `"nightly": null` switches it off."""
    monkeypatch.setenv("HRSYNC_SCHEDULES", '{"hourly": {"cron": "5 * * * *", "scope": "attendance", "grace": 600}}')
    jobs = jobs_from_settings(load_settings())
    assert list(jobs) == ["nightly", "hourly"]
    assert (jobs["nightly"].cron, jobs["nightly"].grace) == ("0 2 * * *", DEFAULT_GRACE)
    assert jobs["hourly"].grace == dt.timedelta(seconds=600)
    monkeypatch.setenv("HRSYNC_SCHEDULES", '{"nightly": null}')
    assert jobs_from_settings(load_settings()) == {}


def test_slot_event_is_deterministic() -> None:
    """The same slot gives the same event everywhere: id `<job>:<UTC>`, scheduler source, time = slot."""
    refresh = job("5 * * * *", days=1, notify=False)
    slot = dt.datetime(2026, 11, 24, 23, 5, tzinfo=UTC)  # 00:05 on 25 November in Berlin
    event = refresh.slot_event(slot)
    assert event == refresh.slot_event(slot.astimezone(BERLIN))
    assert (event.id, event.source, event.time) == ("nightly:2026-11-24T23:05:00Z", SCHEDULER_SOURCE, slot)
    assert event.data == {"scope": "nightly", "from": "2026-11-25", "to": "2026-11-25", "notify": False}
    assert parse_event(event.to_json_bytes()).id == event.id


def test_latest_slot_is_the_newest_within_the_grace() -> None:
    """Catch-up picks the newest slot in (now - grace, now], or none when it is older than the grace."""
    nightly = job("0 2 * * *", grace=dt.timedelta(hours=6))
    two_am = dt.datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    assert nightly.latest_slot(two_am + dt.timedelta(hours=2)) == two_am
    assert nightly.latest_slot(two_am + dt.timedelta(hours=7)) is None
    every_minute = job("* * * * *", grace=dt.timedelta(hours=6))
    assert every_minute.latest_slot(two_am + dt.timedelta(minutes=90, seconds=5)) == two_am + dt.timedelta(minutes=90)


class FakeClock:
    """A clock that only moves when a waiter waits (a stand-in for `threading.Event.wait`)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class FakeStopping(threading.Event):
    """A stop flag whose `wait` advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.now += dt.timedelta(seconds=timeout or 0)
        return self.is_set()


class RecordingPublisher(SlotPublisher):
    """A SlotPublisher with the broker and the database replaced by lists."""

    def __init__(self, clock: FakeClock, failures: int) -> None:
        super().__init__("amqp://unused", FakeStopping(clock), clock)
        self.failures = failures
        self.published: list[Event] = []
        self.outcomes: list[tuple[str, str, int]] = []
        self.attempt_cost = dt.timedelta(seconds=1)

    def publish(self, event: Event) -> None:
        self.clock.now += self.attempt_cost  # type: ignore[attr-defined]
        if self.failures > 0:
            self.failures -= 1
            raise PublishError("broker down")
        self.published.append(event)

    def record(self, job: ScheduledJob, slot: dt.datetime, status: str, attempts: int,
               error: str | None = None) -> str:
        self.outcomes.append((slot.isoformat(), status, attempts))
        return status

    def _status(self, event_id: str) -> str | None:
        return None


SLOT = dt.datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def test_publish_is_retried_until_the_broker_is_back() -> None:
    """A failing broker is retried with backoff; the slot is published once, recorded with its attempts."""
    clock = FakeClock(SLOT)
    publisher = RecordingPublisher(clock, failures=4)
    assert publisher.fire(job("0 2 * * *"), fire_time=SLOT) == "published"
    assert [e.id for e in publisher.published] == ["nightly:2026-11-25T01:00:00Z"]
    assert publisher.outcomes == [(SLOT.isoformat(), "published", 5)]


def test_grace_running_out_records_failed() -> None:
    """When the grace runs out before the broker is back, the slot is recorded `failed`, nothing published."""
    clock = FakeClock(SLOT)
    publisher = RecordingPublisher(clock, failures=10**6)
    assert publisher.fire(job("0 2 * * *", grace=dt.timedelta(minutes=5)), fire_time=SLOT) == "failed"
    assert publisher.published == []
    assert clock.now <= SLOT + dt.timedelta(minutes=5, seconds=2)
    assert publisher.outcomes[-1][1] == "failed"


def test_slot_later_than_the_grace_is_missed() -> None:
    """A slot that comes up after its grace (a frozen process) is recorded `missed`, not published."""
    clock = FakeClock(SLOT + dt.timedelta(hours=7))
    publisher = RecordingPublisher(clock, failures=0)
    assert publisher.fire(job("0 2 * * *"), fire_time=SLOT) == "missed"
    assert publisher.published == []


def test_newer_slot_due_while_retrying_supersedes_the_old_one() -> None:
    """A job still retrying when its next slot is due publishes that newer slot instead (one run, not two)."""
    clock = FakeClock(SLOT)
    publisher = RecordingPublisher(clock, failures=6)
    publisher.attempt_cost = dt.timedelta(minutes=20)
    assert publisher.fire(job("0 * * * *"), fire_time=SLOT) == "published"
    [event] = publisher.published
    assert event.id > "nightly:2026-11-25T01:00:00Z"
    statuses = [status for _, status, _ in publisher.outcomes]
    assert statuses.count("published") == 1
    assert "superseded" in statuses


def test_slot_executor_passes_the_scheduled_fire_time() -> None:
    """Through `SlotExecutor` a job receives its slot (whole seconds), not the moment its thread started."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from scheduler.process import SlotExecutor

    received: list[dt.datetime] = []

    def record(*, fire_time: dt.datetime | None = None) -> None:
        assert fire_time is not None
        received.append(fire_time)

    scheduler = BackgroundScheduler(executors={"default": SlotExecutor(max_workers=2)}, timezone=BERLIN)
    scheduler.add_job(record, trigger=cron_trigger("* * * * * *", BERLIN), coalesce=True, max_instances=1)
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert len(received) >= 2
    assert all(moment.microsecond == 0 and moment.utcoffset() is not None for moment in received)
    assert received[1] - received[0] == dt.timedelta(seconds=1)
