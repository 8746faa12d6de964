"""The `hrsync scheduler` process: APScheduler 3 with a memory job store, jobs from settings.

- **Scheduled fire time.** APScheduler 3 does not tell a job function when it was *scheduled* to run
  (only 4.x does). `SlotExecutor` is a thread-pool executor that passes it: the scheduler hands every
  executor the due `run_times`, and this one calls `job.func(*args, fire_time=run_times[-1])`. So the
  event id comes from the trigger's slot, never from the clock at the moment the thread started.
- **Misfires and coalescing.** Every job has `coalesce=True` (due slots collapse into the newest),
  `max_instances=1` (a slot being retried is not run twice; it takes over a newer due slot itself) and
  `misfire_grace_time` = the job's grace, which `SlotPublisher.fire` applies: a slot found later than
  its grace is recorded as `missed`, not published.
- **Memory job store, catch-up from `schedule_runs`.** The jobs are defined by settings, so nothing
  needs persisting, except what a restarted process cannot know: whether the newest slot was published.
  At start, for each job, the newest slot within the grace is published now unless `schedule_runs`
  says it was; slots that went by longer ago while no scheduler ran are recorded as `missed`.
- **Stopping.** SIGTERM/SIGINT end pending publish retries (recorded `failed`, so the next start
  catches them up), shut APScheduler down and return: exit code 0.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler

from scheduler.jobs import ScheduledJob, jobs_from_settings
from scheduler.publishing import SlotPublisher
from scheduler.runs import MISSED, PAUSED, PUBLISHED, last_recorded_slot, slot_status
from shared.config.settings import Settings, get_settings
from shared.events.models import sync_event_id
from shared.runtime.runner import run_async
from shared.runtime.stopping import StopFlag

log = structlog.get_logger(__name__)


class SlotExecutor(ThreadPoolExecutor):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """Runs `job.func(*job.args, fire_time=<scheduled fire time>, **job.kwargs)` in a thread pool."""

    def _do_submit_job(self, job: Job, run_times: list[dt.datetime]) -> None:
        def done(future: Any) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [])

        # With coalesce=True there is one run time; were there several, the newest is the one that counts.
        future = self._pool.submit(job.func, *job.args, fire_time=run_times[-1], **job.kwargs)
        future.add_done_callback(done)


def _grace_seconds(job: ScheduledJob) -> int:
    return int(job.grace.total_seconds())


def catch_up_slot(job: ScheduledJob, publisher: SlotPublisher, now: dt.datetime) -> dt.datetime | None:
    """The slot to publish at start: the newest within the grace, unless it is recorded as published.

    Also records slots that went by while no scheduler ran, longer ago than the grace, as `missed`.
    """
    try:
        last = run_async(last_recorded_slot(job.name))
    except Exception as exc:
        last = None
        log.warning("schedule.history_unknown", job=job.name, db_error=f"{type(exc).__name__}: {exc}"[:300])
    if last is not None:
        gone = job.slots(last, now - job.grace)
        if gone:
            publisher.record(job, gone[-1].astimezone(dt.UTC), MISSED, 0,
                             f"{len(gone)} slot(s) from {gone[0].isoformat()} to {gone[-1].isoformat()} went by "
                             f"while no scheduler ran (grace {job.grace})")
    latest = job.latest_slot(now)
    if latest is None:
        return None
    event_id = sync_event_id(job.name, latest)
    try:
        status = run_async(slot_status(event_id))
    except Exception:  # unknown: publish it; if it went out before, the bridge's inbox drops the repeat
        status = None
    if status in (PUBLISHED, PAUSED):
        return None  # a slot that went by while the job was paused is not fired later
    if publisher.pause_of(job) is not None:
        publisher.record(job, latest.astimezone(dt.UTC), PAUSED, 0, "the job is paused")
        return None
    log.info("schedule.catch_up", job=job.name, event_id=event_id, fire_time=latest.isoformat(), recorded=status)
    return latest


def build_scheduler(jobs: dict[str, ScheduledJob], publisher: SlotPublisher, settings: Settings,
                    now: dt.datetime) -> BackgroundScheduler:
    """A BackgroundScheduler with one job per `ScheduledJob` (plus its catch-up slot, if any)."""
    scheduler = BackgroundScheduler(
        executors={"default": SlotExecutor(max_workers=max(4, len(jobs)))},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=settings.zone,
    )
    for job in jobs.values():
        options: dict[str, Any] = {}
        slot = catch_up_slot(job, publisher, now)
        if slot is not None:
            options["next_run_time"] = slot  # due at once; APScheduler continues with the trigger after it
        scheduler.add_job(publisher.fire, trigger=job.trigger, args=(job,), id=job.name, name=job.name,
                          misfire_grace_time=_grace_seconds(job), coalesce=True, max_instances=1, **options)
    return scheduler


def run_scheduler(settings: Settings | None = None, stop_flag: StopFlag | None = None) -> None:
    """Run until SIGTERM/SIGINT (`stop_flag`, installed as their handler if not given): publish every slot
    of every job, then stop cleanly."""
    settings = settings or get_settings()
    stopping = stop_flag or StopFlag().install()  # the handler only sets the flag (it may interrupt a log write)
    jobs = jobs_from_settings(settings)
    publisher = SlotPublisher(settings.events(), stopping)
    scheduler = build_scheduler(jobs, publisher, settings, dt.datetime.now(dt.UTC))
    scheduler.start()
    log.info("scheduler.started", timezone=settings.timezone, jobs=[
        {"job": job.id, "next_fire_time": job.next_run_time.astimezone(dt.UTC).isoformat()
         if job.next_run_time else None} for job in scheduler.get_jobs()])
    stopping.wait()
    log.info("scheduler.stopping", signal=stopping.signal_name)
    scheduler.shutdown(wait=True)  # waits for slots being published; `stopping` cut their retries short
    log.info("scheduler.stopped")
