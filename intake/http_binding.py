"""The CloudEvents HTTP protocol binding: a request body and its headers → validated events (DESIGN §12).

- **structured** (`application/cloudevents+json`): the body is the event;
- **binary**: the attributes are `ce-` headers (percent-decoded, as the HTTP binding writes them), the
  content type is `datacontenttype` and the body is the data;
- **batch** (`application/cloudevents-batch+json`): a JSON array of 1 to `MAX_BATCH` structured events.

Each event goes through the bridge's own path (`shared.events.binding.parse_message`, then
`check_admissible`), so it gets the bridge's verdict and reason. A request without `ce-` headers is read as
structured whatever its content type, as the AMQP binding reads a message. Pure code, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any, Final
from urllib.parse import unquote

from shared.events.binding import CE_PREFIX, parse_message
from shared.events.models import CONTENT_TYPE, InvalidEvent, ParsedEvent, check_admissible, load_json

BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json"
MAX_BATCH: Final = 100


class Rejected(Exception):
    """Events that cannot be taken: `detail` is the bridge's reason (one line; in a batch prefixed with the
    event's index), `errors` the (field, message) pairs, the field a path from the request's body."""

    def __init__(self, detail: str, errors: tuple[tuple[str, str], ...]) -> None:
        self.detail, self.errors = detail, errors
        super().__init__(detail)

    @classmethod
    def of(cls, invalid: InvalidEvent, index: int | None = None) -> Rejected:
        """The refusal of one event (of the batch's event `index`)."""
        if index is None:
            return cls(invalid.reason, tuple((field or "body", message) for field, message in invalid.errors))
        return cls(f"event [{index}]: {invalid.reason}",
                   tuple((f"[{index}].{field}" if field else f"[{index}]", message)
                         for field, message in invalid.errors))


def media_type(content_type: str | None) -> str:
    """`Application/CloudEvents+JSON; charset=utf-8` → `application/cloudevents+json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_batch(content_type: str | None) -> bool:
    """Whether the request is a batch (by its content type)."""
    return media_type(content_type) == BATCH_CONTENT_TYPE


def batch_size_problem(body: bytes) -> str | None:
    """Why a batch body holds a wrong number of events (empty, over `MAX_BATCH`), or None. A body that is no
    JSON array is left to the validation, which comes after the signature."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, list):
        return None
    if not document:
        return "an empty batch: send 1 to 100 events"
    if len(document) > MAX_BATCH:
        return f"{len(document)} events in one batch, more than {MAX_BATCH}"
    return None


def ce_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The `ce-` headers (names lower-case), values percent-decoded as the HTTP binding encodes them."""
    return {name.lower(): unquote(value) for name, value in headers.items() if name.lower().startswith(CE_PREFIX)}


def read_events(body: bytes, content_type: str | None, headers: Mapping[str, str], now: datetime,
                zone: tzinfo) -> list[ParsedEvent]:
    """The request's events, each valid as the bridge would judge it; `Rejected` naming every bad field
    (the first bad event's, for a batch, prefixed with its index: `[3].data.employee_no`)."""
    if is_batch(content_type):
        return _read_batch(body, now, zone)
    try:
        event = parse_message(body, content_type, ce_headers(headers))
        check_admissible(event, now, zone)
    except InvalidEvent as invalid:
        raise Rejected.of(invalid) from None
    return [event]


def _read_batch(body: bytes, now: datetime, zone: tzinfo) -> list[ParsedEvent]:
    try:
        document = load_json(body)
    except InvalidEvent as invalid:
        raise Rejected.of(invalid) from None
    if not isinstance(document, list):
        message = "a batch is a JSON array of structured events"
        raise Rejected(message, (("body", message),))
    events = []
    for index, element in enumerate(document):
        try:
            event = parse_message(_structured(element), CONTENT_TYPE)
            check_admissible(event, now, zone)
        except InvalidEvent as invalid:
            raise Rejected.of(invalid, index) from None
        events.append(event)
    return events


def _structured(element: Any) -> bytes:
    """One event of a batch as the structured body an AMQP producer would send."""
    return json.dumps(element, ensure_ascii=False, separators=(",", ":")).encode()
