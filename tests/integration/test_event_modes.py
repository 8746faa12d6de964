"""Events as other systems send them, on the real stack: the official CloudEvents SDK in both content modes,
and valid-looking hostile events that must be dead-lettered with a reason while the bridge keeps consuming."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from cloudevents.core.bindings import rabbitmq
from cloudevents.core.v1.event import CloudEvent

from operations import executions as operations
from shared.events.bus import DEAD_QUEUE, REASON_HEADER, pika_url
from shared.events.dead_letters import REPLAYS_HEADER, list_dead_letters
from shared.events.inbox import inbox_entry
from shared.runtime.runner import run_async
from tests.integration.hris_fixtures import PgHris
from tests.integration.smtp_fixtures import SmtpServer
from tests.integration.stack_fixtures import Stack, event_body, running_stack, take_dead_letters

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SYNC = "hrsync.sync.requested"


@pytest.fixture
def stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer,
          hrsync_env: Any) -> Iterator[Stack]:
    """HRIS rows, BioStar logs, a gevent worker and a bridge, all pointed at this test's databases."""
    with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env) as rig:
        yield rig


def sdk_event(event_id: str, data: dict[str, Any], type_: str = SYNC) -> CloudEvent:
    """An event made with the official SDK, as an integrating system would."""
    return CloudEvent(attributes={"type": type_, "source": "/payroll", "id": event_id, "specversion": "1.0",
                                  "datacontenttype": "application/json", "tenant": "north"}, data=data)


def publish_message(stack: Stack, message: rabbitmq.RabbitMQMessage, routing_key: str = SYNC) -> None:
    """Publish an SDK message with plain pika: confirms, mandatory, persistent, headers as the SDK made them."""
    connection = pika.BlockingConnection(pika.URLParameters(pika_url(stack.amqp_url)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("hrsync.events", routing_key, message.body, pika.BasicProperties(
            content_type=message.content_type, headers=dict(message.headers), delivery_mode=2), mandatory=True)
    finally:
        connection.close()


def dead_letters(stack: Stack, *event_ids: str) -> list[tuple[Any, bytes]]:
    """(properties, body) of every dead letter the bridge moved into the app table, taken off it; first waits
    (up to 30 s) until the letters of `event_ids` are among them."""
    found: list[tuple[Any, bytes]] = []
    deadline = time.monotonic() + 30
    while True:
        found += [(letter.properties, letter.body) for letter in take_dead_letters()]
        ids = {str(p.message_id or (p.headers or {}).get("ce-id")) for p, _ in found}
        if set(event_ids) <= ids or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def reason_of(letters: list[tuple[Any, bytes]], event_id: str) -> str:
    """The dead-letter reason of the message whose id (message id or `ce-id`) is `event_id`."""
    for properties, body in letters:
        headers = properties.headers or {}
        if event_id in (properties.message_id, headers.get("ce-id")) or event_id.encode() in body:
            return str(headers[REASON_HEADER])
    raise AssertionError(f"{event_id} is not among the dead letters: {[p.headers for p, _ in letters]}")


def test_sdk_events_in_both_content_modes(stack: Stack) -> None:
    """SDK events run in both modes; one invalid event gets one reason in both; a binary repeat of an id is a
    duplicate; a binary dead letter keeps its mode and is republished by `dlq replay` exactly as it came."""
    structured_id, binary_id = f"{stack.prefix}-structured", f"{stack.prefix}-binary"
    publish_message(stack, rabbitmq.to_structured_event(sdk_event(structured_id, {"scope": "hris"})))
    publish_message(stack, rabbitmq.to_binary_event(sdk_event(binary_id, {"scope": "hris"})))
    assert stack.wait_for_execution(structured_id)["status"] == "succeeded"
    assert stack.wait_for_execution(binary_id)["status"] == "succeeded"
    stored = run_async(inbox_entry(binary_id))
    assert stored is not None
    assert json.loads(stored["body"]) == {  # the inbox keeps the structured form of a binary event
        "specversion": "1.0", "id": binary_id, "source": "/payroll", "type": SYNC, "tenant": "north",
        "datacontenttype": "application/json", "time": json.loads(stored["body"])["time"],
        "data": {"scope": "hris"}}

    # The same id again, now in binary mode: one execution, whatever the mode.
    publish_message(stack, rabbitmq.to_binary_event(sdk_event(structured_id, {"scope": "nightly"})))
    bad = {"scope": "weekly"}
    publish_message(stack, rabbitmq.to_structured_event(sdk_event(f"{stack.prefix}-bad-s", bad)))
    publish_message(stack, rabbitmq.to_binary_event(sdk_event(f"{stack.prefix}-bad-b", bad)))
    marker = stack.publish_event(SYNC, {"scope": "hris"})
    assert stack.wait_for_execution(marker)["status"] == "succeeded"  # the bridge handled all before it
    assert len(stack.executions_of(structured_id)) == 1

    letters = dead_letters(stack, f"{stack.prefix}-bad-s", f"{stack.prefix}-bad-b")
    structured_reason = reason_of(letters, f"{stack.prefix}-bad-s")
    assert "data.scope" in structured_reason
    assert reason_of(letters, f"{stack.prefix}-bad-b") == structured_reason
    binary_letter = next(p for p, _ in letters if (p.headers or {}).get("ce-id") == f"{stack.prefix}-bad-b")
    assert binary_letter.content_type == "application/json"  # kept as it came: binary mode
    assert json.loads(next(b for p, b in letters if p is binary_letter)) == bad

    # Put them back and replay the binary one: it goes out as it came and is dead-lettered again.
    with pika.BlockingConnection(pika.URLParameters(pika_url(stack.amqp_url))) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        for properties, body in letters:
            channel.basic_publish("", DEAD_QUEUE, body, properties, mandatory=True)
    wanted = f"{stack.prefix}-bad-b"
    while not any(letter.event_id == wanted for letter in run_async(list_dead_letters())):
        time.sleep(0.2)  # the bridge moves them into the table again
    outcome = operations.replay_dead_letters([wanted], reason="test", actor="test", via="cli")
    assert [letter["event_id"] for letter in outcome.replayed] == [wanted]
    take_dead_letters()  # the others, put back above
    after = stack.publish_event(SYNC, {"scope": "hris"})
    assert stack.wait_for_execution(after)["status"] == "succeeded"
    again = [(p, b) for p, b in dead_letters(stack, wanted) if (p.headers or {}).get("ce-id") == wanted]
    assert len(again) == 1
    properties, body = again[0]
    assert properties.content_type == binary_letter.content_type
    assert body == next(b for p, b in letters if p is binary_letter)
    assert {k: v for k, v in properties.headers.items() if k.startswith("ce-")} == \
        {k: v for k, v in binary_letter.headers.items() if k.startswith("ce-")}
    assert properties.headers[REPLAYS_HEADER] == 1
    assert properties.headers[REASON_HEADER] == structured_reason


HOSTILE = {  # case → (type, data, envelope attributes, the field the reason must start with)
    "year-1-time": (SYNC, {"scope": "nightly"}, {"time": "0001-01-01T00:00:00Z"}, "time"),
    "year-1-to": (SYNC, {"scope": "attendance", "to": "0001-01-01"}, {}, "data.to"),
    "year-9999": (SYNC, {"scope": "nightly"}, {"time": "9999-12-31T23:59:59-05:00"}, "time"),
    "punch-window-0001-9999": ("hrsync.punches.imported",
                               {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}, {}, "data.from"),
    "sync-10-years": (SYNC, {"scope": "attendance", "from": "2016-01-01", "to": "2025-12-31"}, {}, "data"),
    "open-range-past-bounds": (SYNC, {"scope": "attendance", "from": "1990-01-01"}, {}, "data"),
    "employees-5001": (SYNC, {"scope": "hris", "employees": [f"E{i}" for i in range(5001)]}, {}, "data.employees"),
}


def test_hostile_events_are_dead_lettered_and_the_bridge_goes_on(stack: Stack) -> None:
    """Valid-looking events outside DESIGN §5's bounds are dead-lettered naming the field; the bridge never
    dies and the event behind them runs."""
    ids = {case: f"{stack.prefix}-{case}" for case in HOSTILE}
    for case, (event_type, data, attributes, _) in HOSTILE.items():
        body = {**event_body(event_type, data, ids[case]), **attributes}
        stack.publish(json.dumps(body).encode(), event_type, ids[case])
    after = stack.publish_event(SYNC, {"scope": "hris"})
    assert stack.wait_for_execution(after)["status"] == "succeeded"  # still consuming, in order
    letters = dead_letters(stack, *ids.values())
    reasons = {case: reason_of(letters, ids[case]) for case in HOSTILE}
    assert {case: reason.split(":")[0] for case, reason in reasons.items()} == \
        {case: field for case, (_, _, _, field) in HOSTILE.items()}, reasons
    assert all(stack.executions_of(event_id) == [] for event_id in ids.values())
    assert stack.bridge is not None
    assert stack.bridge.process is not None
    assert stack.bridge.process.poll() is None  # the bridge never died
