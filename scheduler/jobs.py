"""The scheduled jobs, from settings, and the event each slot publishes (pure: no I/O).

A *slot* is one scheduled fire time of a job. Its event is `hrsync.sync.requested` with the
deterministic id `<job>:<slot in UTC>` (`shared.events.models.sync_event_id`), source `SCHEDULER_SOURCE` and
`time` = the slot, so every scheduler process builds the same event for the same slot, byte for byte.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from shared.config.cron import DstSafeCronTrigger, cron_trigger
from shared.config.settings import Settings
from shared.events.models import CLI_SOURCE, SCHEDULER_SOURCE, SYNC_REQUESTED, Event, build_event, sync_event_id

NIGHTLY = "nightly"
# A slot may still be published this long after its time (a 2-hour outage at 02:00 still syncs the night).
DEFAULT_GRACE = dt.timedelta(hours=6)
_MAX_SLOTS_SCANNED = 200_000  # bounds a scan of a seconds-level schedule over a long window


@dataclass(frozen=True)
class ScheduledJob:
    """One job: when it fires, how late a slot may still be published, and what it asks for."""

    name: str
    cron: str
    trigger: DstSafeCronTrigger
    scope: str
    grace: dt.timedelta
    notify: bool | None = None
    days: int | None = None

    def next_slot(self, after: dt.datetime) -> dt.datetime | None:
        """The first slot strictly after `after`."""
        slot: dt.datetime | None = self.trigger.get_next_fire_time(after, after)
        return slot

    def first_slot(self, now: dt.datetime) -> dt.datetime | None:
        """The first slot at or after `now`."""
        slot: dt.datetime | None = self.trigger.get_next_fire_time(None, now)
        return slot

    def slots(self, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
        """The slots in (`after`, `until`], oldest first (bounded for seconds-level schedules)."""
        found: list[dt.datetime] = []
        slot = self.next_slot(after)
        while slot is not None and slot <= until and len(found) < _MAX_SLOTS_SCANNED:
            found.append(slot)
            slot = self.next_slot(slot)
        return found

    def latest_slot(self, now: dt.datetime) -> dt.datetime | None:
        """The newest slot that is due and still within the grace: in (now - grace, now]."""
        due = self.slots(now - self.grace, now)
        return due[-1] if due else None

    def data(self, fire_time: dt.datetime) -> dict[str, Any]:
        """The `hrsync.sync.requested` data for a slot (dates are local dates of the slot)."""
        data: dict[str, Any] = {"scope": self.scope}
        if self.notify is not None:
            data["notify"] = self.notify
        if self.days is not None:
            last = fire_time.astimezone(self.trigger.timezone).date()
            data["from"] = last - dt.timedelta(days=self.days - 1)
            data["to"] = last
        return data

    def slot_event(self, fire_time: dt.datetime) -> Event:
        """The event of one slot: deterministic id, scheduler source, `time` = the slot."""
        return build_event(SYNC_REQUESTED, self.data(fire_time), id=sync_event_id(self.name, fire_time),
                           source=SCHEDULER_SOURCE, time=fire_time.astimezone(dt.UTC))

    def manual_event(self, now: dt.datetime, run_id: str) -> Event:
        """The event of `hrsync schedule run`: id `<job>:manual:<run_id>`, CLI source (trigger `manual`)."""
        return build_event(SYNC_REQUESTED, self.data(now), id=f"{self.name}:manual:{run_id}",
                           source=CLI_SOURCE, time=now.astimezone(dt.UTC))


def jobs_from_settings(settings: Settings) -> dict[str, ScheduledJob]:
    """The nightly sync (HRSYNC_NIGHTLY_CRON, unless `"nightly": null`) and the jobs of HRSYNC_SCHEDULES."""
    zone = settings.zone
    jobs: dict[str, ScheduledJob] = {}
    if NIGHTLY not in settings.schedules:
        jobs[NIGHTLY] = ScheduledJob(NIGHTLY, settings.nightly_cron, cron_trigger(settings.nightly_cron, zone),
                                     scope="nightly", grace=DEFAULT_GRACE)
    for name, spec in sorted(settings.schedules.items()):
        if spec is None:
            continue
        grace = dt.timedelta(seconds=spec.grace) if spec.grace is not None else DEFAULT_GRACE
        jobs[name] = ScheduledJob(name, spec.cron, cron_trigger(spec.cron, zone), scope=spec.scope,
                                  grace=grace, notify=spec.notify, days=spec.days)
    return jobs
