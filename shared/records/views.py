"""What operators see of executions, shaped once for the CLI's `--json` and the web console's `/api/`.

`jsonable` turns query results into JSON values, `shown_error` is an error as shown (credentials masked, cut):
both front ends call these, so both print the same shapes (the trace's: `pipelines.trace`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from shared.config.redaction import redact_text

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
