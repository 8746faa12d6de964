"""Cron triggers in the company's zone that fire once on the day clocks go back (the scheduler's jobs and
the nightly-deadline watchdog read the same slots)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from shared.config.settings import cron_fields


class DstSafeCronTrigger(CronTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """A `CronTrigger` that fires once on the day clocks go back.

    APScheduler 3 fires a daily 02:30 twice when 02:30 happens twice (fall back). Like cron, this trigger
    skips the second occurrence of a repeated wall-clock time unless the hour field is `*` (an hourly job
    still runs every real hour). A time that does not exist (spring forward) fires once, moved forward by
    the gap (02:30 → 03:30), which is APScheduler's own behaviour.
    """

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None,
                           now: dt.datetime) -> dt.datetime | None:
        candidate: dt.datetime | None = super().get_next_fire_time(previous_fire_time, now)
        if candidate is not None and not self._every_hour and _second_occurrence(candidate, self.timezone):
            return self.get_next_fire_time(candidate, candidate)
        return candidate

    @property
    def _every_hour(self) -> bool:
        return any(field.name == "hour" and str(field) == "*" for field in self.fields)


def _second_occurrence(moment: dt.datetime, zone: dt.tzinfo) -> bool:
    """Is `moment`'s wall-clock time in `zone` the repeated one (the hour after clocks went back)?"""
    local = moment.astimezone(zone)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def cron_trigger(expression: str, zone: ZoneInfo) -> DstSafeCronTrigger:
    """The trigger of a crontab expression (5 fields, or 6 with seconds first) in `zone`."""
    return DstSafeCronTrigger(**cron_fields(expression), timezone=zone)
