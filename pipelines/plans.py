"""From a validated event to an execution request: its kind, trigger and inputs snapshot (pure).

The snapshot is fixed when the execution is created, so a replay reruns exactly the same inputs.
Relative dates ("yesterday") are resolved here, against the event's time in the company's zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pipelines import registry
from pipelines.stage import Scope, Stage
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


def request_for(event: ParsedEvent, now: dt.datetime, zone: ZoneInfo) -> ExecutionRequest:
    """The execution an event launches (DESIGN §5): its scope, and from it the stages that run and the inputs
    each reads (each stage's declaration says, `Stage.inputs`).

    Raises `InvalidEvent` when a range left open in the event resolves to more than the bound allows.
    """
    today = event_day(event, now, zone)
    yesterday = today - dt.timedelta(days=1)
    data = event.data
    extra: dict[str, Any] = {}
    if isinstance(data, SyncRequested):
        first, last = sync_dates(data, today)  # the open ends resolved; InvalidEvent beyond the bound
        scope = Scope(data.scope, employees=data.employees, days=(first, last), notify=data.notify)
    elif isinstance(data, EmployeeChanged):
        first = yesterday - dt.timedelta(days=EMPLOYEE_RECENT_DAYS - 1)
        scope = Scope("employee", employees=[data.employee_no], days=(first, yesterday))
        extra["fields"] = data.fields
    elif isinstance(data, PunchesImported):
        window = {"from": data.from_.astimezone(dt.UTC).isoformat(), "to": data.to.astimezone(dt.UTC).isoformat()}
        scope = Scope("punches", window=window, devices=data.devices)
    elif isinstance(data, PeriodClosed):
        scope = Scope("export", period=data.period, version=data.version)
    else:  # pragma: no cover - parse_event only yields these models
        raise TypeError(f"no workflow for {type(data).__name__}")
    params = params_for(scope, registry.STAGES)
    params.update(extra)
    params["event"] = {"id": event.id, "type": event.type}
    return ExecutionRequest(scope.name, trigger_of(event.envelope.source), params)


def params_for(scope: Scope, stages: Sequence[Stage]) -> dict[str, Any]:
    """The snapshot of a scope: the stages that run for it, in pipeline order, and each one's inputs (a stage
    without inputs has no key)."""
    inputs = {stage.name: stage.inputs(scope) for stage in stages}
    ran = {name: given for name, given in inputs.items() if given is not None}
    return {"scope": scope.name, "stages": list(ran), **{name: given for name, given in ran.items() if given}}
