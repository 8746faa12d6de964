"""How the merge's inputs grow when events coalesce (the merge's `join`, `shared.events.coalesce`).

A punches window's inputs (`window`, `devices`) grow into the hull of the windows served, the windows
themselves (`windows`, merged where they overlap or touch) and the union of the devices; a date range's
(`from`, `to`, `employees`) into the earliest start, the latest end and the union of the employees. Either
stays within one event's bounds (DESIGN §5): a hull of at most 31 days, at most 5,000 employees, a range of
at most 400 days; past them the event opens a new execution.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from shared.events.coalesce import BoundedUnion, Joining, listed, set_or_all, union
from shared.events.models import MAX_EMPLOYEES, MAX_PUNCH_WINDOW, MAX_SYNC_DAYS


def join_merge(params: Mapping[str, Any]) -> Joining:
    """The merge's inputs of a pending execution, ready to grow (by their shape: a window or a date range)."""
    return WindowsJoin(params) if "window" in params else RangeJoin(params)


class WindowsJoin:
    """A punches window's inputs: the hull, every window, the devices (None: all of them)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.base = dict(params)
        self.windows = [dict(w) for w in params.get("windows", [params["window"]])]
        self.start = min((w["from"] for w in self.windows), key=_when)
        self.end = max((w["to"] for w in self.windows), key=_when)
        self.hull = (_when(self.start), _when(self.end))
        self.devices = set_or_all(params.get("devices"))
        self._offered: tuple[Mapping[str, str], str, str, dt.datetime, dt.datetime] | None = None

    def _grown(self, window: Mapping[str, str]) -> tuple[Mapping[str, str], str, str, dt.datetime, dt.datetime]:
        """The hull with `window` added, as given and as times (kept: `add` follows `admits` with the same one)."""
        if self._offered is None or self._offered[0] is not window:
            first, last = _when(window["from"]), _when(window["to"])
            start, first = (window["from"], first) if first < self.hull[0] else (self.start, self.hull[0])
            end, last = (window["to"], last) if last > self.hull[1] else (self.end, self.hull[1])
            self._offered = (window, start, end, first, last)
        return self._offered

    def admits(self, new: Mapping[str, Any]) -> bool:
        _, _, _, first, last = self._grown(new["window"])
        return last - first <= MAX_PUNCH_WINDOW

    def add(self, new: Mapping[str, Any]) -> None:
        window = new["window"]
        _, self.start, self.end, first, last = self._grown(window)
        self.hull, self._offered = (first, last), None
        self.windows.append(dict(window))
        self.devices = union(self.devices, set_or_all(new.get("devices")))

    def params(self) -> dict[str, Any]:
        return {**self.base, "window": {"from": self.start, "to": self.end}, "windows": merge_windows(self.windows),
                "devices": listed(self.devices)}


class RangeJoin:
    """A date range's inputs: the employees (at most 5,000) and the dates (at most 400 days)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.base = dict(params)
        self.employees = BoundedUnion(params["employees"], MAX_EMPLOYEES)
        self.first, self.last = str(params["from"]), str(params["to"])

    def admits(self, new: Mapping[str, Any]) -> bool:
        first, last = min(self.first, new["from"]), max(self.last, new["to"])
        # one old or future `time` would make the execution recompute years
        days = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1
        return self.employees.admits(new["employees"]) and days <= MAX_SYNC_DAYS

    def add(self, new: Mapping[str, Any]) -> None:
        self.employees.add(new["employees"])
        self.first, self.last = min(self.first, new["from"]), max(self.last, new["to"])

    def params(self) -> dict[str, Any]:
        return {**self.base, "employees": self.employees.listed(), "from": self.first, "to": self.last}


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


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)
