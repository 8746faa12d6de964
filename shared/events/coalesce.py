"""Coalescing: the params of a pending execution grown by one more event of its kind (docs/workflows.md).

Pure code (no I/O) on the params shapes `pipelines.plans.request_for` builds. Only the kinds in `COALESCED`
are merged; `sync.requested` executions never are.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from shared.events.models import MAX_EMPLOYEES, MAX_PUNCH_WINDOW, MAX_SYNC_DAYS

COALESCED = ("punches", "employee")


def initial(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params of a one-event execution in the coalesced shape (`events`: 1, `merge.windows`)."""
    if kind not in COALESCED:
        return params
    shaped = copy.deepcopy(params)
    shaped["events"] = 1
    if kind == "punches":
        shaped["merge"]["windows"] = [dict(shaped["merge"]["window"])]
    return shaped


def coalesce(kind: str, pending: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """`pending` grown by the event whose own params are `new`, or None when the union would leave the
    bounds of one event (DESIGN §5: a punches hull ≤ 31 days, ≤ 5,000 employees, a merge range ≤ 400
    days): the event then opens a new execution."""
    if kind not in COALESCED:
        return None
    gathering = Gathering(kind, pending)
    return gathering.params() if gathering.join(new) else None


class Gathering:
    """The params of a pending execution growing by events of its kind: each `join` costs O(1) (bounds
    kept as running minima, maxima and sets), and `params()` writes the union out once — a batch of the
    bridge grows an execution of thousands of windows without copying them per event."""

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.kind = kind
        self.base = params
        self.events = int(params.get("events", 1))
        merge = params["merge"]
        if kind == "punches":
            self.windows = [dict(w) for w in merge.get("windows", [merge["window"]])]
            self.start = min((w["from"] for w in self.windows), key=_when)
            self.end = max((w["to"] for w in self.windows), key=_when)
            self.devices = _set_or_all(merge.get("devices"))
        else:
            self.employees = _set_or_all(merge["employees"])
            self.first, self.last = merge["from"], merge["to"]
            self.fields = _set_or_all(params.get("fields"))

    def join(self, new: dict[str, Any]) -> bool:
        """Grow by one event's params; False (nothing changed) when the union would leave one event's bounds."""
        if self.kind == "punches":
            window = new["merge"]["window"]
            start = min(self.start, window["from"], key=_when)
            end = max(self.end, window["to"], key=_when)
            if _when(end) - _when(start) > MAX_PUNCH_WINDOW:
                return False
            self.windows.append(dict(window))
            self.start, self.end = start, end
            self.devices = _union(self.devices, _set_or_all(new["merge"].get("devices")))
        else:
            employees = _union(self.employees, _set_or_all(new["merge"]["employees"]))
            if employees is None or len(employees) > MAX_EMPLOYEES:
                return False
            first, last = min(self.first, new["merge"]["from"]), max(self.last, new["merge"]["to"])
            if (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1 > MAX_SYNC_DAYS:
                return False  # one old or future `time` would make the execution recompute years
            self.employees = employees
            self.first, self.last = first, last
            self.fields = _union(self.fields, _set_or_all(new.get("fields")))
        self.events += 1
        return True

    def params(self) -> dict[str, Any]:
        """The grown params (a new dict; the params it started from are not changed)."""
        grown = copy.deepcopy(self.base)
        grown["events"] = self.events
        if self.kind == "punches":
            grown["merge"].update(window={"from": self.start, "to": self.end}, windows=merge_windows(self.windows),
                                  devices=_listed(self.devices))
        else:
            employees = _listed(self.employees)
            grown["extract"]["employees"] = employees
            grown["merge"].update(employees=employees, **{"from": self.first, "to": self.last})
            grown["fields"] = _listed(self.fields)
        return grown


def merge_windows(windows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Windows sorted by start, overlapping or touching ones merged into one."""
    merged: list[dict[str, str]] = []
    for window in sorted(windows, key=lambda w: _when(w["from"])):
        if merged and _when(window["from"]) <= _when(merged[-1]["to"]):
            if _when(window["to"]) > _when(merged[-1]["to"]):
                merged[-1]["to"] = window["to"]
        else:
            merged.append(dict(window))
    return merged


def _set_or_all(values: list[Any] | None) -> set[Any] | None:
    return None if values is None else set(values)


def _union(first: set[Any] | None, second: set[Any] | None) -> set[Any] | None:
    """The union; None (everything) when either side is None."""
    return None if first is None or second is None else first | second


def _listed(values: set[Any] | None) -> list[Any] | None:
    return None if values is None else sorted(values)


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)
