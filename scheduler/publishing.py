"""Publishing one slot: retried with backoff until the job's grace runs out, and always recorded.

`SlotPublisher.fire(job, fire_time=slot)` is what the scheduler runs for a due slot. Outcomes:

- `published`: the broker confirmed the event (its id makes a second publish of the slot harmless);
- `missed`: the slot came up more than the grace after its time (e.g. the process was frozen);
- `superseded`: while it was being retried a newer slot of the job became due; that one is published
  instead (coalescing: after an outage one run, for the newest slot);
- `failed`: the grace ran out, or the scheduler was stopped, before the broker took it;
- `paused`: an operator paused the job (`shared.records.schedule_pauses`): nothing is published, and the slot is not
  fired later, not even on resume.

Each outcome is a `schedule_runs` row and a log line; if the database is away too, the log line (level
error, with job, slot and event id) is the record. Nothing is dropped silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import structlog

from scheduler.jobs import ScheduledJob
from scheduler.runs import FAILED, MISSED, PAUSED, PUBLISHED, SUPERSEDED, SlotOutcome, record_outcome, slot_status
from shared.config.retry import Backoff
from shared.events.bus import PublishError, publish_once
from shared.events.models import Event, sync_event_id
from shared.records.schedule_pauses import pause_of
from shared.runtime.runner import run_async
from shared.runtime.stopping import StopFlag

log = structlog.get_logger(__name__)
RETRY = Backoff(base=0.5, cap=30.0)  # cap: a broker that is back is noticed within this many seconds


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SlotPublisher:
    """Publishes slots of scheduled jobs to the event plane; `stopping` ends pending retries."""

    def __init__(self, events_url: str, stopping: StopFlag,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.events_url = events_url
        self.stopping = stopping
        self.clock = clock

    def fire(self, job: ScheduledJob, *, fire_time: dt.datetime | None = None) -> str:
        """Publish the slot `fire_time` of `job` (or a newer due one); return the recorded status.

        `fire_time` is required; it has a default only because APScheduler checks a job's arguments when
        the job is added, before `SlotExecutor` supplies it.
        """
        if fire_time is None:
            raise TypeError("fire() needs the slot's scheduled fire_time (run it with SlotExecutor)")
        slot = fire_time.astimezone(dt.UTC)
        late = self.clock() - slot
        if late > job.grace:
            return self.record(job, slot, MISSED, 0, f"came up {late} late, after the grace of {job.grace}")
        pause = self.pause_of(job)
        if pause is not None:
            return self.record(job, slot, PAUSED, 0, f"paused by {pause['paused_by']} since "
                                                     f"{pause['paused_at'].isoformat()}: {pause['reason']}")
        if self._status(sync_event_id(job.name, slot)) == PUBLISHED:
            log.info("schedule.already_published", job=job.name, event_id=sync_event_id(job.name, slot))
            return PUBLISHED
        attempts = 0
        while True:
            slot = self._newest_due(job, slot)
            attempts += 1
            try:
                self.publish(job.slot_event(slot))
            except PublishError as exc:
                error = str(exc)
            except Exception as exc:  # anything else on the way to the broker is retried the same way
                error = f"{type(exc).__name__}: {exc}"[:300]
            else:
                return self.record(job, slot, PUBLISHED, attempts)
            remaining = (slot + job.grace - self.clock()).total_seconds()
            if self.stopping.is_set():
                return self.record(job, slot, FAILED, attempts, f"scheduler stopped; last error: {error}")
            if remaining <= 0:
                return self.record(job, slot, FAILED, attempts, f"grace of {job.grace} ran out; last error: {error}")
            wait = min(remaining, RETRY.delay(attempts - 1))
            log.warning("schedule.publish_retry", job=job.name, event_id=sync_event_id(job.name, slot),
                        attempt=attempts, retry_in=round(wait, 2), error=error)
            if self.stopping.wait(wait):
                return self.record(job, slot, FAILED, attempts, f"scheduler stopped; last error: {error}")

    def publish(self, event: Event) -> None:
        """One publish on a fresh connection (a nightly job gains nothing from keeping one open)."""
        publish_once(self.events_url, event, retry_seconds=0)  # `fire` owns the retries

    def _newest_due(self, job: ScheduledJob, slot: dt.datetime) -> dt.datetime:
        """`slot`, or the newest slot of `job` that became due since (the older one is superseded)."""
        now = self.clock()
        following = job.next_slot(slot)
        if following is None or following > now:
            return slot
        newest = job.slots(slot, now)[-1].astimezone(dt.UTC)
        self.record(job, slot, SUPERSEDED, 0, f"superseded by the slot {newest.isoformat()}")
        return newest

    def record(self, job: ScheduledJob, slot: dt.datetime, status: str, attempts: int,
               error: str | None = None) -> str:
        """Log the outcome and store it in `schedule_runs` (a database error is logged, not raised)."""
        outcome = SlotOutcome(sync_event_id(job.name, slot), job.name, slot, status, attempts, error)
        fields = {"job": job.name, "event_id": outcome.event_id, "fire_time": slot.isoformat(),
                  "status": status, "attempts": attempts, "error": error}
        if status == PUBLISHED:
            log.info("schedule.published", late_ms=int((self.clock() - slot).total_seconds() * 1000), **fields)
        elif status == SUPERSEDED:
            log.info("schedule.superseded", **fields)
        elif status == PAUSED:
            log.info("schedule.paused", **fields)
        else:
            log.error("schedule.not_published", **fields)
        try:
            run_async(record_outcome(outcome))
        except Exception as exc:
            log.error("schedule.record_failed", db_error=f"{type(exc).__name__}: {exc}"[:300], **fields)
        return status

    def pause_of(self, job: ScheduledJob) -> dict[str, Any] | None:
        """The job's pause, or None (also when the database cannot tell: a slot is then published)."""
        try:
            return run_async(pause_of(job.name))
        except Exception as exc:
            log.warning("schedule.pause_unknown", job=job.name, db_error=f"{type(exc).__name__}: {exc}"[:300])
            return None

    def _status(self, event_id: str) -> str | None:
        try:
            return run_async(slot_status(event_id))
        except Exception as exc:  # without the record, publish anyway: the id makes a repeat harmless
            log.warning("schedule.status_unknown", event_id=event_id, db_error=f"{type(exc).__name__}: {exc}"[:300])
            return None
