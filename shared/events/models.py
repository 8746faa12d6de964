"""Event models of the hrsync event plane (DESIGN §5): CloudEvents 1.0, JSON structured mode.

Pure code, no I/O: `parse_event` turns an AMQP message body into a validated `ParsedEvent` or raises
`InvalidEvent` with a one-line reason meant for the dead-letter header; `build_event` makes an event that
`parse_event` accepts; `events_json_schema` is the contract exported to `docs/events.schema.json`
(regenerate with `python -m shared.events.models > docs/events.schema.json`).

Wire data is validated in pydantic's strict JSON mode: booleans are `true`/`false`, integers are JSON
integers, dates are `YYYY-MM-DD` strings and datetimes ISO 8601 strings with an offset (or `Z`). Validate
wire data through `parse_event`/`build_event`, not the data models directly: they add the checks pydantic
leaves out (e.g. rejecting the Python name `from_` in place of the key `from`).
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, Self, TypeAlias, TypeVar

import pydantic_core
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from shared.config.errors import in_field_order

SYNC_REQUESTED: Final = "hrsync.sync.requested"
EMPLOYEE_CHANGED: Final = "hrsync.employee.changed"
PUNCHES_IMPORTED: Final = "hrsync.punches.imported"
PERIOD_CLOSED: Final = "hrsync.period.closed"

# `source` of the events hrsync publishes itself; the bridge derives an execution's trigger from it.
SCHEDULER_SOURCE = "hrsync/scheduler"
CLI_SOURCE = "hrsync/cli"
MAX_EVENT_BYTES: Final = 256 * 1024
CONTENT_TYPE: Final = "application/cloudevents+json"
DATA_CONTENT_TYPE: Final = "application/json"
SPEC_VERSION: Final = "1.0"

# Bounds (DESIGN §5): an event outside them is invalid, so no date arithmetic downstream can overflow and
# no plan grows with a hostile range.
MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2100
MAX_SYNC_DAYS: Final = 400  # dates from..to inclusive
MAX_PUNCH_WINDOW: Final = timedelta(days=31)
MAX_EMPLOYEES: Final = 5000

_MAX_REASON_CHARS: Final = 300
_EXTENSION_NAME: Final = re.compile(r"[a-z0-9]{1,20}")
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
# Categories that could break a reason across lines or out of UTF-8: controls, surrogates, separators.
_ESCAPED_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})


class InvalidEvent(ValueError):
    """An event that must be rejected; `reason` is one line (≤ 300 chars) naming the offending field.

    `errors` holds the same verdict per field, as (field, message) pairs: the field is a path such as
    `data.employee_no` or `ce-id`, or "" when the message is about the event as a whole.
    """

    def __init__(self, reason: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        self.reason = _one_line(reason)
        self.errors: tuple[tuple[str, str], ...] = tuple(errors) or (_split_reason(reason),)
        super().__init__(self.reason)


# "data.employees[0]: …", "ce-id: …", "type: …": a reason that starts with a field path names that field.
_REASON_FIELD: Final = re.compile(r"(?P<field>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])*): (?P<message>.*)", re.S)


def _split_reason(reason: str) -> tuple[str, str]:
    found = _REASON_FIELD.fullmatch(reason)
    return (found["field"], found["message"]) if found else ("", reason)


def _reject_control_chars(value: str) -> str:
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("must not contain control characters")
    return value


def _check_date(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must lie in the years {MIN_YEAR}-{MAX_YEAR}")
    return value


def _check_instant(value: datetime) -> datetime:
    # Both the wall-clock year as written and the UTC instant: either could be converted downstream.
    _check_date(value.date())
    if value.utcoffset() is not None:
        _check_date(value.astimezone(UTC).date())
    return value


BoundedDate: TypeAlias = Annotated[date, AfterValidator(_check_date)]
"""A date in the years 1900-2100."""
BoundedInstant: TypeAlias = Annotated[AwareDatetime, AfterValidator(_check_instant)]
"""An aware datetime whose local and UTC dates lie in the years 1900-2100."""


EmployeeNo: TypeAlias = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_reject_control_chars)
]
"""An employee number exactly as the HRIS has it: 1-64 characters, no control characters, not stripped."""


class _EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyncRequested(_EventData):
    """Data of `hrsync.sync.requested`: run the chain for `scope`; `from` must not be after `to`."""

    scope: Literal["nightly", "hris", "attendance"]
    from_: BoundedDate | None = Field(default=None, alias="from", description="first day to sync (inclusive)")
    to: BoundedDate | None = Field(default=None, description="last day to sync (inclusive)")
    employees: list[EmployeeNo] | None = Field(
        default=None, min_length=1, max_length=MAX_EMPLOYEES, description="only these employees; omit for everyone"
    )
    notify: bool = Field(default=True, description="send the notification emails at the end")

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        if self.from_ is not None and self.to is not None:
            if self.from_ > self.to:
                raise ValueError("'from' must not be after 'to'")
            check_sync_range(self.from_, self.to)
        return self


def check_sync_range(first: date, last: date) -> None:
    """Raise `ValueError` when `first`..`last` (inclusive) holds more than `MAX_SYNC_DAYS` dates."""
    days = (last - first).days + 1
    if days > MAX_SYNC_DAYS:
        raise ValueError(f"the range 'from'..'to' holds {days} days, more than {MAX_SYNC_DAYS}")


# A sync request without dates covers the last two local days (late logs of the day before yesterday too).
NIGHTLY_LOOKBACK_DAYS: Final = 2


def sync_dates(data: SyncRequested, today: date) -> tuple[date, date]:
    """The dates (inclusive) a sync request covers, open ends resolved against `today` (the event's day in the
    company's zone); `InvalidEvent` naming `data` when they hold more than `MAX_SYNC_DAYS` dates."""
    yesterday = today - timedelta(days=1)
    first = data.from_ or (data.to or yesterday) - timedelta(days=NIGHTLY_LOOKBACK_DAYS - 1)
    last = data.to or max(first, yesterday)
    try:
        check_sync_range(first, last)
    except ValueError as exc:
        raise InvalidEvent(f"data: {exc} (resolved against the event's day {today})") from None
    return first, last


class EmployeeChanged(_EventData):
    """Data of `hrsync.employee.changed`: one employee changed in the HRIS."""

    employee_no: EmployeeNo
    fields: list[str] | None = Field(
        default=None, min_length=1, description="names of the changed fields; omit when unknown"
    )


class PunchesImported(_EventData):
    """Data of `hrsync.punches.imported`: punches in [`from`, `to`] arrived; both aware, `from` ≤ `to`."""

    from_: BoundedInstant = Field(alias="from", description="start of the affected time range")
    to: BoundedInstant = Field(description="end of the affected time range")
    devices: list[int] | None = Field(
        default=None, min_length=1, description="BioStar device ids; omit for all devices"
    )

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        if self.from_ > self.to:
            raise ValueError("'from' must not be after 'to'")
        if self.to - self.from_ > MAX_PUNCH_WINDOW:
            raise ValueError(f"the window 'from'..'to' is longer than {MAX_PUNCH_WINDOW.days} days")
        return self


def _check_period(value: str) -> str:
    if not MIN_YEAR <= int(value[:4]) <= MAX_YEAR or not 1 <= int(value[5:]) <= 12:
        raise ValueError(f"must be a month YYYY-MM in the years {MIN_YEAR}-{MAX_YEAR}")
    return value


class PeriodClosed(_EventData):
    """Data of `hrsync.period.closed`: version `version` of the month `period` was closed (launches its export)."""

    period: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}$"), AfterValidator(_check_period)] = Field(
        description="the month, YYYY-MM")
    version: int = Field(ge=1, le=_INT32_MAX, description="the close's version: 1, then 2 after a reopen…")


EventData: TypeAlias = SyncRequested | EmployeeChanged | PunchesImported | PeriodClosed

DATA_MODELS: Final[Mapping[str, type[EventData]]] = MappingProxyType(
    {SYNC_REQUESTED: SyncRequested, EMPLOYEE_CHANGED: EmployeeChanged, PUNCHES_IMPORTED: PunchesImported,
     PERIOD_CLOSED: PeriodClosed}
)
EVENT_TYPES: Final[tuple[str, ...]] = tuple(DATA_MODELS)

ExtensionValue: TypeAlias = str | int | bool


class Event(BaseModel):
    """A CloudEvents 1.0 envelope; `data` is the raw JSON value (`ParsedEvent.data` is the typed one).

    Attributes other than the declared ones are CloudEvents extension attributes: their names are 1-20
    lowercase letters or digits and their values strings, booleans or 32-bit integers (`extensions`).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200, description="idempotency key: processed once per id")
    source: str = Field(min_length=1, description="who sent the event (URI reference)")
    type: str = Field(min_length=1, description="one of the hrsync event types; also the routing key")
    time: BoundedInstant | None = None
    datacontenttype: Literal["application/json"] | None = None
    subject: str | None = None
    data: Any

    @model_validator(mode="after")
    def _check_extensions(self) -> Self:
        for name, value in (self.model_extra or {}).items():
            if not _EXTENSION_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r}: unknown attribute (extension names are 1-20 lowercase letters or digits)"
                )
            if not _is_extension_value(value):
                raise ValueError(f"{name}: extension value must be a string, a boolean or a 32-bit integer")
        return self

    @property
    def extensions(self) -> dict[str, ExtensionValue]:
        """The extension attributes, by name."""
        return dict(self.model_extra or {})

    def to_json_bytes(self) -> bytes:
        """The structured-mode body: compact UTF-8 JSON, absent optional attributes left out."""
        return self.model_dump_json(exclude_none=True).encode()


def _is_extension_value(value: object) -> bool:
    if isinstance(value, bool | str):
        return True
    return isinstance(value, int) and _INT32_MIN <= value <= _INT32_MAX


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A valid event: its envelope, its data as the model of its type, and its structured-mode body."""

    envelope: Event
    data: EventData
    body: bytes  # the event as structured-mode JSON (what the inbox stores, whatever mode it came in)

    @property
    def id(self) -> str:
        """The event id (the idempotency key)."""
        return self.envelope.id

    @property
    def type(self) -> str:
        """The event type, one of `EVENT_TYPES`."""
        return self.envelope.type


def event_day(event: ParsedEvent, now: datetime, zone: tzinfo) -> date:
    """The event's day in the company's `zone`: the day of its `time`, else of `now` (when it arrived)."""
    return (event.envelope.time or now).astimezone(zone).date()


def check_admissible(event: ParsedEvent, now: datetime, zone: tzinfo) -> None:
    """The checks of a valid event that depend on when it arrives (an open range resolved against its day);
    `InvalidEvent` with the reason the bridge gives. Whoever takes events in runs this after `parse_event`."""
    if isinstance(event.data, SyncRequested):
        sync_dates(event.data, event_day(event, now, zone))


def parse_event(body: bytes) -> ParsedEvent:
    """Validate an AMQP message body; raise `InvalidEvent` (and nothing else) if it must be rejected.

    Checked in this order: size (`MAX_EVENT_BYTES`), UTF-8, JSON object, envelope, type, data.
    """
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"too large: {len(body)} bytes > {MAX_EVENT_BYTES}")
    document = load_json(body)
    if not isinstance(document, dict):
        raise InvalidEvent(f"not a JSON object: {_json_kind(document)}")
    envelope = _validate(Event, body, where=())
    model = DATA_MODELS.get(envelope.type)
    if model is None:
        raise InvalidEvent(f"unknown type: {envelope.type!r}", [("type", f"unknown type: {envelope.type!r}")])
    return ParsedEvent(envelope, _validate_data(model, envelope.data), body)


def load_json(body: bytes, where: str = "") -> Any:
    """Strict UTF-8 JSON (no NaN/Infinity) → a value; raise `InvalidEvent` prefixed with `where` (e.g. `data`)."""
    prefix = f"{where}: " if where else ""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent(f"{prefix}not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"{prefix}not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidEvent(f"{prefix}not JSON: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity; integers over Python's digit limit (advice after "; " dropped)
        raise InvalidEvent(f"{prefix}not JSON: {str(exc).partition('; ')[0]}") from None


def build_event(
    type_: str,
    data: Mapping[str, Any] | BaseModel,
    *,
    id: str | None = None,
    source: str = "hrsync",
    time: datetime | None = None,
) -> Event:
    """A new event that `parse_event` accepts; raise `InvalidEvent` if the inputs would make an invalid one.

    `data` is a mapping in wire form (key `"from"`, dates may be `date`/`datetime` objects) or a data
    model. The event gets a uuid4 `id` when none is given and `time` = now (UTC) when none is given;
    its data is normalized (defaults filled in, absent optional fields left out).
    """
    model = DATA_MODELS.get(type_)
    if model is None:
        raise InvalidEvent(f"unknown type: {type_!r}")
    wire_data = data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else data
    typed = _validate_data(model, wire_data)
    envelope = {
        "specversion": SPEC_VERSION,
        "id": str(uuid.uuid4()) if id is None else id,
        "source": source,
        "type": type_,
        "time": datetime.now(UTC) if time is None else time,
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": typed.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return parse_event(_to_json(envelope, "event")).envelope


def sync_event_id(job: str, fire_time_utc: datetime) -> str:
    """The deterministic id of a scheduled event: `<job>:<fire time in UTC, ISO 8601 with Z>`.

    `fire_time_utc` must be aware (any zone; it is converted to UTC); microseconds appear only when set:
    `sync_event_id("nightly", datetime(2026, 11, 25, 1, tzinfo=UTC))` → `"nightly:2026-11-25T01:00:00Z"`.
    """
    if not job:
        raise ValueError("job must not be empty")
    if fire_time_utc.utcoffset() is None:
        raise ValueError("fire_time_utc must be timezone-aware")
    return f"{job}:{fire_time_utc.astimezone(UTC).replace(tzinfo=None).isoformat()}Z"


def events_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of an hrsync event: the envelope plus, per `type`, the schema of its `data`.

    Rules JSON Schema cannot state (`from` ≤ `to`, no control characters in employee numbers) are in the
    descriptions.
    """
    ref_template = "#/$defs/{model}"
    schema = Event.model_json_schema(ref_template=ref_template)
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    branches = []
    for type_, model in DATA_MODELS.items():
        data_schema = model.model_json_schema(ref_template=ref_template)
        defs.update(data_schema.pop("$defs", {}))
        defs[model.__name__] = data_schema
        data_ref = {"$ref": ref_template.format(model=model.__name__)}
        branches.append(
            {"properties": {"type": {"const": type_}, "data": data_ref}, "required": ["type", "data"]}
        )
    schema.update(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "hrsync event",
            "description": (
                f"CloudEvents {SPEC_VERSION} in JSON structured mode (content type {CONTENT_TYPE}), at most "
                f"{MAX_EVENT_BYTES} bytes. Other attributes are extension attributes."
            ),
            "oneOf": branches,
            "propertyNames": {"pattern": f"^{_EXTENSION_NAME.pattern}$"},
            "additionalProperties": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "boolean"},
                    {"type": "integer", "minimum": _INT32_MIN, "maximum": _INT32_MAX},
                ]
            },
        }
    )
    return schema


def export_schema() -> str:
    """The text of `docs/events.schema.json`: `events_json_schema()` indented, keys sorted, final newline."""
    return json.dumps(events_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_Model = TypeVar("_Model", bound=BaseModel)


def _validate(model: type[_Model], json_text: str | bytes, where: tuple[str, ...]) -> _Model:
    try:
        return model.model_validate_json(json_text, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        ordered = in_field_order(errors)
        raise InvalidEvent("; ".join(_describe(error, where) for error in ordered),
                           [_split_reason(_describe(error, where)) for error in ordered]) from exc


def _validate_data(model: type[_Model], value: object) -> _Model:
    if isinstance(value, Mapping):
        for name, field in model.model_fields.items():
            # pydantic's JSON mode silently ignores a field's Python name ("from_") instead of forbidding it.
            if field.alias not in (None, name) and name in value:
                raise InvalidEvent(f"data.{name}: Extra inputs are not permitted")
    return _validate(model, _to_json(value, "data"), where=("data",))


def _describe(error: pydantic_core.ErrorDetails, where: tuple[str, ...]) -> str:
    kind = error["type"]
    if kind == "json_invalid":  # pydantic's parser is stricter than json's, e.g. on lone surrogates
        return f"not JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    message = "field required" if kind == "missing" else error["msg"].removeprefix("Value error, ")
    path = _field_path((*where, *error["loc"]))
    return f"{path}: {message}" if path else message


def _field_path(loc: tuple[str | int, ...]) -> str:
    """`("data", "employees", 0)` → `data.employees[0]`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _to_json(value: object, what: str) -> bytes:
    try:
        return pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidEvent(f"{what}: not serializable as JSON: {exc}") from exc


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"


def _one_line(text: str) -> str:
    cleaned = "".join(
        ascii(char)[1:-1] if unicodedata.category(char) in _ESCAPED_CATEGORIES else char
        for char in text[: 2 * _MAX_REASON_CHARS]
    )
    return cleaned if len(cleaned) <= _MAX_REASON_CHARS else cleaned[: _MAX_REASON_CHARS - 1] + "…"


if __name__ == "__main__":
    sys.stdout.write(export_schema())
