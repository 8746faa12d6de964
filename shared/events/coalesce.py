"""Coalescing: the params of a pending execution grown by one more event of its kind (docs/workflows.md).

Pure functions on the params shapes `pipelines.plans.request_for` builds. Only the kinds in `COALESCED`
are merged; `sync.requested` executions never are.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

COALESCED = ("punches", "employee")
MAX_WINDOW = dt.timedelta(days=31)  # a punches.imported window's bound (DESIGN §5), kept for the hull
MAX_EMPLOYEES = 5000  # the bound of an event's employee list (DESIGN §5), kept for the union


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
    bounds of one event (the event then opens a new execution)."""
    if kind == "punches":
        grown = _punches(pending, new)
    elif kind == "employee":
        grown = _employees(pending, new)
    else:
        return None
    if grown is not None:
        grown["events"] = int(pending.get("events", 1)) + 1
    return grown


def _punches(pending: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    merge = pending["merge"]
    windows = merge_windows([*merge.get("windows", [merge["window"]]), new["merge"]["window"]])
    hull = {"from": windows[0]["from"], "to": max(w["to"] for w in windows)}
    if _when(hull["to"]) - _when(hull["from"]) > MAX_WINDOW:
        return None
    grown = copy.deepcopy(pending)
    grown["merge"].update(window=hull, windows=windows,
                          devices=_union_or_all(merge.get("devices"), new["merge"].get("devices")))
    return grown


def _employees(pending: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    employees = _union_or_all(pending["merge"]["employees"], new["merge"]["employees"])
    if employees is None or len(employees) > MAX_EMPLOYEES:
        return None
    grown = copy.deepcopy(pending)
    grown["extract"]["employees"] = employees
    grown["merge"].update(employees=employees, **{"from": min(pending["merge"]["from"], new["merge"]["from"]),
                                                  "to": max(pending["merge"]["to"], new["merge"]["to"])})
    grown["fields"] = _union_or_all(pending.get("fields"), new.get("fields"))
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


def _union_or_all(first: list[Any] | None, second: list[Any] | None) -> list[Any] | None:
    """Sorted union; None (everything) when either side is None."""
    if first is None or second is None:
        return None
    return sorted(set(first) | set(second))


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)
