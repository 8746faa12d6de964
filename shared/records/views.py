"""What operators see of executions, shaped once for the CLI's `--json` and the web console's `/api/`.

`jsonable` turns query results into JSON values, `shown_error` is an error as shown (credentials masked, cut),
`timeline` is `hrsync trace --json`: both front ends call these, so both print the same shapes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from shared.config.redaction import redact_text

TRACE_ERROR_LIMIT = 200  # characters of a stage's error on a trace bar
ERROR_LIMIT = 4000  # characters of an error in `--json` and `/api/`


def jsonable(value: Any) -> Any:
    """Dates as ISO strings, bytes as text, recursively (what `--json` prints)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def shown_error(text: str | None, limit: int) -> str | None:
    """An error message as operators see it: credentials masked, cut at `limit` characters."""
    return redact_text(text)[:limit] if text else None


def shown_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """`hrsync show --json` (and `/api/`) of `execution_details`: errors masked and cut at `ERROR_LIMIT`."""
    execution = details["execution"]
    return {**details, "execution": {**execution, "error": shown_error(execution["error"], ERROR_LIMIT)},
            "stages": [{**s, "error_message": shown_error(s["error_message"], ERROR_LIMIT)}
                       for s in details["stages"]]}


def timeline(execution: Mapping[str, Any], stages: Sequence[Mapping[str, Any]],
             events: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The execution's stage rows as bars on a time axis: offsets and durations in ms from its start
    (`execution`, `stages` and the `events` it serves as `find_execution`, `stage_rows` and
    `served_events` return them)."""
    now = dt.datetime.now(dt.UTC)
    starts = [s["started_at"] for s in stages if s["started_at"]]
    origin = execution["started_at"] or (min(starts) if starts else execution["created_at"])
    ends = [s["finished_at"] or now for s in stages] + [execution["finished_at"] or origin]
    total = max(1, int((max(ends) - origin).total_seconds() * 1000)) if stages else 1
    bars = []
    for s in stages:
        begin = int((s["started_at"] - origin).total_seconds() * 1000)
        end = int(((s["finished_at"] or now) - origin).total_seconds() * 1000)
        error = shown_error(s["error_message"], TRACE_ERROR_LIMIT)
        bars.append({"stage": s["stage"], "shard": s["shard"], "attempt": s["attempt"], "status": s["status"],
                     "offset_ms": max(0, begin), "duration_ms": max(0, end - begin),
                     "error": f"{s['error_type']}: {error}" if s["error_type"] else None})
    return {"execution_id": execution["id"], "status": execution["status"], "start": origin, "total_ms": total,
            "events": [e["event_id"] for e in events], "bars": bars}
