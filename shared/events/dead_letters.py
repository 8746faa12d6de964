"""Dead letters: moved out of the queue `hrsync.events.dead` into the app table `dead_letters`, listed with a
SELECT, replayed from the table.

Why a table: RabbitMQ has no "peek". Reading a queue without taking messages off means returning them
(which counts a delivery on quorum queues, and RabbitMQ 4 drops a message after 20) or rotating them to the
tail, which makes every listing a change of the queue that races an operator replaying at the same moment.
So the bridge moves each dead letter, as it came (body, properties, headers), into `dead_letters` and only
then acks it (`DeadLetterMover`): a crash in between moves it again onto the same row (its id is a digest
of the message). Listing reads the table and changes nothing. A replay, per letter and in one database
transaction, locks the row, writes the caller's audit row, marks the row replayed and publishes the
message to `hrsync.events` with confirms before the commit; a publish the broker refuses rolls all of it
back, and only a commit that fails after a confirmed publish can leave a republished event unmarked (listed
again; the inbox launches each event id once, so a second replay is harmless).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.config.retry import retry_transient
from shared.database.db import app_engine, upsert
from shared.database.tables import dead_letters
from shared.events.binding import CE_PREFIX
from shared.events.bus import DEAD_QUEUE, EVENTS_EXCHANGE, REASON_HEADER, event_channel
from shared.runtime.clock import utcnow
from shared.runtime.runner import run_async

log = structlog.get_logger(__name__)
ROUTING_KEY_HEADER = "x-hrsync-routing-key"
REJECTED_AT_HEADER = "x-hrsync-rejected-at"
REPLAYS_HEADER = "x-hrsync-dlq-replays"
LIST_LIMIT = 5000
# Headers a dead-lettering added: a replayed event goes out as it first came in (plus the replay count).
_DEAD_LETTER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                        "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")
_PROPERTY_NAMES = ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id", "reply_to",
                   "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id")


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message as an operator sees it (`id`: stable, the row's key)."""

    id: str
    event_id: str | None  # the event id (AMQP message id or `ce-id`), when it has one
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
        return {"id": self.id, "event_id": self.event_id, "type": self.type, "reason": self.reason,
                "first_seen": self.first_seen, "routing_key": self.routing_key, "size": self.size,
                "replays": self.replays}


# -- the message as it came, in JSON ----------------------------------------------------------------------

def _encode(value: Any) -> Any:
    """An AMQP field value as JSON; types JSON lacks are tagged (`{"$bytes": …}`, `{"$datetime": …}`, …)."""
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "$bytes":
                return base64.b64decode(inner)
            if tag == "$datetime":
                return dt.datetime.fromisoformat(inner)
            if tag == "$decimal":
                return decimal.Decimal(inner)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def encode_properties(properties: pika.BasicProperties) -> dict[str, Any]:
    """Every AMQP property and header of a message, as JSON that `decode_properties` turns back."""
    found = {name: _encode(getattr(properties, name)) for name in _PROPERTY_NAMES}
    return {**found, "headers": _encode(dict(properties.headers or {}))}


def decode_properties(stored: Mapping[str, Any]) -> pika.BasicProperties:
    values = {name: _decode(stored.get(name)) for name in _PROPERTY_NAMES}
    return pika.BasicProperties(**values, headers=_decode(stored.get("headers") or {}))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death") or []
    return deaths[-1] if deaths and isinstance(deaths[-1], Mapping) else {}  # the list is newest first


def letter_id(properties: pika.BasicProperties, body: bytes) -> str:
    """The stable id of a dead-lettered message: a digest of its body, properties and headers (the
    dead-lettering's time is among them, so the same event dead-lettered again is a new letter)."""
    digest = hashlib.sha256(body)
    digest.update(json.dumps(encode_properties(properties), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:20]


def describe(properties: pika.BasicProperties, body: bytes, stable_id: str | None = None) -> DeadLetter:
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
    event_id = properties.message_id or attributes.get("ce-id")
    return DeadLetter(id=stable_id or letter_id(properties, body), event_id=_text(event_id) if event_id else None,
                      type=event_type, reason=_text(reason), first_seen=_text(first_seen) if first_seen else None,
                      routing_key=routing_key, size=len(body), replays=int(headers.get(REPLAYS_HEADER) or 0),
                      body=body, headers=headers, properties=properties)


# -- moving them out of the queue (the bridge) --------------------------------------------------------------

@retry_transient
async def store_dead_letter(properties: pika.BasicProperties, body: bytes) -> str:
    """Keep a dead-lettered message in `dead_letters` (once: a second store of it changes nothing); its id."""
    letter = describe(properties, body)
    row = {"id": letter.id, "event_id": (letter.event_id or "")[:200] or None, "type": letter.type[:200],
           "reason": letter.reason, "routing_key": letter.routing_key[:255],
           "first_seen": (letter.first_seen or "")[:64] or None, "replays": letter.replays,
           "body": base64.b64encode(body).decode(),
           "properties": encode_properties(properties), "received_at": utcnow()}
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(upsert(conn, dead_letters, []), [row])
    return letter.id


class DeadLetterMover:
    """Moves what is in `hrsync.events.dead` into `dead_letters`, a few at a time (`poll`, from the bridge's
    loop). A message is acked only after its row committed; while the database refuses it, the message is
    held (unacked, so no delivery is counted) and tried again after a growing pause."""

    def __init__(self, batch: int = 100, idle: float = 1.0, cap: float = 30.0) -> None:
        self.batch, self.idle, self.cap = batch, idle, cap
        self._held: tuple[int, pika.BasicProperties, bytes] | None = None
        self._due = 0.0
        self._failures = 0

    def reset(self) -> None:
        """A new connection: whatever was held went back to the queue with the old one."""
        self._held, self._due = None, 0.0

    def poll(self, channel: BlockingChannel, *, force: bool = False) -> int:
        """Move up to `batch` dead letters if it is time (or `force`); how many were moved."""
        if not force and time.monotonic() < self._due:
            return 0
        moved = 0
        while moved < self.batch:
            if self._held is None:
                method, properties, body = channel.basic_get(DEAD_QUEUE, auto_ack=False)
                if method is None:
                    break
                self._held = (method.delivery_tag, properties, body)
            tag, properties, body = self._held
            try:
                letter = run_async(store_dead_letter(properties, body))
            except Exception as exc:  # the database is away: hold the message, try again later
                self._failures += 1
                self._due = time.monotonic() + min(self.cap, self.idle * 2 ** self._failures)
                log.warning("dead_letters.store_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
                return moved
            channel.basic_ack(tag)
            self._held, self._failures = None, 0
            moved += 1
            log.info("dead_letters.moved", id=letter)
        self._due = time.monotonic() + (0.0 if moved == self.batch else self.idle)
        return moved


def move_dead_letters(url: str) -> int:
    """Move everything now in `hrsync.events.dead` into the table (what the bridge does as it runs); how many."""
    mover, total = DeadLetterMover(), 0
    with event_channel(url) as channel:
        while moved := mover.poll(channel, force=True):
            total += moved
    return total


# -- listing and replaying (the table) ----------------------------------------------------------------------

def _letter(row: Any) -> DeadLetter:
    properties = decode_properties(row.properties)
    return describe(properties, base64.b64decode(row.body), row.id)


async def list_dead_letters(limit: int = LIST_LIMIT) -> list[DeadLetter]:
    """The dead letters not replayed yet, oldest first (a SELECT: the queue is not touched)."""
    c = dead_letters.c
    engine = await app_engine()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(dead_letters).where(c.replayed_at.is_(None))
                                   .order_by(c.received_at, c.id).limit(limit))).all()
    return [_letter(r) for r in rows]


async def _chosen(ids: Collection[str] | None) -> list[tuple[str, str | None]]:
    """(id, event id) of the letters not replayed yet that `ids` name (by id or event id; all with None)."""
    c = dead_letters.c
    query = select(c.id, c.event_id).where(c.replayed_at.is_(None)).order_by(c.received_at, c.id)
    if ids is not None:
        wanted = list(ids)
        query = query.where(or_(c.id.in_(wanted), c.event_id.in_(wanted)))
    engine = await app_engine()
    async with engine.connect() as conn:
        return [(r.id, r.event_id) for r in (await conn.execute(query)).all()]


@dataclass
class DeadLetterReplay:
    """What `replay_dead_letters` did: the letters republished, (id, error) of those left as they were, and
    the ids asked for that name no letter waiting for a replay."""

    replayed: list[DeadLetter] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)


# The caller's audit row of one letter, written in the replay's transaction.
LetterAudit = Callable[[AsyncConnection, DeadLetter], Awaitable[None]]


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


class _Refused(Exception):
    """The broker did not take the republished copy."""


async def _mark_replayed(conn: AsyncConnection, stable_id: str, audit: LetterAudit,
                         actor: str) -> DeadLetter | None:
    """In the caller's open transaction: lock the letter's row, write its audit row, mark it replayed (None:
    someone replayed it meanwhile)."""
    c = dead_letters.c
    row = (await conn.execute(select(dead_letters).where(c.id == stable_id, c.replayed_at.is_(None))
                              .with_for_update())).first()
    if row is None:
        return None
    letter = _letter(row)
    await audit(conn, letter)
    await conn.execute(update(dead_letters).where(c.id == stable_id).values(replayed_at=utcnow(),
                                                                          replayed_by=actor[:200]))
    return letter


def _replay_one(stable_id: str, channel: BlockingChannel, audit: LetterAudit, actor: str) -> DeadLetter | None:
    """One letter: its transaction is opened, written and ended on the runner's loop, and the publish runs
    here in between (pika's connection belongs to this thread, or greenlet); a refused publish rolls back."""
    async def begin() -> AsyncConnection:
        conn = await (await app_engine()).connect()
        await conn.begin()
        return conn

    async def end(conn: AsyncConnection, commit: bool) -> None:
        try:
            await (conn.commit() if commit else conn.rollback())
        finally:
            await conn.close()

    conn = run_async(begin())
    try:
        letter = run_async(_mark_replayed(conn, stable_id, audit, actor))
        if letter is not None:
            channel.basic_publish(EVENTS_EXCHANGE, letter.routing_key or letter.type, letter.body,
                                  _replay_properties(letter), mandatory=True)
    except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
        run_async(end(conn, commit=False))
        raise _Refused(f"{type(exc).__name__}: not taken by the broker") from None
    except BaseException:
        run_async(end(conn, commit=False))
        raise
    run_async(end(conn, commit=True))
    return letter


@contextmanager
def _confirmed_channel(url: str) -> Iterator[BlockingChannel]:
    with event_channel(url) as channel:
        channel.confirm_delivery()
        yield channel


def replay_dead_letters(url: str, ids: Collection[str] | None, audit: LetterAudit, actor: str) -> DeadLetterReplay:
    """Republish the letters `ids` names (by id or event id; every one waiting with None) to `hrsync.events`
    with their original body, properties and routing key, each in its own transaction with its audit row
    (see the module's docstring). A message that is still invalid is dead-lettered again by the bridge."""
    outcome = DeadLetterReplay()
    chosen = run_async(_chosen(ids))
    if ids is not None:
        matched = {i for pair in chosen for i in pair if i}
        outcome.not_found = sorted(set(ids) - matched)
    if not chosen:
        return outcome
    with _confirmed_channel(url) as channel:
        for stable_id, _ in chosen:
            try:
                letter = _replay_one(stable_id, channel, audit, actor)
            except _Refused as exc:
                outcome.failed.append((stable_id, str(exc)))
                continue
            if letter is not None:
                outcome.replayed.append(letter)
    return outcome
