"""The event plane on RabbitMQ (pika): topology, and a publisher with confirms and `mandatory`.

Topology (declared idempotently by every process that publishes or consumes):

- exchange `hrsync.events` (topic, durable): one CloudEvent per message, routing key = type;
- queue `hrsync.bridge` (quorum) bound to everything, dead-lettering to `hrsync.events.dlx` after
  `BRIDGE_DELIVERY_LIMIT` deliveries (a poison message stops being redelivered);
- queue `hrsync.audit` (bounded: the newest `AUDIT_MAX_LENGTH` messages) bound to everything;
- exchange `hrsync.events.dlx` (fanout) → queue `hrsync.events.dead`.

The bridge dead-letters an invalid event itself (a copy with the reason in header `x-hrsync-reason`,
then an ack), because a broker-side reject cannot carry a reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from tenacity import Retrying, retry_if_exception, stop_after_delay

from shared.config.errors import HrsyncError
from shared.config.redaction import redact_url
from shared.config.retry import Backoff, is_transient
from shared.events.models import CONTENT_TYPE, Event

EVENTS_EXCHANGE = "hrsync.events"
DEAD_LETTER_EXCHANGE = "hrsync.events.dlx"
BRIDGE_QUEUE = "hrsync.bridge"
AUDIT_QUEUE = "hrsync.audit"
DEAD_QUEUE = "hrsync.events.dead"
REASON_HEADER = "x-hrsync-reason"
BRIDGE_DELIVERY_LIMIT = 5
AUDIT_MAX_LENGTH = 100_000
RECONNECT = Backoff(base=0.2, cap=3.0)  # between reconnect attempts of one publish


class PublishError(HrsyncError):
    """The broker did not take the event: unreachable, refused (nack) or unroutable."""


def declare_topology(channel: BlockingChannel) -> None:
    """Declare the exchanges and queues of the event plane (idempotent)."""
    channel.exchange_declare(EVENTS_EXCHANGE, "topic", durable=True)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, "fanout", durable=True)
    channel.queue_declare(DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(DEAD_QUEUE, DEAD_LETTER_EXCHANGE)
    channel.queue_declare(BRIDGE_QUEUE, durable=True, arguments={
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-delivery-limit": BRIDGE_DELIVERY_LIMIT,
    })
    channel.queue_bind(BRIDGE_QUEUE, EVENTS_EXCHANGE, routing_key="#")
    channel.queue_declare(AUDIT_QUEUE, durable=True, arguments={
        "x-queue-type": "quorum", "x-max-length": AUDIT_MAX_LENGTH, "x-overflow": "drop-head",
    })
    channel.queue_bind(AUDIT_QUEUE, EVENTS_EXCHANGE, routing_key="#")


def pika_url(url: str) -> str:
    """Kombu spells the default vhost `amqp://host//`; pika needs it encoded: `amqp://host/%2F`."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if path.startswith("/"):
        path = "%2F" + path[1:]
    return f"{scheme}{sep}{host}{slash}{path}"


def connection_parameters(url: str, blocked_timeout: float = 30.0) -> pika.URLParameters:
    """pika connection parameters for an AMQP URL (kombu or pika spelling), with bounded timeouts.

    A broker in a memory or disk alarm blocks publishers; after `blocked_timeout` seconds the
    connection is dropped, so a publisher fails loudly instead of hanging.
    """
    params = pika.URLParameters(pika_url(url))
    params.connection_attempts = 1
    params.socket_timeout = 10
    params.blocked_connection_timeout = blocked_timeout
    return params


class EventPublisher:
    """Publishes CloudEvents with confirms and `mandatory`; one connection per thread.

    `publish` returns once the broker confirmed the message; it raises `PublishError` when the broker
    is unreachable (after reconnect attempts for `retry_seconds`), nacks, or cannot route it.
    """

    def __init__(self, url: str, retry_seconds: float = 15.0, blocked_timeout: float = 30.0) -> None:
        self.url = url
        self.retry_seconds = retry_seconds
        self.blocked_timeout = blocked_timeout
        self._local = threading.local()

    def _channel(self) -> BlockingChannel:
        channel: BlockingChannel | None = getattr(self._local, "channel", None)
        if channel is not None and channel.is_open:
            return channel
        self.close()
        connection = pika.BlockingConnection(connection_parameters(self.url, self.blocked_timeout))
        channel = connection.channel()
        channel.confirm_delivery()
        declare_topology(channel)
        self._local.connection, self._local.channel = connection, channel
        return channel

    def publish(self, event: Event, headers: Mapping[str, Any] | None = None) -> None:
        """Publish one event, routing key = its type; retried over reconnects, then `PublishError`."""
        body = event.to_json_bytes()
        self.publish_raw(EVENTS_EXCHANGE, event.type, body, message_id=event.id, headers=headers)

    def publish_raw(self, exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None,
                    headers: Mapping[str, Any] | None = None) -> None:
        """Publish bytes as they are (the bridge's dead letters, `dlq replay`)."""
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE, delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message_id, headers=dict(headers or {}),
        )
        retrying = Retrying(
            # A blocked connection (resource alarm) is not transient: the caller hears of it at once.
            retry=retry_if_exception(is_transient),
            stop=stop_after_delay(self.retry_seconds),
            wait=RECONNECT.tenacity_wait(),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._publish_once(exchange, routing_key, body, properties)
        except pika.exceptions.ConnectionBlockedTimeout:
            raise PublishError(f"the broker blocked publishing for {self.blocked_timeout:.0f} s (a memory or disk "
                               "alarm); the message was not confirmed") from None
        except pika.exceptions.UnroutableError:
            raise PublishError(f"unroutable: no queue is bound for {routing_key!r} on {exchange!r}") from None
        except pika.exceptions.NackError:
            raise PublishError(f"the broker refused (nack) the message for {routing_key!r}") from None
        except pika.exceptions.AMQPError as exc:
            raise PublishError(f"broker {redact_url(self.url)} unreachable: {type(exc).__name__} {exc}") from None

    def _publish_once(self, exchange: str, routing_key: str, body: bytes,
                      properties: pika.BasicProperties) -> None:
        try:
            self._channel().basic_publish(exchange, routing_key, body, properties, mandatory=True)
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosed,
                pika.exceptions.ConnectionClosed, pika.exceptions.StreamLostError):
            self.close()  # the next attempt reconnects
            raise

    def close(self) -> None:
        """Close this thread's connection, if any."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        if connection is not None and connection.is_open:
            with suppress(pika.exceptions.AMQPError):
                connection.close()


def publish_once(url: str, event: Event, retry_seconds: float = 15.0) -> None:
    """Publish one event on a connection of its own, closed afterwards; `PublishError` when it is not taken
    (`retry_seconds` 0: no reconnect attempts, the caller owns the retries)."""
    publisher = EventPublisher(url, retry_seconds=retry_seconds)
    try:
        publisher.publish(event)
    finally:
        publisher.close()


@contextmanager
def event_channel(url: str) -> Iterator[BlockingChannel]:
    """A channel on its own connection, with the topology declared; closed afterwards."""
    connection = pika.BlockingConnection(connection_parameters(url))
    try:
        channel = connection.channel()
        declare_topology(channel)
        yield channel
    finally:
        if connection.is_open:
            connection.close()
