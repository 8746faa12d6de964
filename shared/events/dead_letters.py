"""The dead-letter queue `hrsync.events.dead`: list it without losing anything, replay chosen messages.

How a message is read without being lost: RabbitMQ has no "peek" on a queue, and the usual trick —
`basic_get` without ack, then `nack(requeue)` or closing the channel — returns the message *counting a
delivery*: on RabbitMQ 4.0 to 4.2 every return raises a quorum queue's delivery count, and 4.x quorum
queues have a default delivery limit of 20, after which a message with no further dead-letter target
is dropped. Twenty `dlq list` runs would silently empty the queue. So both commands *rotate* instead:

    count = messages in the queue now
    repeat count times: basic_get (no ack) → publish it (confirmed) to its destination → ack it

The destination is the queue's own tail for a message that stays (a listed one, or one not chosen for
replay) and `hrsync.events` for a replayed one. The ack comes only after the broker confirmed the copy,
so a crash in between leaves the message twice, never zero times (a replayed duplicate is harmless: the
bridge's inbox launches each event id once). A message that is in hand when the connection drops goes
back to the queue unacked. With no concurrent readers the queue's order is unchanged after a pass; two
operators rotating at the same time each see part of the queue (use one at a time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from shared.events.binding import CE_PREFIX
from shared.events.bus import DEAD_QUEUE, EVENTS_EXCHANGE, REASON_HEADER, event_channel

ROUTING_KEY_HEADER = "x-hrsync-routing-key"
REJECTED_AT_HEADER = "x-hrsync-rejected-at"
REPLAYS_HEADER = "x-hrsync-dlq-replays"
# Headers a dead-lettering added: a replayed event goes out as it first came in (plus the replay count).
_DEAD_LETTER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                        "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message as an operator sees it."""

    id: str  # the event id (AMQP message id), or `sha:<digest>` of the body when it has none
    type: str
    reason: str
    first_seen: str | None
    routing_key: str
    size: int
    replays: int
    body: bytes = field(repr=False)
    headers: Mapping[str, Any] = field(repr=False)
    properties: pika.BasicProperties = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "reason": self.reason, "first_seen": self.first_seen,
                "routing_key": self.routing_key, "size": self.size, "replays": self.replays}


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death") or []
    return deaths[-1] if deaths and isinstance(deaths[-1], Mapping) else {}  # the list is newest first


def describe(properties: pika.BasicProperties, body: bytes) -> DeadLetter:
    """What a dead-lettered message is: by the bridge (reason header) or by the broker (`x-death`)."""
    headers = dict(properties.headers or {})
    death = _first_death(headers)
    reason = headers.get(REASON_HEADER) or headers.get("x-first-death-reason") or death.get("reason") or "unknown"
    keys = death.get("routing-keys") or []
    routing_key = _text(headers.get(ROUTING_KEY_HEADER) or (keys[0] if keys else "") or "")
    event_type = routing_key or "?"
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("type"), str):
            event_type = parsed["type"]
    except ValueError:
        pass
    first_seen = headers.get(REJECTED_AT_HEADER) or death.get("time")
    if isinstance(first_seen, dt.datetime):
        first_seen = (first_seen if first_seen.tzinfo else first_seen.replace(tzinfo=dt.UTC)).isoformat()
    attributes = {str(k).lower(): v for k, v in headers.items() if str(k).lower().startswith(CE_PREFIX)}
    if isinstance(attributes.get("ce-type"), str | bytes):  # binary mode: the attributes are headers
        event_type = _text(attributes["ce-type"])
    message_id = (properties.message_id or attributes.get("ce-id")
                  or f"sha:{hashlib.sha256(body).hexdigest()[:16]}")
    return DeadLetter(id=_text(message_id), type=event_type, reason=_text(reason),
                      first_seen=_text(first_seen) if first_seen else None, routing_key=routing_key,
                      size=len(body), replays=int(headers.get(REPLAYS_HEADER) or 0), body=body, headers=headers,
                      properties=properties)


@contextmanager
def _confirmed_channel(url: str) -> Iterator[BlockingChannel]:
    with event_channel(url) as channel:
        channel.confirm_delivery()
        yield channel


def _rotate(channel: BlockingChannel, visit: Callable[[DeadLetter], bool]) -> None:
    """Take each message now in the queue once; `visit` returns True when it replayed it elsewhere
    (then it leaves the queue), False to put it back at the tail. Acks only after a confirmed publish."""
    count = channel.queue_declare(DEAD_QUEUE, durable=True, passive=True).method.message_count
    for _ in range(count):
        method, properties, body = channel.basic_get(DEAD_QUEUE, auto_ack=False)
        if method is None:
            return
        letter = describe(properties, body)
        if not visit(letter):
            channel.basic_publish("", DEAD_QUEUE, body, properties, mandatory=True)  # confirmed
        channel.basic_ack(method.delivery_tag)


def list_dead_letters(url: str) -> list[DeadLetter]:
    """Every message in the dead-letter queue, oldest first; the queue keeps them all."""
    found: list[DeadLetter] = []

    def keep(letter: DeadLetter) -> bool:
        found.append(letter)
        return False

    with _confirmed_channel(url) as channel:
        _rotate(channel, keep)
    return found


@dataclass
class DeadLetterReplay:
    """What `replay_dead_letters` did: ids republished, and (id, error) of those left in the queue."""

    replayed: list[DeadLetter] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def dead_letter_properties(p: pika.BasicProperties, headers: Mapping[str, Any]) -> pika.BasicProperties:
    """A message's properties as it came, with `headers` and persistent delivery: a dead letter keeps the
    message whole (content mode, content type, ids), and a replay sends it out the same way again.
    Left out: `expiration` (a copy must not expire) and `user_id` (the broker checks it against the login)."""
    return pika.BasicProperties(content_type=p.content_type, content_encoding=p.content_encoding,
                                delivery_mode=pika.DeliveryMode.Persistent, priority=p.priority,
                                correlation_id=p.correlation_id, reply_to=p.reply_to, message_id=p.message_id,
                                timestamp=p.timestamp, type=p.type, app_id=p.app_id, cluster_id=p.cluster_id,
                                headers=dict(headers))


def _replay_properties(letter: DeadLetter) -> pika.BasicProperties:
    headers = {k: v for k, v in letter.headers.items()
               if k not in _DEAD_LETTER_HEADERS and not (k.startswith("x-hrsync-") and k != REPLAYS_HEADER)}
    headers[REPLAYS_HEADER] = letter.replays + 1
    return dead_letter_properties(letter.properties, headers)


def replay_dead_letters(url: str, ids: Collection[str] | None = None) -> DeadLetterReplay:
    """Republish the chosen dead letters (all when `ids` is None) to `hrsync.events` with their original
    body and routing key; each leaves the queue only once the broker confirmed the republished copy.
    A message that is still invalid is dead-lettered again by the bridge: nothing is lost."""
    outcome = DeadLetterReplay()

    def replay(letter: DeadLetter) -> bool:
        if ids is not None and letter.id not in ids:
            return False
        try:
            channel.basic_publish(EVENTS_EXCHANGE, letter.routing_key or letter.type, letter.body,
                                  _replay_properties(letter), mandatory=True)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            outcome.failed.append((letter.id, f"{type(exc).__name__}: not taken by the broker"))
            return False
        outcome.replayed.append(letter)
        return True

    with _confirmed_channel(url) as channel:
        _rotate(channel, replay)
    return outcome
