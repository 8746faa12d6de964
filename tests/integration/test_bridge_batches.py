"""The bridge's batches on the real broker and database: an in-process `Bridge` on a virtual host of its own."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pika
import pytest
from sqlalchemy import func, select

from shared.database.db import app_engine
from shared.database.tables import event_inbox
from shared.events import dead_letters
from shared.events.bus import DEAD_LETTER_EXCHANGE, DEAD_QUEUE, REASON_HEADER, EventPublisher, event_channel
from shared.events.models import build_event
from shared.runtime.runner import run_async
from tests.conftest import wait_until
from tests.integration.stack_fixtures import private_vhost
from workers.bridge import Bridge

pytestmark = pytest.mark.integration


def admitted(prefix: str) -> int:
    async def query() -> int:
        engine = await app_engine()
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(event_inbox)
                                           .where(event_inbox.c.event_id.like(f"{prefix}%")))).scalar_one())

    return run_async(query())


def test_a_dead_letter_the_mover_holds_is_not_acked_by_a_batch(app_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database refuses a dead letter's row, so the mover holds the message unacked; meanwhile a batch
    of valid events is admitted and acked with `multiple=True`. That ack must not cover the held dead letter:
    once the bridge stops, the letter is back in `hrsync.events.dead`, not gone unstored. (With the mover on
    the batches' channel, the batch's ack took it off the queue.)"""
    refusals: list[bytes] = []

    async def refused(properties: Any, body: bytes) -> str:
        refusals.append(body)
        raise ConnectionRefusedError("the app database is away (test)")

    monkeypatch.setattr(dead_letters, "store_dead_letter", refused)
    prefix = f"held-{uuid.uuid4().hex[:6]}-"
    with private_vhost(f"hrsync-test-held-{uuid.uuid4().hex[:6]}") as url:
        with event_channel(url) as channel:  # a dead letter as the bridge writes one
            channel.confirm_delivery()
            channel.basic_publish(DEAD_LETTER_EXCHANGE, "hrsync.sync.requested", b"not json", pika.BasicProperties(
                headers={REASON_HEADER: "not JSON (test)"}, delivery_mode=2, message_id=f"{prefix}dead"))
        bridge = Bridge(url, lambda execution_id, stages: None, prefetch=10)
        consumer = threading.Thread(target=bridge.run, daemon=True)
        consumer.start()
        try:
            wait_until(lambda: refusals, "the mover's first (refused) store", timeout=60, every=0.1)
            publisher = EventPublisher(url)
            try:
                for n in range(5):
                    publisher.publish(build_event("hrsync.sync.requested", {"scope": "hris"}, id=f"{prefix}{n}",
                                                  source="test/held"))
            finally:
                publisher.close()
            wait_until(lambda: admitted(prefix) == 5, "the five events admitted", timeout=60, every=0.1)
        finally:
            bridge.stop()
            consumer.join(60)
        assert not consumer.is_alive()
        with event_channel(url) as channel:
            left = channel.queue_declare(DEAD_QUEUE, passive=True).method.message_count
    assert left == 1
