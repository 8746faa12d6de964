"""From a validated event to an execution request: its kind, trigger and inputs snapshot (pure).

The snapshot is fixed when the execution is created, so a replay reruns exactly the same inputs.
Relative dates ("yesterday") are resolved here, against the event's time in the company's zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from shared.events.models import (
    CLI_SOURCE,
    SCHEDULER_SOURCE,
    EmployeeChanged,
    ParsedEvent,
    PeriodClosed,
    PunchesImported,
    SyncRequested,
    event_day,
    sync_dates,
)

EMPLOYEE_RECENT_DAYS = 7


@dataclass(frozen=True)
class ExecutionRequest:
    """What the bridge stores for an event: the execution's kind, trigger and params."""

    kind: str
    trigger: str
    params: dict[str, Any]


def trigger_of(source: str) -> str:
    """`schedule` for the scheduler's events, `manual` for the CLI's, `event` for everyone else."""
    return {SCHEDULER_SOURCE: "schedule", CLI_SOURCE: "manual"}.get(source, "event")


def _day_range(first: dt.date, last: dt.date) -> dict[str, str]:
    return {"from": first.isoformat(), "to": last.isoformat()}


def request_for(event: ParsedEvent, now: dt.datetime, zone: ZoneInfo) -> ExecutionRequest:
    """The execution an event launches (DESIGN §5): stages, and the inputs each stage reads.

    Raises `InvalidEvent` when a range left open in the event resolves to more than the bound allows.
    """
    today = event_day(event, now, zone)
    yesterday = today - dt.timedelta(days=1)
    data = event.data
    params: dict[str, Any]
    kind: str
    if isinstance(data, SyncRequested):
        first, last = sync_dates(data, today)  # the open ends resolved; InvalidEvent beyond the bound
        stages = {"nightly": ["extract", "merge", "notify"], "hris": ["extract"],
                  "attendance": ["merge", "notify"]}[data.scope]
        if not data.notify:
            stages = [s for s in stages if s != "notify"]
        params = {"scope": data.scope, "stages": stages,
                  "extract": {"full": False, "employees": data.employees, "source": "hris"},
                  "merge": {**_day_range(first, last), "employees": data.employees}}
        kind = data.scope
    elif isinstance(data, EmployeeChanged):
        first = yesterday - dt.timedelta(days=EMPLOYEE_RECENT_DAYS - 1)
        params = {"scope": "employee", "stages": ["extract", "merge", "notify"],
                  "extract": {"full": False, "employees": [data.employee_no], "source": "hris"},
                  "merge": {**_day_range(first, yesterday), "employees": [data.employee_no]},
                  "fields": data.fields}
        kind = "employee"
    elif isinstance(data, PunchesImported):
        window = {"from": data.from_.astimezone(dt.UTC).isoformat(), "to": data.to.astimezone(dt.UTC).isoformat()}
        params = {"scope": "punches", "stages": ["merge", "notify"],
                  "merge": {"window": window, "devices": data.devices, "employees": None}}
        kind = "punches"
    elif isinstance(data, PeriodClosed):
        params = {"scope": "export", "stages": ["export"], "export": {"period": data.period, "version": data.version}}
        kind = "export"
    else:  # pragma: no cover - parse_event only yields these models
        raise TypeError(f"no workflow for {type(data).__name__}")
    params["event"] = {"id": event.id, "type": event.type}
    return ExecutionRequest(kind, trigger_of(event.envelope.source), params)
