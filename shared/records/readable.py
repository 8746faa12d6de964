"""An execution's inputs and summary as labelled rows for people (`hrsync show` and the console's page);
`--json` and `/api/` keep the raw JSON.

`input_rows(params)` → (label, text) pairs; `stage_rows(summary, stages)` → one row per stage with what it
read, wrote, sent and failed (from the summary of a finished execution, else added up from its stage rows)
and the rest of its figures as `details`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Where each column's figure is found in a stage's summary, first match wins (dotted paths).
READ_KEYS = ("read", "rows_read", "imported.logs", "rows_in")
WRITTEN_KEYS = ("written", "rows_written", "rows_out")
WRITTEN_SUMS = (("inserted", "updated"),)
SENT_KEYS = ("sent", "files", "mails")
FAILED_KEYS = ("failed", "rejected_count", "rejected")
# A stage's figures that add up to what it wrote (the merge's days, counted by status).
BY_STATUS = "by_status"
NOT_STAGES = ("workflow", "notify_failure")  # the claim/finish steps and the failure notice: not a stage's work


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def input_rows(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The execution's inputs, one labelled line each: scope, stages in order, each stage's own inputs
    (`employees: all` when none are named), the event that started it; any other key as it is."""
    rows: list[tuple[str, str]] = []
    values = dict(params or {})
    if "scope" in values:
        rows.append(("scope", _text(values.pop("scope"))))
    stages = values.pop("stages", None)
    if isinstance(stages, list):
        rows.append(("stages", " → ".join(str(s) for s in stages) or "-"))
        for stage in stages:
            own = values.pop(stage, None)
            if isinstance(own, Mapping):
                rows.append((stage, _stage_inputs(own)))
    event = values.pop("event", None)
    if isinstance(event, Mapping):
        rows.append(("event", f"{event.get('id', '?')} ({event.get('type', '?')})"))
    rows.extend((key, _stage_inputs(value) if isinstance(value, Mapping) else _text(value))
                for key, value in sorted(values.items()))
    return rows


def _stage_inputs(values: Mapping[str, Any]) -> str:
    shown = dict(values)
    parts = []
    if "from" in shown or "to" in shown:
        parts.append(f"dates {_text(shown.pop('from', None))} to {_text(shown.pop('to', None))}")
    if "employees" in shown:
        people = shown.pop("employees")
        parts.append("employees: all" if not people else f"employees: {len(people)} ({', '.join(map(str, people[:5]))}"
                     f"{' …' if len(people) > 5 else ''})")
    parts.extend(f"{key}: {_text(value)}" for key, value in sorted(shown.items()))
    return ", ".join(parts) or "-"


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            found.update(_flat(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def _take(flat: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if isinstance(flat.get(key), int | float):
            return flat.pop(key)
    return None


def stage_rows(summary: Mapping[str, Any] | None, stages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stage by stage: `stage`, `read`, `written`, `sent`, `failed` (None: the stage does not count it) and
    `details` (its other figures, each `name value`). From `summary` when the execution finished with one, else
    from its stage rows (rows in and out of its shards, failed shards)."""
    if summary:
        return [_from_summary(stage, figures) for stage, figures in summary.items()]
    return _from_stages(stages)


def _from_summary(stage: str, figures: Any) -> dict[str, Any]:
    if not isinstance(figures, Mapping):
        return {"stage": stage, "read": None, "written": None, "sent": None, "failed": None,
                "details": ["not run" if figures is None else _text(figures)]}
    flat = _flat(figures)
    read = _take(flat, READ_KEYS)
    written = _take(flat, WRITTEN_KEYS)
    if written is None:
        for parts in WRITTEN_SUMS:
            if all(isinstance(flat.get(p), int) for p in parts):
                written = sum(flat.pop(p) for p in parts)
                break
    by_status = {k.removeprefix(f"{BY_STATUS}."): v for k, v in flat.items() if k.startswith(f"{BY_STATUS}.")}
    if written is None and by_status:
        written = sum(v for v in by_status.values() if isinstance(v, int))
    sent, failed = _take(flat, SENT_KEYS), _take(flat, FAILED_KEYS)
    details = [f"{k} {_text(v)}" for k, v in flat.items() if not k.startswith(f"{BY_STATUS}.")]
    if by_status:
        details.insert(0, "days: " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())))
    return {"stage": stage, "read": read, "written": written, "sent": sent, "failed": failed, "details": details}


def _from_stages(stages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in stages:  # a stage's own shards (not its planning and folding steps), the last attempt of each
        if str(row["shard"]).startswith("@") or row["stage"] in NOT_STAGES:
            continue
        key = (row["stage"], row["shard"])
        if key not in latest or row["attempt"] >= latest[key]["attempt"]:
            latest[key] = row
    order: dict[str, dict[str, Any]] = {}
    for row in latest.values():
        entry = order.setdefault(row["stage"], {"stage": row["stage"], "read": 0, "written": 0, "sent": None,
                                                "failed": 0, "shards": 0})
        entry["shards"] += 1
        entry["read"] += row.get("rows_in") or 0
        entry["written"] += row.get("rows_out") or 0
        entry["failed"] += row.get("status") == "failed"
    return [{**{k: v for k, v in e.items() if k != "shards"},
             "details": [f"from {e['shards']} shard(s), no summary yet: failed counts failed shards"]}
            for e in order.values()]
