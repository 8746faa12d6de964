"""The AsyncAPI 3 document of both ways in (DESIGN §12), generated from the event models.

`asyncapi_document()` is what `GET /asyncapi.json` serves; `docs/asyncapi.yaml` is the same document as YAML
(regenerate with `python -m intake.asyncapi > docs/asyncapi.yaml`; a test keeps the file in step). The event
schemas are those of `docs/events.schema.json` (`shared.events.models.events_json_schema`), moved under
`components/schemas`.
"""

from __future__ import annotations

import sys
from typing import Any, Final

import yaml

from intake.http_binding import BATCH_CONTENT_TYPE, MAX_BATCH
from shared.events.bus import EVENTS_EXCHANGE
from shared.events.models import CONTENT_TYPE, DATA_MODELS, MAX_EVENT_BYTES, events_json_schema

VERSION: Final = "1.0.0"
BINDING_VERSION: Final = "0.3.0"
_SCHEMAS: Final = "#/components/schemas/"
_WEBHOOK_HEADERS: Final = {
    "type": "object",
    "required": ["webhook-id", "webhook-timestamp", "webhook-signature"],
    "properties": {
        "webhook-id": {"type": "string", "description": "unique per delivery; a retry sends the same one"},
        "webhook-timestamp": {"type": "string", "pattern": "^[0-9]+$",
                              "description": "UNIX seconds; more than 5 minutes away is refused (401)"},
        "webhook-signature": {"type": "string", "description": "space-separated `v1,<base64 HMAC-SHA256 of "
                              "id.timestamp.body>` with a secret of the sending source"},
    },
}


def message_name(event_type: str) -> str:
    """`hrsync.sync.requested` → `syncRequested`."""
    first, *rest = event_type.removeprefix("hrsync.").split(".")
    return first + "".join(part.capitalize() for part in rest)


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document: the exchange `hrsync.events` (AMQP) and `POST /events` (HTTP)."""
    schemas = _event_schemas()
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event_type, model in DATA_MODELS.items():
        name = message_name(event_type)
        schemas[f"{model.__name__}Event"] = {
            "description": f"An `{event_type}` event.",
            "allOf": [{"$ref": f"{_SCHEMAS}Event"},
                      {"type": "object", "required": ["type", "data"],
                       "properties": {"type": {"const": event_type}, "data": {"$ref": _SCHEMAS + model.__name__}}}],
        }
        messages[name] = {
            "name": name, "title": event_type, "contentType": CONTENT_TYPE,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "payload": {"$ref": f"{_SCHEMAS}{model.__name__}Event"},
            "bindings": {"amqp": {"messageType": event_type, "bindingVersion": BINDING_VERSION},
                         "http": {"headers": _WEBHOOK_HEADERS, "bindingVersion": BINDING_VERSION}},
        }
        operations[f"publish{name[0].upper()}{name[1:]}"] = {
            "action": "receive",
            "title": f"Publish {event_type}",
            "summary": f"Publish to {EVENTS_EXCHANGE} with routing key {event_type} (confirms, mandatory).",
            "channel": {"$ref": "#/channels/events"},
            "messages": [{"$ref": f"#/channels/events/messages/{name}"}],
            "bindings": {"amqp": {"cc": [event_type], "deliveryMode": 2, "mandatory": True,
                                  "bindingVersion": BINDING_VERSION}},
        }
    schemas["EventBatch"] = {
        "description": f"A batch ({BATCH_CONTENT_TYPE}): 1 to {MAX_BATCH} structured events; one invalid "
                       "event refuses the whole batch.",
        "type": "array", "minItems": 1, "maxItems": MAX_BATCH,
        "items": {"oneOf": [{"$ref": f"{_SCHEMAS}{model.__name__}Event"} for model in DATA_MODELS.values()]},
    }
    messages["batch"] = {
        "name": "batch", "title": "a batch of events", "contentType": BATCH_CONTENT_TYPE,
        "payload": {"$ref": f"{_SCHEMAS}EventBatch"},
        "bindings": {"http": {"headers": _WEBHOOK_HEADERS, "bindingVersion": BINDING_VERSION}},
    }
    amqp_messages = {name: {"$ref": f"#/components/messages/{name}"} for name in messages if name != "batch"}
    http_messages = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    operations["postEvents"] = {
        "action": "receive",
        "title": "POST /events",
        "description": (
            "One CloudEvent in structured mode (`application/cloudevents+json`) or binary mode (`ce-` headers, "
            f"the data as the body), or a batch (`{BATCH_CONTENT_TYPE}`), signed as Standard Webhooks define it. "
            "Answers: 202 once RabbitMQ confirmed every event (a duplicate id too: it is processed once); 400 an "
            "invalid event or a batch of 0 or more than 100; 401 a bad or missing signature or a timestamp more "
            "than 5 minutes away; 403 a `source` other than the signing source's name or a type it may not "
            f"send; 413 a body over {MAX_EVENT_BYTES} bytes; 429 with Retry-After over the source's rate or while "
            "RabbitMQ blocks publishers; 503 when the broker is unreachable. Errors are RFC 9457 problem "
            "documents (`application/problem+json`) with `errors: [{field, message}]`."),
        "channel": {"$ref": "#/channels/httpEvents"},
        "messages": [{"$ref": f"#/channels/httpEvents/messages/{name}"} for name in http_messages],
        "bindings": {"http": {"method": "POST", "bindingVersion": BINDING_VERSION}},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "hrsync events",
            "version": VERSION,
            "description": ("The ways into hrsync: CloudEvents 1.0 on the RabbitMQ exchange `hrsync.events`, "
                            "or over HTTP through `hrsync intake`. Either way the same event is validated by "
                            "the same rules and processed once per `id`."),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "rabbitmq": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0.9.1",
                         "description": "The company's RabbitMQ (HRSYNC_EVENTS_URL)."},
            "intake": {"host": "127.0.0.1:8081", "protocol": "http",
                       "description": "`hrsync intake` (HTTPS, or behind a TLS proxy, when it listens beyond "
                                      "loopback)."},
        },
        "channels": {
            "events": {
                "address": EVENTS_EXCHANGE,
                "title": "The event exchange",
                "description": "Topic exchange, durable; one event per message, routing key = the event's "
                               "`type`, persistent, published with confirms and `mandatory`.",
                "servers": [{"$ref": "#/servers/rabbitmq"}],
                "messages": amqp_messages,
                "bindings": {"amqp": {"is": "routingKey", "bindingVersion": BINDING_VERSION,
                                      "exchange": {"name": EVENTS_EXCHANGE, "type": "topic", "durable": True,
                                                   "autoDelete": False, "vhost": "/"}}},
            },
            "httpEvents": {
                "address": "/events",
                "title": "POST /events",
                "description": "The intake publishes each event it accepts to `hrsync.events` as above.",
                "servers": [{"$ref": "#/servers/intake"}],
                "messages": http_messages,
            },
        },
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _event_schemas() -> dict[str, Any]:
    """The schemas of `docs/events.schema.json`: the event (`Event`) and its `$defs`, referenced from here."""
    event = events_json_schema()
    event.pop("$schema", None)
    schemas: dict[str, Any] = {name: _moved(schema) for name, schema in event.pop("$defs", {}).items()}
    schemas["Event"] = _moved(event)
    return schemas


def _moved(value: Any) -> Any:
    """`value` with every `#/$defs/X` reference pointing to `#/components/schemas/X`."""
    if isinstance(value, dict):
        return {key: (item.replace("#/$defs/", _SCHEMAS) if key == "$ref" and isinstance(item, str) else _moved(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_moved(item) for item in value]
    return value


def export_yaml() -> str:
    """The text of `docs/asyncapi.yaml`."""
    header = "# Generated by `python -m intake.asyncapi > docs/asyncapi.yaml`; served at GET /asyncapi.json.\n"
    return header + yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=110)


if __name__ == "__main__":
    sys.stdout.write(export_yaml())
