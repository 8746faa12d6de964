"""Events valid by the schema but with extreme values never kill the bridge and never plan past the ceiling."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pika.spec import BasicProperties

from pipelines.merge.days import plan_merge_shards, plan_punch_windows
from pipelines.merge.stage import DAY_SHARD_BUDGET, IMPORT_WINDOW_HOURS, MERGE_DAYS_PER_SHARD
from pipelines.stage import MAX_SHARDS
from shared.events.models import InvalidEvent
from workers.bridge import Bridge

STRUCTURED = BasicProperties(content_type="application/cloudevents+json")
# Any date or instant Python can hold, offsets included: the schema's types, without DESIGN §5's bounds.
any_day = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
any_instant = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones())


@st.composite
def extreme_events(draw: st.DrawFn) -> dict[str, Any]:
    """A schema-shaped event of any type with dates, instants and lists at or past every bound."""
    type_ = draw(st.sampled_from(["hrsync.sync.requested", "hrsync.punches.imported", "hrsync.employee.changed"]))
    if type_ == "hrsync.punches.imported":
        start, end = sorted([draw(any_instant), draw(any_instant)])
        data: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    elif type_ == "hrsync.sync.requested":
        data = {"scope": draw(st.sampled_from(["nightly", "hris", "attendance"]))}
        for key in draw(st.sets(st.sampled_from(["from", "to"]))):
            data[key] = draw(any_day).isoformat()
        if draw(st.booleans()):
            data["employees"] = ["E"] * draw(st.sampled_from([1, 5000, 5001]))
    else:
        data = {"employee_no": "E1"}
    event = {"specversion": "1.0", "id": "x", "source": "s", "type": type_, "data": data}
    if draw(st.booleans()):
        event["time"] = draw(any_instant).isoformat()
    return event


def planned_shards(params: dict[str, Any], departments: int) -> int:
    """The most shards the merge planners would make for a request (import windows or day shards)."""
    merge = params.get("merge")
    if not merge:
        return 0
    if "window" in merge:
        window = merge["window"]
        return len(plan_punch_windows(datetime.fromisoformat(window["from"]), datetime.fromisoformat(window["to"]),
                                      IMPORT_WINDOW_HOURS))
    first, last = date.fromisoformat(merge["from"]), date.fromisoformat(merge["to"])
    windows = plan_punch_windows(datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(days=1),
                                 datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=2),
                                 IMPORT_WINDOW_HOURS)
    days = plan_merge_shards(first, last, [f"D{i}" for i in range(departments)], MERGE_DAYS_PER_SHARD,
                             DAY_SHARD_BUDGET)
    return max(len(windows), len(days))


@settings(max_examples=400, deadline=None)
@given(extreme_events(), st.sampled_from([1, 40, 400]))
def test_extreme_events_are_refused_or_planned_within_the_ceiling(event: dict[str, Any], departments: int) -> None:
    """The bridge's admission either refuses an event (InvalidEvent) or asks for work the planners keep under
    MAX_SHARDS, whatever the values: no other exception, no oversized plan."""
    try:
        _, request = Bridge.admissible(json.dumps(event).encode(), STRUCTURED)
    except InvalidEvent:
        return  # refused with its reason: the bridge dead-letters it and goes on
    assert planned_shards(request.params, departments) <= MAX_SHARDS
