"""Query parameters that pages and `/api/` share, validated once (a bad one is 422 naming it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Query

from shared.records import console as queries
from shared.records.queries import parse_age

STATUS = "^(|pending|running|succeeded|failed|cancelled)$"  # empty: a form's "any"
TRIGGER = "^(|schedule|event|replay|manual)$"
MAX_PAGE = 500


def age(option: str, text: str | None) -> dt.timedelta | None:
    """`24h`/`7d` as a timedelta (None for empty); 422 naming `option` otherwise."""
    if not text:
        return None
    try:
        return parse_age(text)
    except ValueError as exc:
        raise HTTPException(422, f"{option}: {exc}") from None


@dataclass(frozen=True)
class ExecutionFilters:
    """The executions list's filters and page position."""

    status: str | None
    kind: str | None
    trigger: str | None
    since: dt.timedelta | None
    cursor: str | None
    limit: int

    def query(self) -> dict[str, str]:
        """The filters (not the position) as query parameters, for the next page's link."""
        values = {"status": self.status, "kind": self.kind, "trigger": self.trigger, "limit": str(self.limit)}
        return {k: v for k, v in values.items() if v}


def execution_filters(
    status: Annotated[str | None, Query(pattern=STATUS, description="pending, running, succeeded, failed, cancelled")]
    = None,
    kind: Annotated[str | None, Query(max_length=32, description="e.g. nightly, hris, attendance")] = None,
    trigger: Annotated[str | None, Query(pattern=TRIGGER, description="schedule, event, replay or manual")] = None,
    since: Annotated[str | None, Query(max_length=12, description="created within, e.g. 30m, 24h, 7d")] = None,
    cursor: Annotated[str | None, Query(max_length=120, description="the next page's cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> ExecutionFilters:
    """The executions list's parameters (a dependency); an empty form field counts as absent."""
    if cursor:
        try:
            queries.decode_cursor(cursor)
        except ValueError as exc:
            raise HTTPException(422, f"cursor: {exc}") from None
    return ExecutionFilters(status or None, kind or None, trigger or None, age("since", since), cursor or None, limit)


def date_param(option: str, text: str | None, default: dt.date) -> dt.date:
    """A YYYY-MM-DD parameter (years 1900-2100) or `default` when empty; 422 naming it otherwise."""
    if not text:
        return default
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"{option}: expected a date YYYY-MM-DD, got {text[:40]!r}") from None
    if not 1900 <= day.year <= 2100:
        raise HTTPException(422, f"{option}: years 1900-2100 only")
    return day
