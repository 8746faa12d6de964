"""Unit tests of shared.events.models: the CloudEvents envelope, each type's data, event ids and the schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config.errors import in_field_order
from shared.events.models import (
    CONTENT_TYPE,
    DATA_MODELS,
    EMPLOYEE_CHANGED,
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    PUNCHES_IMPORTED,
    SYNC_REQUESTED,
    EmployeeChanged,
    InvalidEvent,
    ParsedEvent,
    PunchesImported,
    SyncRequested,
    build_event,
    events_json_schema,
    export_schema,
    parse_event,
    sync_event_id,
)

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "events.schema.json"
EXTENSION_RULE = "unknown attribute (extension names are 1-20 lowercase letters or digits)"
EXTENSION_VALUE_RULE = "extension value must be a string, a boolean or a 32-bit integer"
SYNC_DATA = {"scope": "hris"}
PUNCHES_DATA = {"from": "2026-11-24T00:00:00Z", "to": "2026-11-25T00:00:00Z"}


def envelope(type_: str = SYNC_REQUESTED, data: Any = None, **attributes: Any) -> dict[str, Any]:
    """A valid envelope of `type_` (data defaults to a valid one), with `attributes` added or replaced."""
    defaults = {SYNC_REQUESTED: SYNC_DATA, EMPLOYEE_CHANGED: {"employee_no": "E0042"}}
    document = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "tests",
        "type": type_,
        "data": defaults.get(type_, PUNCHES_DATA) if data is None else data,
    }
    document.update(attributes)
    return document


def encode(document: Any) -> bytes:
    """The JSON body of `document`, UTF-8."""
    return json.dumps(document, ensure_ascii=False).encode()


def without(document: dict[str, Any], key: str) -> dict[str, Any]:
    """`document` without `key`."""
    return {name: value for name, value in document.items() if name != key}


def padded_to(size: int) -> bytes:
    """A valid event body of exactly `size` bytes (trailing JSON whitespace)."""
    body = encode(envelope())
    return body + b" " * (size - len(body))


def sync(**data: Any) -> bytes:
    """A `hrsync.sync.requested` body with `data`."""
    return encode(envelope(SYNC_REQUESTED, data))


def changed(**data: Any) -> bytes:
    """A `hrsync.employee.changed` body with `data`."""
    return encode(envelope(EMPLOYEE_CHANGED, data))


def punches(**data: Any) -> bytes:
    """A `hrsync.punches.imported` body with `data` (keyword `from_` is sent as `from`)."""
    if "from_" in data:
        data["from"] = data.pop("from_")
    return encode(envelope(PUNCHES_IMPORTED, data))


VALID = [
    pytest.param(sync(scope="nightly"), SyncRequested, id="sync-minimal"),
    pytest.param(
        sync(
            scope="attendance",
            **{"from": "2026-11-01"},
            to="2026-11-30",
            employees=["E1", "E2"],
            notify=False,
        ),
        SyncRequested,
        id="sync-all-fields",
    ),
    pytest.param(
        sync(scope="hris", **{"from": "2026-11-01"}, to="2026-11-01"), SyncRequested, id="sync-one-day"
    ),
    pytest.param(sync(scope="hris", to="2026-11-01"), SyncRequested, id="sync-only-to"),
    pytest.param(sync(scope="hris", employees=[" E 1 "]), SyncRequested, id="sync-employee-spaces-kept"),
    pytest.param(changed(employee_no="E0042"), EmployeeChanged, id="changed-minimal"),
    pytest.param(
        changed(employee_no="Ä-7", fields=["email", "department"]), EmployeeChanged, id="changed-fields"
    ),
    pytest.param(changed(employee_no="E" * 64), EmployeeChanged, id="changed-64-chars"),
    pytest.param(punches(**PUNCHES_DATA), PunchesImported, id="punches-utc"),
    pytest.param(
        punches(from_="2026-11-24T08:00:00+01:00", to="2026-11-24T07:00:00Z", devices=[1, 542]),
        PunchesImported,
        id="punches-offsets-equal-instants",
    ),
    pytest.param(
        encode(
            envelope(
                time="2026-11-25T01:00:00Z",
                datacontenttype="application/json",
                subject="E0042",
                traceparent="00-abc-def-01",
                retries=3,
                manual=True,
                a2345678901234567890=-(2**31),
            )
        ),
        SyncRequested,
        id="envelope-optional-and-extensions",
    ),
    pytest.param(encode(envelope(time=None, subject=None)), SyncRequested, id="envelope-null-optionals"),
    pytest.param(encode(envelope(id="i" * 200)), SyncRequested, id="id-200-chars"),
    pytest.param(padded_to(MAX_EVENT_BYTES), SyncRequested, id="exactly-256-KiB"),
]


@pytest.mark.parametrize(("body", "model"), VALID)
def test_valid_event_parses_to_its_data_model(body: bytes, model: type[Any]) -> None:
    """A valid body parses to a ParsedEvent whose data is the model of its type, built from the raw data."""
    parsed = parse_event(body)
    assert isinstance(parsed, ParsedEvent)
    assert isinstance(parsed.data, model)
    assert parsed.type in EVENT_TYPES
    assert parsed.id == parsed.envelope.id
    assert parsed.data.model_dump(mode="json", by_alias=True, exclude_unset=True) == parsed.envelope.data


INVALID = [
    pytest.param(padded_to(MAX_EVENT_BYTES + 1), "too large: 262145 bytes > 262144", id="256-KiB-plus-1"),
    pytest.param(b"\xff" * (MAX_EVENT_BYTES + 1), "too large: 262145 bytes > 262144", id="size-before-utf8"),
    pytest.param(b"\xff\xfe{}", "not valid UTF-8", id="invalid-utf8"),
    pytest.param(
        encode(envelope()).replace(b"evt-1", b"evt-\xc3\x28"), "not valid UTF-8", id="invalid-utf8-in-id"
    ),
    pytest.param(b"", "not JSON: Expecting value at line 1 column 1", id="empty-body"),
    pytest.param(b'{"id": ', "not JSON: Expecting value at line 1 column 8", id="truncated-json"),
    pytest.param(b'{"id": NaN}', "not JSON: NaN is not allowed", id="json-nan"),
    pytest.param(b"[" * 100_000, "not JSON: nested too deeply", id="json-too-deep"),
    pytest.param(
        b"1" * 5000,
        "not JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits",
        id="json-huge-integer",
    ),
    pytest.param(
        b'{"specversion": "1.0", "id": "\\ud800", "source": "s", "type": "t", "data": {}}',
        "not JSON: unexpected end of hex escape at line 1 column 37",
        id="json-lone-surrogate",
    ),
    pytest.param(b"[1, 2]", "not a JSON object: array", id="json-array"),
    pytest.param(b'"event"', "not a JSON object: string", id="json-string"),
    pytest.param(b"null", "not a JSON object: null", id="json-null"),
    pytest.param(b"true", "not a JSON object: boolean", id="json-boolean"),
    pytest.param(
        b"{}",
        # every missing attribute, by field path (hrsync's order, not pydantic's)
        "data: field required; id: field required; source: field required; specversion: field required; "
        "type: field required",
        id="empty-object",
    ),
    pytest.param(encode(without(envelope(), "id")), "id: field required", id="missing-id"),
    pytest.param(encode(without(envelope(), "data")), "data: field required", id="missing-data"),
    pytest.param(encode(envelope(id="")), "id: String should have at least 1 character", id="empty-id"),
    pytest.param(
        encode(envelope(id="i" * 201)), "id: String should have at most 200 characters", id="long-id"
    ),
    pytest.param(encode(envelope(id=7)), "id: Input should be a valid string", id="integer-id"),
    pytest.param(encode(envelope(specversion="0.3")), "specversion: Input should be '1.0'", id="specversion"),
    pytest.param(
        encode(envelope(source="")), "source: String should have at least 1 character", id="empty-source"
    ),
    pytest.param(
        encode(envelope(time="2026-11-25T01:00:00")), "time: Input should have timezone info", id="naive-time"
    ),
    pytest.param(
        encode(envelope(time=1764032400)), "time: Input should be a valid datetime", id="numeric-time"
    ),
    pytest.param(
        encode(envelope(datacontenttype="text/plain")),
        "datacontenttype: Input should be 'application/json'",
        id="datacontenttype",
    ),
    pytest.param(encode(envelope(Trace="x")), f"'Trace': {EXTENSION_RULE}", id="extension-uppercase"),
    pytest.param(
        encode(envelope(data_base64="eA==")), f"'data_base64': {EXTENSION_RULE}", id="extension-underscore"
    ),
    pytest.param(
        encode(envelope(**{"a" * 21: "x"})), f"'{'a' * 21}': {EXTENSION_RULE}", id="extension-21-chars"
    ),
    pytest.param(encode(envelope(ext={"a": 1})), f"ext: {EXTENSION_VALUE_RULE}", id="extension-object"),
    pytest.param(encode(envelope(ext=[1])), f"ext: {EXTENSION_VALUE_RULE}", id="extension-array"),
    pytest.param(encode(envelope(ext=1.5)), f"ext: {EXTENSION_VALUE_RULE}", id="extension-float"),
    pytest.param(encode(envelope(ext=None)), f"ext: {EXTENSION_VALUE_RULE}", id="extension-null"),
    pytest.param(
        encode(envelope(ext=2**31)), f"ext: {EXTENSION_VALUE_RULE}", id="extension-int-over-32-bits"
    ),
    pytest.param(encode(envelope("hrsync.foo", {})), "unknown type: 'hrsync.foo'", id="unknown-type"),
    pytest.param(
        encode(envelope("hrsync.foo", [])), "unknown type: 'hrsync.foo'", id="unknown-type-before-bad-data"
    ),
    pytest.param(encode(envelope(data=[])), "data: Input should be an object", id="data-array"),
    pytest.param(encode(envelope(data="x")), "data: Input should be an object", id="data-string"),
    pytest.param(
        sync(scope="weekly"),
        "data.scope: Input should be 'nightly', 'hris' or 'attendance'",
        id="sync-bad-scope",
    ),
    pytest.param(sync(notify=False), "data.scope: field required", id="sync-missing-scope"),
    pytest.param(
        sync(scope="hris", **{"from": "2026-02-30"}),
        "data.from: Input should be a valid date in the format YYYY-MM-DD, "
        "day value is outside expected range",
        id="sync-impossible-date",
    ),
    pytest.param(
        sync(scope="hris", to="2026-11-01T00:00:00Z"),
        "data.to: Input should be a valid date in the format YYYY-MM-DD, "
        "unexpected extra characters at the end of the input",
        id="sync-datetime-for-date",
    ),
    pytest.param(
        sync(scope="hris", to=20261101), "data.to: Input should be a valid date", id="sync-number-date"
    ),
    pytest.param(
        sync(scope="hris", **{"from": "2026-11-02"}, to="2026-11-01"),
        "data: 'from' must not be after 'to'",
        id="sync-from-after-to",
    ),
    pytest.param(
        sync(scope="hris", notify="yes"), "data.notify: Input should be a valid boolean", id="sync-notify"
    ),
    pytest.param(
        sync(scope="hris", employees=[]),
        "data.employees: List should have at least 1 item after validation, not 0",
        id="sync-no-employees",
    ),
    pytest.param(
        sync(scope="hris", employees="E1"), "data.employees: Input should be a valid array", id="sync-emp"
    ),
    pytest.param(
        sync(scope="hris", employees=["E1", "E\t2"]),
        "data.employees[1]: must not contain control characters",
        id="sync-employee-control-char",
    ),
    pytest.param(
        sync(scope="hris", foo=1), "data.foo: Extra inputs are not permitted", id="sync-extra-field"
    ),
    pytest.param(
        sync(scope="hris", from_="2026-11-01"),
        "data.from_: Extra inputs are not permitted",
        id="sync-python-name",
    ),
    pytest.param(
        changed(fields=["email"]), "data.employee_no: field required", id="changed-missing-employee"
    ),
    pytest.param(
        changed(employee_no=""),
        "data.employee_no: String should have at least 1 character",
        id="changed-empty",
    ),
    pytest.param(
        changed(employee_no="E" * 65),
        "data.employee_no: String should have at most 64 characters",
        id="changed-65-chars",
    ),
    pytest.param(
        changed(employee_no=42), "data.employee_no: Input should be a valid string", id="changed-number"
    ),
    pytest.param(
        changed(employee_no="E1\n"),
        "data.employee_no: must not contain control characters",
        id="changed-newline",
    ),
    pytest.param(
        changed(employee_no="E\x001"),
        "data.employee_no: must not contain control characters",
        id="changed-nul",
    ),
    pytest.param(
        changed(employee_no="E\x7f1"),
        "data.employee_no: must not contain control characters",
        id="changed-del",
    ),
    pytest.param(
        changed(employee_no="E\x851"),
        "data.employee_no: must not contain control characters",
        id="changed-c1",
    ),
    pytest.param(
        changed(employee_no="E1", fields="email"),
        "data.fields: Input should be a valid array",
        id="changed-fields",
    ),
    pytest.param(
        changed(employee_no="E1", extra=True),
        "data.extra: Extra inputs are not permitted",
        id="changed-extra-field",
    ),
    pytest.param(
        punches(from_="2026-11-24T00:00:00", to="2026-11-25T00:00:00Z"),
        "data.from: Input should have timezone info",
        id="punches-naive-from",
    ),
    pytest.param(
        punches(from_="2026-11-24T00:00:00Z", to="2026-11-25T00:00:00"),
        "data.to: Input should have timezone info",
        id="punches-naive-to",
    ),
    pytest.param(
        punches(from_="2026-11-25T00:00:00Z", to="2026-11-25T00:00:00+01:00"),
        "data: 'from' must not be after 'to'",
        id="punches-from-after-to",
    ),
    pytest.param(punches(from_="2026-11-24T00:00:00Z"), "data.to: field required", id="punches-missing-to"),
    pytest.param(
        punches(**PUNCHES_DATA, devices=["1", 2.5]),
        "data.devices[0]: Input should be a valid integer; data.devices[1]: Input should be a valid integer",
        id="punches-bad-devices",
    ),
    pytest.param(
        punches(**PUNCHES_DATA, devices=[True]),
        "data.devices[0]: Input should be a valid integer",
        id="punches-bool",
    ),
]


@pytest.mark.parametrize(("body", "reason"), INVALID)
def test_invalid_event_is_rejected_with_its_reason(body: bytes, reason: str) -> None:
    """An invalid body raises InvalidEvent whose reason names the first failing check, field by field."""
    with pytest.raises(InvalidEvent) as caught:
        parse_event(body)
    assert caught.value.reason == reason
    assert str(caught.value) == reason


def test_parsed_data_has_typed_values_and_defaults() -> None:
    """Parsed data holds dates and aware datetimes, reads the `from` key and defaults `notify` to true."""
    sync_data = parse_event(sync(scope="hris", **{"from": "2026-11-01"}, to="2026-11-30")).data
    assert sync_data == SyncRequested.model_validate(
        {"scope": "hris", "from": date(2026, 11, 1), "to": date(2026, 11, 30), "notify": True}
    )
    punch_data = parse_event(punches(from_="2026-11-24T08:00:00+01:00", to="2026-11-24T09:00:00Z")).data
    assert isinstance(punch_data, PunchesImported)
    assert punch_data.from_ == datetime(2026, 11, 24, 7, tzinfo=UTC)


def test_extension_attributes_are_kept() -> None:
    """Extension attributes are exposed by name and survive a round trip through to_json_bytes."""
    body = encode(envelope(traceparent="00-abc-def-01", retries=3, manual=False))
    event = parse_event(body).envelope
    assert event.extensions == {"traceparent": "00-abc-def-01", "retries": 3, "manual": False}
    assert json.loads(event.to_json_bytes()) == json.loads(body)


def test_reason_is_one_capped_line() -> None:
    """A reason echoing hostile input is escaped to a single line of at most 300 characters."""
    with pytest.raises(InvalidEvent) as caught:
        parse_event(encode(envelope("x\n\r\u2028\x85" * 200)))
    reason = caught.value.reason
    assert reason.startswith("unknown type: 'x\\n\\r\\u2028\\x85")
    assert len(reason) <= 300
    assert len(reason.splitlines()) == 1


def test_build_event_makes_a_parseable_event() -> None:
    """build_event gives a uuid4 id, an aware time and normalized data, and parse_event accepts its bytes."""
    event = build_event(SYNC_REQUESTED, {"scope": "attendance", "from": date(2026, 11, 1)})
    assert uuid.UUID(event.id).version == 4
    assert event.time is not None
    assert event.time.utcoffset() is not None
    assert event.source == "hrsync"
    assert event.data == {"scope": "attendance", "from": "2026-11-01", "notify": True}
    assert parse_event(event.to_json_bytes()).envelope == event


def test_build_event_serializes_compact_with_aliases() -> None:
    """to_json_bytes is compact JSON with the `from` key, ISO dates and no null attributes."""
    fire_time = datetime(2026, 11, 25, 1, tzinfo=UTC)
    data = {"from": datetime(2026, 11, 24, 8, tzinfo=timezone(timedelta(hours=1))), "to": fire_time}
    event = build_event(
        PUNCHES_IMPORTED, data, id="nightly:2026-11-25T01:00:00Z", source="biostar", time=fire_time
    )
    assert event.to_json_bytes() == (
        b'{"specversion":"1.0","id":"nightly:2026-11-25T01:00:00Z","source":"biostar",'
        b'"type":"hrsync.punches.imported","time":"2026-11-25T01:00:00Z","datacontenttype":"application/json",'
        b'"data":{"from":"2026-11-24T08:00:00+01:00","to":"2026-11-25T01:00:00Z"}}'
    )


def test_build_event_accepts_a_data_model() -> None:
    """A data model is accepted as data and dumped with its aliases."""
    model = SyncRequested.model_validate({"scope": "hris", "from": date(2026, 1, 1), "employees": ["E1"]})
    event = build_event(SYNC_REQUESTED, model, id="fixed")
    assert event.id == "fixed"
    assert event.data == {"scope": "hris", "from": "2026-01-01", "employees": ["E1"], "notify": True}


@pytest.mark.parametrize(
    ("locs", "expected"),
    [
        # by name, whatever order they come in
        ([("data", "scope"), ("data", "employee_no"), ("data", "fields")],
         [("data", "employee_no"), ("data", "fields"), ("data", "scope")]),
        # a parent before its fields; list items by index as numbers: 2 before 10
        ([("data", "employees", 10), ("data",), ("data", "employees", 2), ("id",)],
         [("data",), ("data", "employees", 2), ("data", "employees", 10), ("id",)]),
        # an index before a name at the same depth (both orders in, one order out)
        ([("x", "a"), ("x", 0)], [("x", 0), ("x", "a")]),
        ([("x", 0), ("x", "a")], [("x", 0), ("x", "a")]),
    ],
)
def test_errors_are_ordered_by_field_path(locs: list[tuple[str | int, ...]],
                                          expected: list[tuple[str | int, ...]]) -> None:
    """Validation errors come out by field path, independent of the order the validator listed them in."""
    errors = [{"loc": loc, "msg": "m"} for loc in locs]
    assert [e["loc"] for e in in_field_order(errors)] == expected
    assert [e["loc"] for e in in_field_order(reversed(errors))] == expected


@pytest.mark.parametrize(
    ("type_", "data", "options", "reason"),
    [
        pytest.param("hrsync.foo", SYNC_DATA, {}, "unknown type: 'hrsync.foo'", id="unknown-type"),
        pytest.param(
            SYNC_REQUESTED,
            {"scope": "x"},
            {},
            "data.scope: Input should be 'nightly', 'hris' or 'attendance'",
            id="bad-data",
        ),
        pytest.param(
            SYNC_REQUESTED,
            {"scope": "hris", "from_": date(2026, 1, 1)},
            {},
            "data.from_: Extra inputs are not permitted",
            id="python-name",
        ),
        pytest.param(
            PUNCHES_IMPORTED,
            {"from": datetime(2026, 1, 1), "to": datetime(2026, 1, 2, tzinfo=UTC)},
            {},
            "data.from: Input should have timezone info",
            id="naive-data-datetime",
        ),
        pytest.param(
            EMPLOYEE_CHANGED,
            EmployeeChanged(employee_no="E1"),
            {"time": datetime(2026, 1, 1)},
            "time: Input should have timezone info",
            id="naive-time",
        ),
        pytest.param(
            EMPLOYEE_CHANGED,
            {"employee_no": "E1"},
            {"id": ""},
            "id: String should have at least 1 character",
            id="empty-id",
        ),
        pytest.param(
            SYNC_REQUESTED,
            SyncRequested(scope="hris"),
            {"id": "i" * 201},
            "id: String should have at most 200 characters",
            id="long-id",
        ),
        pytest.param(
            SYNC_REQUESTED,
            EmployeeChanged(employee_no="E1"),
            {},
            # by field path: employee_no < fields < scope (pydantic 2.14 lists scope first)
            "data.employee_no: Extra inputs are not permitted; data.fields: Extra inputs are not permitted; "
            "data.scope: field required",
            id="model-of-another-type",
        ),
        pytest.param(
            SYNC_REQUESTED,
            {"scope": "hris", "employees": [object()]},
            {},
            "data: not serializable as JSON: Unable to serialize unknown type: <class 'object'>",
            id="not-serializable",
        ),
        pytest.param(
            SYNC_REQUESTED,
            {"scope": "hris", "employees": ["E" * 64] * 4000},
            {"id": "fixed", "time": datetime(2026, 1, 1, tzinfo=UTC)},
            "too large: 268202 bytes > 262144",
            id="too-large",
        ),
    ],
)
def test_build_event_rejects_what_parse_event_would(
    type_: str, data: Any, options: dict[str, Any], reason: str
) -> None:
    """build_event raises InvalidEvent with the reason parse_event would give for the same event."""
    with pytest.raises(InvalidEvent) as caught:
        build_event(type_, data, **options)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("job", "fire_time", "expected"),
    [
        pytest.param(
            "nightly", datetime(2026, 11, 25, 1, tzinfo=UTC), "nightly:2026-11-25T01:00:00Z", id="utc"
        ),
        pytest.param(
            "nightly",
            datetime(2026, 11, 25, 2, tzinfo=timezone(timedelta(hours=1))),
            "nightly:2026-11-25T01:00:00Z",
            id="converted-to-utc",
        ),
        pytest.param(
            "hris",
            datetime(2026, 3, 29, 0, 30, 0, 250, tzinfo=UTC),
            "hris:2026-03-29T00:30:00.000250Z",
            id="micro",
        ),
    ],
)
def test_sync_event_id_is_deterministic(job: str, fire_time: datetime, expected: str) -> None:
    """The id of a scheduled event is the job and its fire time in UTC with a Z."""
    assert sync_event_id(job, fire_time) == expected
    assert sync_event_id(job, fire_time) == sync_event_id(job, fire_time.astimezone(UTC))


@pytest.mark.parametrize(
    ("job", "fire_time", "message"),
    [
        pytest.param("nightly", datetime(2026, 11, 25, 1), "timezone-aware", id="naive"),
        pytest.param("", datetime(2026, 11, 25, 1, tzinfo=UTC), "job must not be empty", id="empty-job"),
    ],
)
def test_sync_event_id_rejects_ambiguous_input(job: str, fire_time: datetime, message: str) -> None:
    """A naive fire time or an empty job name raises ValueError instead of making an ambiguous id."""
    with pytest.raises(ValueError, match=message):
        sync_event_id(job, fire_time)


def test_constants_match_the_contract() -> None:
    """The event types, size limit and content type are those of DESIGN §5."""
    assert EVENT_TYPES == ("hrsync.sync.requested", "hrsync.employee.changed", "hrsync.punches.imported",
                           "hrsync.period.closed")
    assert set(DATA_MODELS) == set(EVENT_TYPES)
    assert MAX_EVENT_BYTES == 262144
    assert CONTENT_TYPE == "application/cloudevents+json"


def test_committed_schema_is_up_to_date() -> None:
    """docs/events.schema.json equals the generated schema (regenerate with `python -m shared.events.models`)."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == export_schema()


@pytest.mark.parametrize(("body", "model"), VALID)
def test_schema_accepts_valid_events(body: bytes, model: type[Any]) -> None:
    """Every event parse_event accepts also validates against the exported JSON Schema."""
    jsonschema.Draft202012Validator(events_json_schema()).validate(json.loads(body))


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(envelope("hrsync.foo"), id="unknown-type"),
        pytest.param(envelope(data={"scope": "weekly"}), id="bad-scope"),
        pytest.param(envelope(Trace="x"), id="bad-extension-name"),
        pytest.param(envelope(ext=1.5), id="bad-extension-value"),
        pytest.param(without(envelope(), "id"), id="missing-id"),
    ],
)
def test_schema_rejects_invalid_events(document: dict[str, Any]) -> None:
    """Events with an unknown type, bad data or bad extensions fail the exported JSON Schema."""
    assert not jsonschema.Draft202012Validator(events_json_schema()).is_valid(document)


def rejection_reason(body: bytes) -> str | None:
    """The reason parse_event rejects `body` for, None when it accepts it; other exceptions propagate."""
    try:
        parse_event(body)
    except InvalidEvent as exc:
        return exc.reason
    return None


def assert_parses_or_rejects(body: bytes) -> None:
    """Parse `body`; it must either succeed or raise InvalidEvent with a one-line reason of ≤ 300 chars."""
    reason = rejection_reason(body)
    if reason is not None:
        assert 0 < len(reason) <= 300
        assert len(reason.splitlines()) == 1, reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
field_names = st.sampled_from(
    ["scope", "from", "to", "employees", "notify", "employee_no", "fields", "devices", "from_", "extra"]
)
field_values = (
    json_values
    | st.sampled_from(["nightly", "hris", "attendance", "E0042", "E\n1", ""])
    | st.dates().map(date.isoformat)
    | st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()).map(datetime.isoformat)
    | st.lists(st.text(max_size=70) | st.integers(), max_size=3)
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_parse_or_are_rejected(body: bytes) -> None:
    """Any bytes either parse or raise InvalidEvent with a one-line reason, never another exception."""
    assert_parses_or_rejects(body)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_parses_or_is_rejected(value: Any) -> None:
    """Any JSON value either parses or raises InvalidEvent with a one-line reason."""
    assert_parses_or_rejects(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([*EVENT_TYPES, "hrsync.foo"]),
    st.dictionaries(field_names | st.text(max_size=8), field_values, max_size=6) | json_values,
    st.dictionaries(st.text(max_size=22), json_values, max_size=2),
)
def test_valid_envelope_with_random_data_parses_or_is_rejected(
    type_: str, data: Any, extensions: dict[str, Any]
) -> None:
    """A valid envelope around random data and random extra attributes parses or raises InvalidEvent."""
    document = {**extensions, **envelope(type_, data)}
    assert_parses_or_rejects(json.dumps(document).encode())


employee_numbers = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=64)


@st.composite
def valid_data(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A type and valid data for it, with Python dates and datetimes."""
    type_ = draw(st.sampled_from(EVENT_TYPES))
    if type_ == SYNC_REQUESTED:
        first = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
        last = min(first + timedelta(days=draw(st.integers(0, 399))), date(2100, 12, 31))  # DESIGN §5 bounds
        return type_, {
            "scope": draw(st.sampled_from(["nightly", "hris", "attendance"])),
            "from": first,
            "to": last,
            "employees": draw(st.none() | st.lists(employee_numbers, min_size=1, max_size=3)),
            "notify": draw(st.booleans()),
        }
    if type_ == EMPLOYEE_CHANGED:
        return type_, {
            "employee_no": draw(employee_numbers),
            "fields": draw(st.none() | st.lists(st.text(), min_size=1)),
        }
    if type_ == "hrsync.period.closed":
        month = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
        return type_, {"period": month.strftime("%Y-%m"), "version": draw(st.integers(1, 2**31 - 1))}
    start = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 1), timezones=st.just(UTC)))
    return type_, {
        "from": start,
        "to": start + draw(st.timedeltas(timedelta(0), timedelta(days=31))),
        "devices": draw(st.none() | st.lists(st.integers(), min_size=1)),
    }


@settings(max_examples=200, deadline=None)
@given(valid_data())
def test_built_events_round_trip(case: tuple[str, dict[str, Any]]) -> None:
    """Every event build_event makes from valid data parses back to the same envelope and data."""
    type_, data = case
    event = build_event(type_, data)
    parsed = parse_event(event.to_json_bytes())
    assert parsed.envelope == event
    assert parsed.data == DATA_MODELS[type_].model_validate(data)
