"""docs/asyncapi.yaml: current with the event models, the document `/asyncapi.json` serves, and a valid
AsyncAPI 3.0.0 document (checked offline against the vendored JSON Schema, see tests/unit/contracts/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from intake.asyncapi import asyncapi_document, export_yaml
from shared.events.models import EVENT_TYPES

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "contracts" / "asyncapi-3.0.0.schema.json").read_text())


def problems(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def test_the_file_is_current() -> None:
    """docs/asyncapi.yaml is what the models generate now (`python -m intake.asyncapi > docs/asyncapi.yaml`)."""
    assert (REPO / "docs" / "asyncapi.yaml").read_text() == export_yaml()


def test_the_file_is_the_served_document() -> None:
    """The YAML file and the JSON served at /asyncapi.json are one document."""
    assert yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text()) == asyncapi_document()


def test_it_is_a_valid_asyncapi_3_document() -> None:
    """No error against the AsyncAPI 3.0.0 JSON Schema (bindings included)."""
    assert problems(asyncapi_document()) == []


@pytest.mark.parametrize("spoil", [
    pytest.param(lambda d: d["info"].pop("version"), id="no-info-version"),
    pytest.param(lambda d: d["channels"]["events"].update(address=7), id="address-not-a-string"),
    pytest.param(lambda d: d["operations"]["postEvents"].update(action="publish"), id="asyncapi-2-action"),
    pytest.param(lambda d: d["channels"]["events"]["bindings"]["amqp"].update(**{"is": "exchange-ish"}),
                 id="bad-amqp-binding"),
])
def test_the_validation_would_see_a_broken_document(spoil: Any) -> None:
    """The schema check is not vacuous: a spoiled copy of the document fails it."""
    document = copy.deepcopy(asyncapi_document())
    spoil(document)
    assert problems(document) != []


def test_both_ways_in_are_described() -> None:
    """A channel for the exchange (AMQP binding, routing key = type) and one for POST /events (HTTP binding),
    with a message per event type carrying its JSON Schema."""
    document = asyncapi_document()
    events, http = document["channels"]["events"], document["channels"]["httpEvents"]
    assert events["address"] == "hrsync.events"
    assert events["bindings"]["amqp"]["is"] == "routingKey"
    assert events["bindings"]["amqp"]["exchange"] == {"name": "hrsync.events", "type": "topic", "durable": True,
                                                      "autoDelete": False, "vhost": "/"}
    assert http["address"] == "/events"
    assert document["operations"]["postEvents"]["bindings"]["http"]["method"] == "POST"
    messages = document["components"]["messages"]
    routed = {}
    for operation in document["operations"].values():
        if "amqp" in operation.get("bindings", {}):
            [ref] = operation["messages"]
            routed[messages[ref["$ref"].rsplit("/", 1)[1]]["title"]] = operation["bindings"]["amqp"]["cc"]
    assert routed == {event_type: [event_type] for event_type in EVENT_TYPES}  # routing key = the type
    schemas = document["components"]["schemas"]
    for message in messages.values():
        target = message["payload"]["$ref"].rsplit("/", 1)[1]
        assert target in schemas
    assert set(http["messages"]) == {*events["messages"], "batch"}
    assert schemas["EventBatch"]["maxItems"] == 100


def test_the_payload_schemas_accept_and_refuse_like_the_models() -> None:
    """An event valid for the models validates against its message's payload schema; a bad one does not."""
    document = asyncapi_document()
    # Resolve `#/components/...` against the document itself.
    resolver_root = {**document}
    schema = {"$ref": "#/components/schemas/SyncRequestedEvent", **{"components": resolver_root["components"]}}
    validator = jsonschema.Draft7Validator(schema)
    good = {"specversion": "1.0", "id": "a", "source": "payroll", "type": "hrsync.sync.requested",
            "data": {"scope": "hris"}}
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({**good, "data": {"scope": "weekly"}})) != []
    assert list(validator.iter_errors({**good, "type": "hrsync.employee.changed"})) != []
