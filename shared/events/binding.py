"""The CloudEvents RabbitMQ protocol binding (DESIGN §5): an AMQP message in either content mode → a `ParsedEvent`.

- **structured**: `content_type` is `application/cloudevents+json` (or the message has no `ce-` header at all,
  as older publishers send it): the body is the whole event as JSON;
- **binary**: attributes in `ce-` headers (names case-insensitive, values strings), `datacontenttype` in
  `content_type`, the data alone as the body — what the official SDKs' `to_binary` sends.

Both modes go through one validation path: a binary message is first turned into the structured document it
stands for, then validated by `shared.events.models.parse_event` exactly like a structured body, so the same event
gets the same verdict and the same reasons either way. The size limit covers the headers and the body.
Pure code, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from shared.events.models import MAX_EVENT_BYTES, InvalidEvent, ParsedEvent, load_json, parse_event

CE_PREFIX: Final = "ce-"
STRUCTURED_MEDIA_PREFIX: Final = "application/cloudevents"
JSON_MEDIA_TYPE: Final = "application/json"
# Attributes a binary message cannot carry in a header: the data is the body, its type is content_type.
_NOT_HEADERS: Final = frozenset({"data", "data_base64"})


def parse_message(body: bytes, content_type: str | None = None,
                  headers: Mapping[str, Any] | None = None) -> ParsedEvent:
    """Validate one AMQP message of either content mode; raise `InvalidEvent` (and nothing else) to reject it."""
    headers = headers or {}
    size = len(body) + _headers_size(headers)
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(f"too large: {size} bytes > {MAX_EVENT_BYTES}")
    if is_binary(content_type, headers):
        return parse_event(structured_body(body, content_type, headers))
    return parse_event(body)


def is_binary(content_type: str | None, headers: Mapping[str, Any]) -> bool:
    """Binary mode: not a CloudEvents media type, and at least one `ce-` header."""
    if (content_type or "").strip().lower().startswith(STRUCTURED_MEDIA_PREFIX):
        return False
    return any(isinstance(name, str) and name.lower().startswith(CE_PREFIX) for name in headers)


def structured_body(body: bytes, content_type: str | None, headers: Mapping[str, Any]) -> bytes:
    """The structured-mode JSON document that a binary-mode message stands for (not validated yet)."""
    document: dict[str, Any] = {}
    for name, value in headers.items():
        if not (isinstance(name, str) and name.lower().startswith(CE_PREFIX)):
            continue  # other headers (x-delivery-count, tracing, …) are not CloudEvents attributes
        attribute = name[len(CE_PREFIX):].lower()
        if attribute in _NOT_HEADERS:
            raise InvalidEvent(f"{name}: not an attribute in binary mode (the data is the message body)")
        if attribute in document:
            raise InvalidEvent(f"{name}: attribute {attribute!r} given twice")
        document[attribute] = _header_text(name, value)
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        document["datacontenttype"] = JSON_MEDIA_TYPE if media_type == JSON_MEDIA_TYPE else content_type
    document["data"] = load_json(body, "data")
    return json.dumps(document, ensure_ascii=False).encode()


def _header_text(name: str, value: object) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent(f"{name}: not valid UTF-8") from None
    if not isinstance(value, str):
        raise InvalidEvent(f"{name}: header value must be a string, not {type(value).__name__}")
    return value


def _headers_size(headers: Mapping[str, Any]) -> int:
    """Bytes the headers take, roughly as on the wire (names and values as UTF-8 text)."""
    return sum(len(str(name).encode()) + len(value if isinstance(value, bytes) else str(value).encode())
               for name, value in headers.items())
