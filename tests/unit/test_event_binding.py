"""The CloudEvents RabbitMQ binding (both content modes, one validation path) and DESIGN §5's bounds."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cloudevents.core.bindings import rabbitmq
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.plans import request_for
from pipelines.stage import MAX_SHARDS, PlanTooLarge, plan_of
from shared.config.settings import get_settings
from shared.events.binding import is_binary, parse_message
from shared.events.models import MAX_EVENT_BYTES, InvalidEvent, parse_event

SYNC = "hrsync.sync.requested"
PUNCHES = "hrsync.punches.imported"


def structured(event: dict[str, Any]) -> tuple[bytes, str, dict[str, Any]]:
    """A structured-mode message (body, content type, headers) of `event`."""
    return json.dumps(event).encode(), "application/cloudevents+json", {}


def binary(event: dict[str, Any]) -> tuple[bytes, str | None, dict[str, Any]]:
    """The binary-mode message of `event`: attributes as `ce-` string headers, the data alone as the body."""
    headers = {f"ce-{name}": value for name, value in event.items() if name not in ("data", "datacontenttype")}
    return json.dumps(event["data"]).encode(), event.get("datacontenttype"), headers


def verdict(message: tuple[bytes, str | None, dict[str, Any]]) -> Any:
    """The parsed (envelope, data) of a message, or the rejection reason."""
    try:
        parsed = parse_message(*message)
    except InvalidEvent as invalid:
        return invalid.reason
    return parsed.envelope, parsed.data


def event(type_: str = SYNC, data: Any = None, **attributes: Any) -> dict[str, Any]:
    """A valid event of `type_` with `attributes` added or replaced."""
    document = {"specversion": "1.0", "id": "evt-1", "source": "/payroll", "type": type_,
                "datacontenttype": "application/json", "data": {"scope": "hris"} if data is None else data}
    document.update(attributes)
    return document


@pytest.mark.parametrize("document", [
    pytest.param(event(), id="minimal"),
    pytest.param(event(time="2026-11-25T01:00:00Z", subject="payroll", tenant="north"), id="with-extensions"),
    pytest.param(event(data={"scope": "weekly"}), id="bad-field"),
    pytest.param(event(type="hrsync.unknown"), id="unknown-type"),
    pytest.param(event(specversion="0.3"), id="specversion"),
    pytest.param(event(time="0001-01-01T00:00:00Z"), id="time-year-1"),
    pytest.param(event(datacontenttype="text/plain"), id="content-type"),
    pytest.param({k: v for k, v in event().items() if k != "id"}, id="missing-id"),
])
def test_both_modes_give_the_same_verdict(document: dict[str, Any]) -> None:
    """One event in structured and in binary mode: the same parsed content, or the same reason."""
    assert verdict(binary(document)) == verdict(structured(document))


def test_the_sdk_binary_message_parses_like_its_structured_one() -> None:
    """What the official SDK's to_binary and to_structured send parse to the same event."""
    sdk = CloudEvent(attributes={"type": SYNC, "source": "/payroll", "id": "sdk-1", "specversion": "1.0",
                                 "datacontenttype": "application/json", "tenant": "north",
                                 "time": datetime(2026, 11, 25, 1, tzinfo=UTC)}, data={"scope": "hris"})
    as_binary, as_structured = rabbitmq.to_binary_event(sdk), rabbitmq.to_structured_event(sdk)
    assert is_binary(as_binary.content_type, as_binary.headers)
    assert not is_binary(as_structured.content_type, as_structured.headers)
    one = parse_message(as_binary.body, as_binary.content_type, as_binary.headers)
    other = parse_message(as_structured.body, as_structured.content_type, as_structured.headers)
    assert (one.envelope, one.data) == (other.envelope, other.data)
    assert json.loads(one.body) == json.loads(other.body)  # the inbox gets the same structured form


@pytest.mark.parametrize(("message", "reason"), [
    pytest.param((b'{"scope": "hris"}', "application/json", {"ce-id": "1", "ce-ID": "2"}),
                 "ce-ID: attribute 'id' given twice", id="header-twice-by-case"),
    pytest.param((b'{"scope": "hris"}', "application/json", {"ce-data": "{}"}),
                 "ce-data: not an attribute in binary mode (the data is the message body)", id="data-header"),
    pytest.param((b'{"scope": "hris"}', "application/json", {"ce-id": 7}),
                 "ce-id: header value must be a string, not int", id="non-string-header"),
    pytest.param((b"{not json", "application/json", {"ce-id": "1"}),
                 "data: not JSON: Expecting property name enclosed in double quotes at line 1 column 2",
                 id="body-not-json"),
    pytest.param((b"x" * (MAX_EVENT_BYTES - 10), "application/json", {"ce-source": "s" * 20}),
                 f"too large: {MAX_EVENT_BYTES - 10 + 9 + 20} bytes > {MAX_EVENT_BYTES}", id="headers-count-in-size"),
])
def test_binary_mode_rejections_name_the_header(message: tuple[bytes, str, dict[str, Any]], reason: str) -> None:
    """Problems only binary mode can have are rejected with a reason naming the header (or the size)."""
    with pytest.raises(InvalidEvent) as caught:
        parse_message(*message)
    assert caught.value.reason == reason


def test_binary_header_names_are_case_insensitive_and_parameters_of_the_content_type_ignored() -> None:
    """`CE-Type` is `type`; `application/json; charset=utf-8` is JSON data."""
    parsed = parse_message(b'{"scope": "hris"}', "application/json; charset=utf-8",
                           {"CE-SpecVersion": "1.0", "Ce-Id": "x", "CE-SOURCE": "/s", "ce-type": SYNC})
    assert (parsed.id, parsed.type, parsed.envelope.datacontenttype) == ("x", SYNC, "application/json")


def test_a_message_without_ce_headers_is_read_as_structured() -> None:
    """Publishers that set no content type and no `ce-` header send the whole event as the body."""
    parsed = parse_message(json.dumps(event()).encode(), None, {"x-trace": "abc"})
    assert parsed.id == "evt-1"


# -- bounds (DESIGN §5) -----------------------------------------------------------------------------

# Each case: data or attributes just inside or just outside a bound; `None` = valid.
BOUNDS = [
    # years 1900-2100: the first and last valid days, and one day beyond each
    pytest.param(SYNC, {"scope": "attendance", "from": "1900-01-01", "to": "1900-01-01"}, {}, None, id="from-1900"),
    pytest.param(SYNC, {"scope": "attendance", "from": "1899-12-31", "to": "1900-01-01"}, {},
                 "data.from: must lie in the years 1900-2100", id="from-1899"),
    pytest.param(SYNC, {"scope": "attendance", "from": "2100-12-31", "to": "2100-12-31"}, {}, None, id="to-2100"),
    pytest.param(SYNC, {"scope": "attendance", "to": "2101-01-01"}, {},
                 "data.to: must lie in the years 1900-2100", id="to-2101"),
    # 400 days inclusive: 2026-01-01..2027-02-04 holds 365 + 35 = 400 days; one more day is 401
    pytest.param(SYNC, {"scope": "attendance", "from": "2026-01-01", "to": "2027-02-04"}, {}, None, id="400-days"),
    pytest.param(SYNC, {"scope": "attendance", "from": "2026-01-01", "to": "2027-02-05"}, {},
                 "data: the range 'from'..'to' holds 401 days, more than 400", id="401-days"),
    # punch window at most 31 days: exactly 31 days of 24 h pass, one second more does not
    pytest.param(PUNCHES, {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}, {}, None, id="31-days"),
    pytest.param(PUNCHES, {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:01Z"}, {},
                 "data: the window 'from'..'to' is longer than 31 days", id="31-days-and-1-s"),
    # an instant whose wall clock is in 2100 but whose UTC instant is in 2101
    pytest.param(SYNC, {"scope": "hris"}, {"time": "2100-12-31T23:30:00-01:00"},
                 "time: must lie in the years 1900-2100", id="time-utc-2101"),
    pytest.param(SYNC, {"scope": "hris"}, {"time": "0001-01-01T00:00:00Z"},
                 "time: must lie in the years 1900-2100", id="time-year-1"),
    pytest.param(SYNC, {"scope": "hris", "employees": ["E"] * 5000}, {}, None, id="5000-employees"),
    pytest.param(SYNC, {"scope": "hris", "employees": ["E"] * 5001}, {},
                 "data.employees: List should have at most 5000 items after validation, not 5001",
                 id="5001-employees"),
]


@pytest.mark.parametrize(("type_", "data", "attributes", "reason"), BOUNDS)
def test_bounds(type_: str, data: dict[str, Any], attributes: dict[str, Any], reason: str | None) -> None:
    """Values on a bound are valid; one step past it is rejected with a reason naming the field."""
    result = verdict(structured(event(type_, data, **attributes)))
    assert (result if isinstance(result, str) else None) == reason


@pytest.mark.parametrize(("data", "reason"), [
    # nightly without dates on an event of 2026-11-25 (Berlin): yesterday and the day before — 2 days
    ({"scope": "nightly"}, None),
    # from 2025-10-21 to yesterday 2026-11-24: 365 + 35 = 400 days
    ({"scope": "attendance", "from": "2025-10-21"}, None),
    # one day earlier: 401 days
    ({"scope": "attendance", "from": "2025-10-20"},
     "data: the range 'from'..'to' holds 401 days, more than 400 (resolved against the event's day 2026-11-25)"),
])
def test_open_ranges_are_bounded_once_resolved(data: dict[str, Any], reason: str | None) -> None:
    """A range left open in the event is resolved against the event's day, and bounded like a closed one."""
    parsed = parse_event(json.dumps(event(SYNC, data, time="2026-11-25T12:00:00Z")).encode())
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    if reason is None:
        assert request_for(parsed, now, get_settings().zone).params["merge"]["to"] == "2026-11-24"
    else:
        with pytest.raises(InvalidEvent) as caught:
            request_for(parsed, now, get_settings().zone)
        assert caught.value.reason == reason


def test_a_period_close_launches_the_export_stage_alone() -> None:
    """`hrsync.period.closed` {period, version} runs the export stage of that version and nothing else."""
    parsed = parse_event(json.dumps(event("hrsync.period.closed", {"period": "2026-11", "version": 2})).encode())
    request = request_for(parsed, datetime(2026, 12, 2, tzinfo=UTC), get_settings().zone)
    assert (request.kind, request.params["stages"], request.params["export"]) == (
        "export", ["export"], {"period": "2026-11", "version": 2})


def test_a_plan_above_the_shard_ceiling_is_refused() -> None:
    """A planner's output with more than MAX_SHARDS shards fails the stage instead of fanning out."""
    assert plan_of([{"key": str(i)} for i in range(MAX_SHARDS)], {}).rows_in == MAX_SHARDS
    with pytest.raises(PlanTooLarge, match=f"{MAX_SHARDS + 1} shards"):
        plan_of([{"key": str(i)} for i in range(MAX_SHARDS + 1)], {})


# -- the property ------------------------------------------------------------------------------------

extension_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20).filter(
    lambda name: name not in {"specversion", "id", "source", "type", "time", "datacontenttype", "subject",
                              "data", "dataschema"})
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
instants = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 11, 30), timezones=st.just(UTC))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Events that are valid, or invalid in the ways both modes can express (strings for every attribute)."""
    type_ = draw(st.sampled_from([SYNC, PUNCHES, "hrsync.employee.changed", "hrsync.nope"]))
    if type_ == PUNCHES:
        start = draw(instants)
        data: Any = {"from": start.isoformat(), "to": (start + draw(st.timedeltas(
            timedelta(0), timedelta(days=40)))).isoformat()}
    elif type_ == SYNC:
        first = draw(days)
        data = {"scope": draw(st.sampled_from(["nightly", "hris", "attendance", "weekly"])),
                "from": first.isoformat(),
                "to": min(first + timedelta(days=draw(st.integers(0, 450))), date(2100, 12, 31)).isoformat()}
    else:
        data = {"employee_no": draw(st.text(min_size=0, max_size=70))}
    extras = draw(st.dictionaries(extension_names, st.text(max_size=20), max_size=3))
    optional = {"time": draw(st.none() | instants.map(lambda t: t.isoformat().replace("+00:00", "Z"))),
                "subject": draw(st.none() | st.text(max_size=20))}
    return event(type_, data, id=draw(st.text(min_size=1, max_size=40)), **extras,
                 **{k: v for k, v in optional.items() if v is not None})


@settings(max_examples=300, deadline=None)
@given(events())
def test_any_event_has_one_verdict_in_both_modes(document: dict[str, Any]) -> None:
    """Any event valid in one mode is valid in the other with equal parsed content; an invalid one gets the
    same reason."""
    assert verdict(binary(document)) == verdict(structured(document))
