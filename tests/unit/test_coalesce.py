"""Coalescing: how a pending execution's params grow by one more event (docs/workflows.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.merge.joins import merge_windows
from pipelines.registry import joins
from shared.events.coalesce import Gathering, coalesce, initial

JOINS = joins()  # the registered stages' joins, passed explicitly


def punches(start: str, end: str, devices: list[int] | None = None) -> dict[str, Any]:
    return {"scope": "punches", "stages": ["merge", "notify"], "event": {"id": "e", "type": "t"},
            "merge": {"window": {"from": start, "to": end}, "devices": devices, "employees": None}}


def employee(no: str, first: str, last: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"scope": "employee", "stages": ["extract", "merge", "notify"], "fields": fields,
            "extract": {"full": False, "employees": [no], "source": "hris"},
            "merge": {"from": first, "to": last, "employees": [no]}}


def test_a_one_event_execution_carries_its_window_as_a_list_and_a_count() -> None:
    """A single punches event's params gain `windows` = [its window] and `events` = 1, the rest unchanged."""
    shaped = initial("punches", punches("2026-12-01T08:00:00+00:00", "2026-12-01T09:00:00+00:00", [1]), JOINS)
    assert shaped["merge"]["windows"] == [shaped["merge"]["window"]]
    assert shaped["events"] == 1
    assert initial("hris", {"scope": "hris"}, JOINS) == {"scope": "hris"}  # never coalesced: untouched


@pytest.mark.parametrize(("windows", "merged"), [
    # disjoint: both kept, sorted by start
    ([("10", "11"), ("08", "09")], [("08", "09"), ("10", "11")]),
    # overlapping and touching: one window from the first start to the last end
    ([("08", "10"), ("09", "11"), ("11", "12")], [("08", "12")]),
    # contained: the outer one stays
    ([("08", "12"), ("09", "10")], [("08", "12")]),
])
def test_windows_merge_when_they_overlap_or_touch(windows: list[tuple[str, str]],
                                                  merged: list[tuple[str, str]]) -> None:
    """Windows sorted by start; overlapping or touching ones become one."""
    def at(hour: str) -> str:
        return f"2026-12-01T{hour}:00:00+00:00"
    got = merge_windows([{"from": at(a), "to": at(b)} for a, b in windows])
    assert got == [{"from": at(a), "to": at(b)} for a, b in merged]


def test_punch_events_grow_the_hull_the_windows_and_the_devices() -> None:
    """Two windows an hour apart: hull from the first start to the last end, both windows, devices united."""
    pending = initial("punches", punches("2026-12-01T08:00:00+00:00", "2026-12-01T08:05:00+00:00", [2]), JOINS)
    later = punches("2026-12-01T09:00:00+00:00", "2026-12-01T09:05:00+00:00", [1, 2])
    grown = coalesce("punches", pending, later, JOINS)
    assert grown is not None
    assert grown["merge"]["window"] == {"from": "2026-12-01T08:00:00+00:00", "to": "2026-12-01T09:05:00+00:00"}
    assert len(grown["merge"]["windows"]) == 2
    assert grown["merge"]["devices"] == [1, 2]
    assert grown["events"] == 2
    assert pending["events"] == 1  # the pending params are not changed in place


def test_one_event_without_devices_makes_the_union_all_devices() -> None:
    """An event naming no devices means every device, so the union is every device (None)."""
    pending = initial("punches", punches("2026-12-01T08:00:00+00:00", "2026-12-01T09:00:00+00:00", [1]), JOINS)
    grown = coalesce("punches", pending, punches("2026-12-01T08:00:00+00:00", "2026-12-01T09:00:00+00:00"), JOINS)
    assert grown is not None
    assert grown["merge"]["devices"] is None


def test_a_hull_beyond_31_days_does_not_join() -> None:
    """Windows 40 days apart would make a hull over the 31-day bound: the event opens its own execution."""
    pending = initial("punches", punches("2026-10-01T08:00:00+00:00", "2026-10-01T09:00:00+00:00"), JOINS)
    later = punches("2026-11-10T08:00:00+00:00", "2026-11-10T09:00:00+00:00")
    assert coalesce("punches", pending, later, JOINS) is None


def test_employee_events_unite_employees_ranges_and_fields() -> None:
    """Two employees, ranges a day apart: both employees, earliest from, latest to, fields united."""
    pending = initial("employee", employee("E2", "2026-11-24", "2026-11-30", ["name"]), JOINS)
    grown = coalesce("employee", pending, employee("E1", "2026-11-25", "2026-12-01", ["dept"]), JOINS)
    assert grown is not None
    assert grown["extract"]["employees"] == grown["merge"]["employees"] == ["E1", "E2"]
    assert (grown["merge"]["from"], grown["merge"]["to"]) == ("2026-11-24", "2026-12-01")
    assert grown["fields"] == ["dept", "name"]
    assert grown["events"] == 2


def test_the_employee_union_stops_at_the_bound() -> None:
    """A pending execution holding 5,000 employees takes no 5,001st: the event opens a new execution."""
    pending = initial("employee", employee("E0", "2026-11-24", "2026-11-30"), JOINS)
    pending["extract"]["employees"] = pending["merge"]["employees"] = [f"E{n}" for n in range(5000)]
    assert coalesce("employee", pending, employee("E0", "2026-11-24", "2026-11-30"), JOINS) is not None  # already in
    assert coalesce("employee", pending, employee("X", "2026-11-24", "2026-11-30"), JOINS) is None


def test_sync_requests_never_coalesce() -> None:
    """A `sync.requested` kind is not merged."""
    assert coalesce("hris", {"scope": "hris"}, {"scope": "hris"}, JOINS) is None


def test_a_gathering_refuses_an_event_past_the_bound_and_keeps_what_it_had() -> None:
    """Joined 08:00 and 09:00 (devices 1, 2), then an event 40 days later is refused: the params stay those
    of the two events (hull 08:00..09:05, devices [1, 2], 2 events)."""
    first = punches("2026-12-01T08:00:00+00:00", "2026-12-01T08:05:00+00:00", [1])
    gathering = Gathering("punches", initial("punches", first, JOINS), JOINS)
    assert gathering.join(punches("2026-12-01T09:00:00+00:00", "2026-12-01T09:05:00+00:00", [2]))
    assert not gathering.join(punches("2027-01-10T09:00:00+00:00", "2027-01-10T09:05:00+00:00", [3]))
    merge = gathering.params()["merge"]
    assert merge["window"] == {"from": "2026-12-01T08:00:00+00:00", "to": "2026-12-01T09:05:00+00:00"}
    assert (merge["devices"], gathering.params()["events"]) == ([1, 2], 2)


minutes = st.lists(st.tuples(st.integers(0, 60 * 24 * 40), st.integers(1, 120),
                             st.one_of(st.none(), st.lists(st.integers(1, 5), max_size=3))),
                   min_size=1, max_size=30)


@given(minutes)
def test_one_gathering_of_many_events_equals_growing_the_params_event_by_event(
        events: list[tuple[int, int, list[int] | None]]) -> None:
    """Joining events one after another into one gathering gives the params that folding `coalesce` over
    them gives (each step re-read from the params), and refuses the same events."""
    def event(start: int, length: int, devices: list[int] | None) -> dict[str, Any]:
        begin = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=start)
        return punches(begin.isoformat(), (begin + dt.timedelta(minutes=length)).isoformat(), devices)

    first, *rest = [event(*e) for e in events]
    folded = initial("punches", first, JOINS)
    gathering = Gathering("punches", folded, JOINS)
    joined = 0
    for params in rest:
        grown = coalesce("punches", folded, params, JOINS)
        assert gathering.join(params) == (grown is not None)
        folded, joined = (grown, joined + 1) if grown is not None else (folded, joined)
    if joined:  # (with none, the bridge writes nothing: the params stay as the first event gave them)
        assert gathering.params() == folded


@pytest.mark.parametrize(("pending_range", "new_range", "joins"), [
    # 2026-11-24..30 and 2026-12-01..07: union 24 Nov..7 Dec = 14 days ≤ 400: joins
    (("2026-11-24", "2026-11-30"), ("2026-12-01", "2026-12-07"), True),
    # an event timed 1950: union 1950-01-01..2026-11-30 = 27,727 days > 400: a new execution
    (("2026-11-24", "2026-11-30"), ("1950-01-01", "1950-01-07"), False),
    # a publisher's clock in 2099: union 24 Nov 2026..2099 > 400 days: a new execution
    (("2026-11-24", "2026-11-30"), ("2099-06-01", "2099-06-07"), False),
    # 2026-01-01..2027-02-04 holds 365 + 35 = 400 days: exactly the bound, joins
    (("2026-01-01", "2026-01-07"), ("2027-01-29", "2027-02-04"), True),
    # one day more (..2027-02-05) holds 401 days: a new execution
    (("2026-01-01", "2026-01-07"), ("2027-01-30", "2027-02-05"), False),
])
def test_employee_events_join_only_while_the_merge_range_stays_within_400_days(
        pending_range: tuple[str, str], new_range: tuple[str, str], joins: bool) -> None:
    """An `employee.changed` joins a pending execution only while the merged dates stay within one event's
    bound (DESIGN §5: a merge range of at most 400 days, both ends counted)."""
    pending = initial("employee", employee("E1", *pending_range), JOINS)
    grown = coalesce("employee", pending, employee("E2", *new_range), JOINS)
    assert (grown is not None) == joins
    if grown is not None:
        assert (grown["merge"]["from"], grown["merge"]["to"]) == (pending_range[0], new_range[1])


# -- the joins the stages declare (`Stage.join`), and how a gathering uses them --------------------------------

def window(start: str, end: str, devices: list[int] | None = None) -> dict[str, Any]:
    return {"window": {"from": start, "to": end}, "devices": devices, "employees": None}


def days(first: str, last: str, employees: list[str]) -> dict[str, Any]:
    return {"from": first, "to": last, "employees": employees}


def people(*numbers: str) -> dict[str, Any]:
    return {"full": False, "employees": list(numbers), "source": "hris"}


H = "2026-12-01T{}:00:00+00:00"
JOIN_CASES = [
    # merge, punches windows: hull 08:00..11:00, both windows, devices united
    ("merge", window(H.format("08"), H.format("09"), [2]), window(H.format("10"), H.format("11"), [1]),
     {"window": {"from": H.format("08"), "to": H.format("11")}, "devices": [1, 2],
      "windows": [{"from": H.format("08"), "to": H.format("09")}, {"from": H.format("10"), "to": H.format("11")}]}),
    # merge, punches windows: a hull of exactly 31 days joins ...
    ("merge", window("2026-12-01T00:00:00+00:00", "2026-12-01T01:00:00+00:00"),
     window("2026-12-31T23:00:00+00:00", "2027-01-01T00:00:00+00:00"),
     {"window": {"from": "2026-12-01T00:00:00+00:00", "to": "2027-01-01T00:00:00+00:00"}}),
    # ... one minute more does not
    ("merge", window("2026-12-01T00:00:00+00:00", "2026-12-01T01:00:00+00:00"),
     window("2026-12-31T23:00:00+00:00", "2027-01-01T00:01:00+00:00"), None),
    # merge, punches windows: an event naming no devices makes it every device
    ("merge", window(H.format("08"), H.format("09"), [1]), window(H.format("08"), H.format("09")), {"devices": None}),
    # merge, a date range: employees united, the earliest from and the latest to
    ("merge", days("2026-11-24", "2026-11-30", ["E2"]), days("2026-11-25", "2026-12-01", ["E1"]),
     {"from": "2026-11-24", "to": "2026-12-01", "employees": ["E1", "E2"]}),
    # merge, a date range of 401 days does not join
    ("merge", days("2026-01-01", "2026-01-07", ["E1"]), days("2027-01-30", "2027-02-05", ["E2"]), None),
    # extract: the employees united, the rest kept
    ("extract", people("E2"), people("E1", "E2"), {"full": False, "employees": ["E1", "E2"], "source": "hris"}),
    # extract: everyone (None) never joins
    ("extract", people("E1"), {"full": False, "employees": None, "source": "hris"}, None),
]


@pytest.mark.parametrize(("stage", "pending", "new", "grown"), JOIN_CASES)
def test_a_stage_declared_join_grows_its_inputs_within_the_bounds(
        stage: str, pending: dict[str, Any], new: dict[str, Any], grown: dict[str, Any] | None) -> None:
    """Each stage's declared join (`Stage.join`, from the registry): whether the event's inputs fit, and the
    inputs it grows them into (`grown`: the keys checked; None: refused, nothing changed)."""
    joining = JOINS[stage](pending)
    before = joining.params()
    assert joining.admits(new) == (grown is not None)
    if grown is None:
        assert joining.params() == before
        return
    joining.add(new)
    assert {key: joining.params()[key] for key in grown} == grown


def test_the_stages_that_declare_a_join() -> None:
    """Extract and merge have inputs that grow; notify has none; export's events never coalesce."""
    assert sorted(JOINS) == ["extract", "merge"]


class Tally:
    """A throwaway stage's join: counts (`n`) add up, at most 3."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.n = int(params["n"])

    def admits(self, new: dict[str, Any]) -> bool:
        return self.n + int(new["n"]) <= 3

    def add(self, new: dict[str, Any]) -> None:
        self.n += int(new["n"])

    def params(self) -> dict[str, Any]:
        return {"n": self.n}


def tallied(n: int, other: str = "x", stages: tuple[str, ...] = ("tally", "other")) -> dict[str, Any]:
    return {"scope": "punches", "stages": list(stages), "tally": {"n": n}, "other": {"same": other}}


@pytest.mark.parametrize(("events", "params"), [
    # the declared join adds the counts; the stage without a join (`other`) keeps its equal inputs
    ([tallied(1), tallied(1)], {"tally": {"n": 2}, "other": {"same": "x"}, "events": 2}),
    # the tally refuses past 3: the third event does not join, nothing of it counted
    ([tallied(2), tallied(1), tallied(1)], {"tally": {"n": 3}, "other": {"same": "x"}, "events": 2}),
    # a stage without a join takes only the same inputs: the tally is not grown by a refused event
    ([tallied(1), tallied(1, other="y")], {"tally": {"n": 1}, "other": {"same": "x"}, "events": 1}),
    # an event that runs other stages does not join
    ([tallied(1), tallied(1, stages=("tally",))], {"tally": {"n": 1}, "events": 1}),
])
def test_a_gathering_joins_with_the_joins_it_is_given(events: list[dict[str, Any]], params: dict[str, Any]) -> None:
    """coalesce.py knows no stage: a throwaway stage's join, given as `joins=`, grows its inputs; an event joins
    only when every stage admits it (all or nothing)."""
    first, *rest = events
    gathering = Gathering("punches", initial("punches", first, {"tally": Tally}), {"tally": Tally})
    for new in rest:
        gathering.join(new)
    assert {key: gathering.params()[key] for key in params} == params
