"""Publishing to `hrsync.events` from the intake's event loop (aiormq): confirms, `mandatory`, persistent.

One connection with a few confirming channels used in turn, shared by every request and opened again after it
is lost. A batch goes out pipelined (every message written, then every confirm awaited), so 100 events cost
about one round trip, not 100. `publish` returns once the broker confirmed every message, or raises:

- `BrokerBlocked` while RabbitMQ blocks publishers (a memory or disk alarm: `connection.blocked`), or when a
  confirm does not come within the timeout on a connection that is blocked;
- `BrokerUnavailable` when the broker cannot be reached, nacks, cannot route, or does not confirm in time.

Either way nothing the caller was told about is lost: an unconfirmed message may still arrive, and the event
id deduplicates it when the sender sends it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, cast

import aiormq
import aiormq.abc
import aiormq.exceptions
import pika.exceptions
from pamqp.commands import Basic

from shared.config.redaction import redact_url
from shared.events.bus import EVENTS_EXCHANGE, event_channel
from shared.events.models import CONTENT_TYPE

CONNECT_TIMEOUT: Final = 3.0
CONFIRM_TIMEOUT: Final = 5.0
PERSISTENT: Final = 2
# Channels on the one connection, used in turn: RabbitMQ runs each channel in a process of its own, so
# concurrent requests' publishes (and their confirms) do not queue behind one another on a single channel.
CHANNELS: Final = 4
RETRY_PAUSE: Final = 1.0  # after a failed opening, requests answer 503 at once for this long
BLOCKED_POLL: Final = 0.05  # how often a publish waiting for confirms looks for a `connection.blocked`


Confirming = asyncio.Future[aiormq.abc.ConfirmationFrameType | None]  # a publish waiting for its confirm


class BrokerBlocked(Exception):
    """RabbitMQ blocks publishers (a resource alarm): try again later (429)."""


class BrokerUnavailable(Exception):
    """The broker is unreachable or did not take the messages (503)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to publish: its routing key (the type), its id and its structured-mode body."""

    routing_key: str
    message_id: str
    body: bytes


class EventSender:
    """Publishes events with confirms on one shared connection (see the module docstring)."""

    def __init__(self, url: str, confirm_timeout: float = CONFIRM_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.url = url
        self.confirm_timeout = confirm_timeout
        self.connect_timeout = connect_timeout
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._channels: list[aiormq.Channel] = []
        self._turn = 0
        self._opening = asyncio.Lock()
        self._failure: tuple[float, str] | None = None  # (loop time, message) of the last failed opening

    @property
    def blocked(self) -> bool:
        """Whether RabbitMQ told this connection that it blocks publishers (`connection.blocked`)."""
        # aiormq keeps the state in a private event; it is the only record of the broker's notice.
        unblocked = getattr(self._connection, "_Connection__connection_unblocked", None)
        return isinstance(unblocked, asyncio.Event) and not unblocked.is_set() and self._open()

    def _open(self) -> bool:
        return self._connection is not None and not self._connection.is_closed \
            and bool(self._channels) and not any(channel.is_closed for channel in self._channels)

    async def channel(self) -> aiormq.Channel:
        """A confirming channel (the next of `CHANNELS`, in turn), all (re)opened when needed; `BrokerUnavailable`
        if the broker cannot be reached."""
        async with self._opening:
            if not self._open():
                await self._reopen()
            self._turn = (self._turn + 1) % len(self._channels)
            return self._channels[self._turn]

    async def _reopen(self) -> None:
        """Open the connection and its channels, declare the topology; `BrokerUnavailable` if it fails."""
        await self.close()
        now = asyncio.get_running_loop().time()
        if self._failure is not None and now - self._failure[0] < RETRY_PAUSE:
            # Requests queued behind a failed opening fail at once instead of each waiting a timeout.
            raise BrokerUnavailable(self._failure[1])
        try:
            async with asyncio.timeout(self.connect_timeout):
                self._connection = await aiormq.connect(self.url)
                # aiormq's abstract type lacks basic_publish's `wait`; the channel it opens is a Channel.
                self._channels = [cast(aiormq.Channel, await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True)) for _ in range(CHANNELS)]
            # The one declaration of the topology (pika, in a thread), as every publisher makes it.
            await asyncio.wait_for(asyncio.to_thread(_declare_topology, self.url), self.connect_timeout * 3)
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError, pika.exceptions.AMQPError) as exc:
            await self.close()
            message = f"broker {redact_url(self.url)} unreachable: {type(exc).__name__}"
            self._failure = (asyncio.get_running_loop().time(), message)
            raise BrokerUnavailable(message) from None
        self._failure = None

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish every message and wait for every confirm (see the module docstring for the errors)."""
        if self.blocked:
            raise BrokerBlocked("the broker blocks publishers (a memory or disk alarm)")
        channel = await self.channel()
        sends: list[Confirming] = [asyncio.ensure_future(channel.basic_publish(
            message.body, exchange=EVENTS_EXCHANGE, routing_key=message.routing_key, mandatory=True,
            wait=False,  # no drain per message: the confirms say when the broker has them
            properties=Basic.Properties(content_type=CONTENT_TYPE, delivery_mode=PERSISTENT,
                                        message_id=message.message_id)))
            for message in messages]
        done, pending = await self._confirms(sends)
        for send in pending:
            send.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            if self.blocked:
                raise BrokerBlocked("the broker blocks publishers (a memory or disk alarm)")
            await self.close()  # silent for too long: the next request opens a fresh connection
            raise BrokerUnavailable(f"the broker did not confirm within {self.confirm_timeout:.0f} s")
        for send in done:
            error = send.exception()
            if isinstance(error, aiormq.exceptions.PublishError):
                raise BrokerUnavailable("unroutable: no queue is bound on the events exchange")
            if error is not None:
                await self.close()
                raise BrokerUnavailable(f"the broker did not take the events: {type(error).__name__}")
            if not isinstance(send.result(), Basic.Ack):
                raise BrokerUnavailable("the broker refused (nack) the events")

    async def _confirms(self, sends: Sequence[Confirming]) -> tuple[set[Confirming], set[Confirming]]:
        """Wait for the confirms, but stop as soon as the broker says it blocks us (it says so on the publish)."""
        deadline = asyncio.get_running_loop().time() + self.confirm_timeout
        pending = set(sends)
        while pending and not self.blocked:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=min(left, BLOCKED_POLL))
        return set(sends) - pending, pending

    async def reachable(self) -> bool:
        """Whether a channel to the broker is open or can be opened now."""
        try:
            await self.channel()
        except BrokerUnavailable:
            return False
        return True

    async def close(self) -> None:
        """Close the connection, if any (quietly: it may be gone already)."""
        connection, self._connection, self._channels = self._connection, None, []
        if connection is not None and not connection.is_closed:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await connection.close()
            except (TimeoutError, OSError, aiormq.exceptions.AMQPError):
                pass


def _declare_topology(url: str) -> None:
    with event_channel(url):  # declares the exchanges and queues on entering
        pass
