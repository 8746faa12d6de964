"""What the pages and `/api/` show, in the shapes of the CLI's `--json` (one function per page's data).

Sync functions for Starlette's thread pool: each database read is a `run_async` hop onto the runner's
loop, which owns the engines (no engine on uvicorn's loop). Values are JSON-able after
`shared.records.views.jsonable`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pipelines.trace import Trace, trace_of
from shared.config.settings import get_settings
from shared.events.dead_letters import list_dead_letters
from shared.records import console as queries
from shared.records.operator_actions import list_operator_actions
from shared.records.queries import execution_details as recorded_details
from shared.records.views import ERROR_LIMIT, jsonable, shown_details
from shared.records.views import shown_error as shared_shown_error
from shared.runtime.runner import run_async


def shown_error(text: str | None) -> str | None:
    """An error message as `hrsync show --json` prints it: credentials masked, cut at `ERROR_LIMIT`."""
    return shared_shown_error(text, ERROR_LIMIT)


def executions_page(*, status: str | None, kind: str | None, trigger: str | None, since: dt.timedelta | None,
                    cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `hrsync executions --json` rows and the cursor of the next page (None on the last)."""
    after = queries.decode_cursor(cursor) if cursor else None
    rows = run_async(queries.execution_page(status=status, kind=kind, trigger=trigger, since=since, after=after,
                                            limit=limit + 1))
    following = queries.encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return [{**r, "error": shown_error(r["error"])} for r in rows[:limit]], following


def with_served_counts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with `events` (how many events each execution serves) and `took` (its duration as text)."""
    counts = run_async(queries.served_counts([r["id"] for r in rows])) if rows else {}
    return [{**r, "events": counts.get(r["id"], 0), "took": took(r["started_at"], r["finished_at"])} for r in rows]


def took(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """A duration as people read it (`850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`), up to now while running."""
    if start is None:
        return "-"
    seconds = max(0.0, ((end or dt.datetime.now(dt.UTC)) - start).total_seconds())
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def paused_schedules() -> list[dict[str, Any]]:
    """The scheduled jobs paused now (`hrsync schedule list`): job, paused_by, paused_at, via, reason."""
    from shared.records.schedule_pauses import paused_jobs

    return sorted(run_async(paused_jobs()).values(), key=lambda pause: str(pause["job"]))


def open_alerts() -> list[dict[str, Any]]:
    """The watchdogs' open alerts (`hrsync executions --late`), newest first."""
    from pipelines.watchdogs import late_alerts

    return run_async(late_alerts(open_only=True))  # times stay datetimes: the page shows them in local time


def execution_details(execution_id: str) -> dict[str, Any]:
    """`hrsync show ID --json`: the execution, its stage rows, lineage and replays."""
    return shown_details(run_async(recorded_details(execution_id)))


def execution_trace(details: Mapping[str, Any]) -> Trace:
    """The trace `hrsync trace ID` renders (`to_json()`: its `--json`): the stage rows as bars on a time axis
    (ms from the execution's start), grouped into steps by the stage declarations."""
    return trace_of(details["execution"], details["stages"], details["events"])


def dead_letters(*, with_source: bool = False) -> list[dict[str, Any]]:
    """`hrsync dlq list --json`; `with_source` adds the event's `source` for the page (from the body or the
    `ce-source` header: data, shown as text)."""
    letters = run_async(list_dead_letters())
    if not with_source:
        return [letter.as_json() for letter in letters]
    return [{**letter.as_json(), "source": _source(letter.body, letter.headers)} for letter in letters]


def _source(body: bytes, headers: Mapping[str, Any]) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    value = parsed.get("source") if isinstance(parsed, dict) else headers.get("ce-source")
    return jsonable(value) if isinstance(value, str | bytes) else None


def audit(since: dt.timedelta | None, limit: int) -> list[dict[str, Any]]:
    """`hrsync audit --json`: operator actions, newest first."""
    start = dt.datetime.now(dt.UTC) - since if since else None
    return run_async(list_operator_actions(start, limit))


def today() -> dt.date:
    """Today in the company's zone."""
    return dt.datetime.now(get_settings().zone).date()


def day_board(department: str | None, day: dt.date) -> dict[str, Any]:
    """The departments, and the chosen one's rows of `day` with how many are in now (`open`)."""
    names = run_async(queries.departments())
    chosen = department if department is not None else (names[0] if names else None)
    rows = run_async(queries.day_board(chosen, day)) if chosen is not None else []
    counts = Counter(r["status"] or "not computed" for r in rows)
    return {"department": chosen, "date": day, "departments": names, "in_now": counts.get("open", 0),
            "counts": dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))), "rows": rows}


def employee_days(employee_no: str, date_from: dt.date, date_to: dt.date) -> dict[str, Any] | None:
    """An employee with their attendance rows in the range (None when unknown)."""
    return run_async(queries.employee_days(employee_no, date_from, date_to))
