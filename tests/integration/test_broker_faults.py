"""The event plane under broker faults: nothing confirmed is lost, nothing unconfirmed is silent.

These tests stop, kill and start the real local RabbitMQ (marker `fault`); run them alone.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.database.db import app_engine
from shared.database.tables import event_inbox, executions
from shared.events.bus import BRIDGE_QUEUE, EventPublisher, PublishError, event_channel
from shared.events.models import build_event
from shared.runtime.runner import run_async
from tests.conftest import RABBITMQ_URL, require_service
from tests.integration import services
from tests.integration.stack_fixtures import drain
from workers.bridge import Bridge

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]


@pytest.fixture
def broker() -> Iterator[None]:
    """RabbitMQ is up, the bridge queue empty; afterwards it is up again whatever the test did."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    with event_channel(RABBITMQ_URL) as channel:
        channel.queue_purge(BRIDGE_QUEUE)
    try:
        yield
    finally:
        if not services.port_open(services.RABBITMQ_PORT):
            services.rabbitmq_start_app()
        services.rabbitmq_memory_alarm(on=False)


def sync_event(event_id: str) -> Any:
    return build_event("hrsync.sync.requested", {"scope": "hris"}, id=event_id, source="test/faults")


def drain_ids(prefix: str) -> list[str]:
    """Message ids (with `prefix`) taken out of the bridge queue, with repeats."""
    ids = [str(properties.message_id) for _, properties, _ in drain(RABBITMQ_URL, BRIDGE_QUEUE)]
    return [i for i in ids if i.startswith(prefix)]


def test_an_unroutable_publish_is_an_error(broker: None) -> None:
    """A message no queue would take is returned by the broker and raised to the publisher."""
    with event_channel(RABBITMQ_URL) as channel:
        channel.exchange_declare("hrsync.test.nowhere", "topic", auto_delete=True)
        publisher = EventPublisher(RABBITMQ_URL, retry_seconds=2)
        try:
            with pytest.raises(PublishError, match="unroutable"):
                publisher.publish_raw("hrsync.test.nowhere", "no.queue", b"{}")
        finally:
            publisher.close()
            channel.exchange_delete("hrsync.test.nowhere")


def test_confirmed_events_survive_a_sigkill_of_the_broker(broker: None) -> None:
    """Every event the broker confirmed is still queued after RabbitMQ is killed with SIGKILL."""
    prefix = f"kill-{uuid.uuid4().hex[:6]}-"
    publisher = EventPublisher(RABBITMQ_URL)
    confirmed = []
    try:
        for i in range(300):
            publisher.publish(sync_event(f"{prefix}{i}"))
            confirmed.append(f"{prefix}{i}")
    finally:
        publisher.close()
    services.rabbitmq_kill9_and_restart()
    assert sorted(drain_ids(prefix)) == sorted(confirmed)


def test_a_memory_alarm_blocks_then_fails_loudly_and_loses_nothing(broker: None) -> None:
    """Under a memory alarm a publish fails with an error (not a hang); after it clears, all flows."""
    prefix = f"alarm-{uuid.uuid4().hex[:6]}-"
    services.rabbitmq_memory_alarm(on=True)
    blocked = EventPublisher(RABBITMQ_URL, retry_seconds=3, blocked_timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(PublishError):
            blocked.publish(sync_event(f"{prefix}blocked"))
    finally:
        blocked.close()
        services.rabbitmq_memory_alarm(on=False)
    assert time.monotonic() - started < 60
    publisher = EventPublisher(RABBITMQ_URL)
    try:
        publisher.publish(sync_event(f"{prefix}after"))
    finally:
        publisher.close()
    seen = drain_ids(prefix)
    assert seen.count(f"{prefix}after") == 1
    assert seen.count(f"{prefix}blocked") <= 1  # unconfirmed: the caller was told; never twice


def inbox_count(prefix: str) -> tuple[int, int]:
    async def query() -> tuple[int, int]:
        engine = await app_engine()
        async with engine.connect() as conn:
            inbox = (await conn.execute(select(func.count()).select_from(event_inbox)
                                        .where(event_inbox.c.event_id.like(f"{prefix}%")))).scalar_one()
            runs = (await conn.execute(select(func.count()).select_from(executions)
                                       .where(executions.c.event_id.like(f"{prefix}%")))).scalar_one()
            return int(inbox), int(runs)

    return run_async(query())


def test_broker_stopped_mid_burst_every_confirmed_event_is_consumed_once(broker: None, app_db: str) -> None:
    """5,000 events, RabbitMQ stopped and started mid-burst: each confirmed event gets one execution."""
    prefix = f"burst-{uuid.uuid4().hex[:6]}-"
    total = 5000
    confirmed: list[str] = []
    failed: list[str] = []
    launched: list[str] = []
    bridge = Bridge(RABBITMQ_URL, lambda execution_id, stages: launched.append(execution_id), prefetch=50)

    def publish_all() -> None:
        publisher = EventPublisher(RABBITMQ_URL, retry_seconds=90)
        try:
            for i in range(total):
                try:
                    publisher.publish(sync_event(f"{prefix}{i}"))
                    confirmed.append(f"{prefix}{i}")
                except PublishError:
                    failed.append(f"{prefix}{i}")
        finally:
            publisher.close()

    consumer = threading.Thread(target=bridge.run, daemon=True)
    producer = threading.Thread(target=publish_all, daemon=True)
    consumer.start()
    producer.start()
    try:
        deadline = time.monotonic() + 120
        while len(confirmed) < total // 5:
            assert time.monotonic() < deadline, f"only {len(confirmed)} events confirmed before the outage"
            time.sleep(0.05)
        services.rabbitmq_stop_app()
        time.sleep(2)
        services.rabbitmq_start_app()
        producer.join(300)
        assert not producer.is_alive()
        deadline = time.monotonic() + 300
        while inbox_count(prefix)[0] < len(confirmed) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        bridge.stop()
        consumer.join(60)
    assert len(confirmed) + len(failed) == total
    assert failed == []  # the publisher's retries covered the outage: nothing had to be reported
    inbox, runs = inbox_count(prefix)
    assert inbox == runs == len(confirmed)  # every confirmed event admitted, each with one execution
    assert len(launched) == len(set(launched)) == len(confirmed)
