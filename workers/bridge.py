"""The bridge (`hrsync bridge`): consumes `hrsync.bridge`, turns each event into an execution.

A plain (not gevent) pika consumer with a prefetch limit. It takes the messages at hand (up to a window,
half the prefetch) as one batch:

    validate each → inbox rows + execution rows of the whole batch (one transaction)
      → launch each new execution's canvas once (publish confirms) → mark launched (one transaction)
      → ack the batch (`basic_ack(multiple=True)`)

Two windows are in hand at once (the prefetch is twice the window): while one batch's transaction runs (on a
helper thread: the database round trips and the COMMIT), the next window is read from the broker and
validated. Batches are admitted, launched and acked strictly one after the other, in delivery order: the
next batch's transaction starts only once the one before is launched and acked, so it sees what that one
launched, and a `multiple=True` ack only ever covers its own batch.

When the batch fails anywhere, its messages are handled one by one as below (same steps, one message
each): that path carries the retries, the poison handling and the crash guarantees, so one bad message
never holds the others for longer than its attempts. `punches.imported` and `employee.changed` events
join the pending execution of their kind (`shared.events.coalesce`): nothing new is launched for an
event that joins an execution already launched.

- structured and binary CloudEvents messages are accepted alike (`shared.events.binding`);
- an invalid message (not JSON, unknown type, bad field, out of bounds, too large — or any error while
  turning it into an execution request) is copied as it came (properties, headers, body) to the dead-letter
  exchange with its reason in header `x-hrsync-reason`, then acked: nothing is lost, nothing requeued;
- a duplicate id is acked without a second launch (the inbox knows it);
- a crash between any two steps leads to exactly one launched execution after redelivery: a
  re-admitted event returns the same execution, and the canvas's first task claims the execution
  once (pending → running), so a second launch stops at once;
- while the database is away (a transient error) the message in hand is retried with backoff until it
  is back: an outage never sends valid events to the dead-letter queue;
- a message whose handling fails otherwise on every attempt of its last allowed delivery
  (`x-delivery-count`) is dead-lettered by the bridge with the last error as its reason, then acked;
  one that keeps crashing the bridge is dead-lettered by the quorum queue's delivery limit (no reason);
- an event that joins an execution already launched is logged per batch: one `bridge.joined` line per
  execution with the events' ids (`event_ids`), not one line per event;
- between batches (about once a second) it moves what is in `hrsync.events.dead` into the app table
  `dead_letters` (`shared.events.dead_letters`), where operators list and replay them.

It reconnects after a broker restart and stops cleanly on SIGTERM (the batch whose transaction runs
finishes; the window read after it is left unacked, so the broker redelivers it).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from pipelines.plans import ExecutionRequest, request_for
from shared.config.redaction import redact_text
from shared.config.retry import Backoff, is_transient
from shared.config.settings import get_settings
from shared.events.binding import parse_message
from shared.events.bus import (
    BRIDGE_DELIVERY_LIMIT,
    BRIDGE_QUEUE,
    DEAD_LETTER_EXCHANGE,
    REASON_HEADER,
    connection_parameters,
    declare_topology,
)
from shared.events.dead_letters import DeadLetterMover, dead_letter_properties
from shared.events.inbox import Admission, Arrival, admit_batch, admit_event, mark_launched
from shared.events.models import InvalidEvent, ParsedEvent
from shared.observability.metrics import event_consumed, event_dead_lettered, serve_metrics
from shared.observability.tracing import bound
from shared.runtime.realthreads import RealThreadExecutor
from shared.runtime.runner import run_async
from shared.runtime.stopping import StopFlag

log = structlog.get_logger(__name__)
PREFETCH = 200  # unacked messages in hand: two windows, so the next one is read while one is in the database
HANDLE_ATTEMPTS = 8  # tries of one delivery before a non-transient error gives it back (~1 minute)
RECONNECT = Backoff(base=0.5, cap=15.0)  # between reconnects to the broker
Launcher = Callable[[str, Sequence[str]], None]
Valid = tuple[Basic.Deliver, BasicProperties, bytes, ParsedEvent, ExecutionRequest]


@dataclass
class _Batch:
    """A validated window whose admission transaction runs on the helper thread (`future`)."""

    valid: list[Valid]
    future: concurrent.futures.Future[list[Admission]]


class Bridge:
    """Consume events and launch executions; `stop()` (or SIGTERM) ends `run()` after the current message."""

    def __init__(self, url: str, launch: Launcher, prefetch: int = PREFETCH, stopping: StopFlag | None = None) -> None:
        self.url = url
        self.launch = launch
        self.prefetch = prefetch
        self.window = max(1, prefetch // 2)  # a batch; the other half is the next window, read meanwhile
        self._admitter = RealThreadExecutor(1, "hrsync-bridge-admit")  # one batch in the database at a time
        self._stopping = stopping or StopFlag()  # set from a signal handler: no lock taken there
        self._connection: pika.BlockingConnection | None = None
        self.handled = 0
        self._window: list[tuple[Basic.Deliver, BasicProperties, bytes]] = []
        self._dead_letters = DeadLetterMover()

    def run(self) -> None:
        """Consume until stopped, reconnecting (with backoff) whenever the broker goes away."""
        retry = 0
        while not self._stopping.is_set():
            try:
                self._consume()
                retry = 0
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosed,
                    pika.exceptions.ConnectionClosed) as exc:
                if self._stopping.is_set():
                    break
                delay = RECONNECT.delay(retry)
                log.warning("bridge.disconnected", error=f"{type(exc).__name__}: {exc}", retry_in=round(delay, 2))
                self._stopping.wait(delay)
                retry += 1
        log.info("bridge.stopped", handled=self.handled)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(connection_parameters(self.url))
        self._connection = connection
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            declare_topology(channel)
            channel.basic_qos(prefetch_count=self.prefetch)
            channel.basic_consume(BRIDGE_QUEUE, self._on_message)
            # Dead letters are taken on a channel of their own: a batch's `multiple=True` ack must not cover
            # one the mover holds unacked while the database is away (it would leave the queue unstored).
            dead_channel = connection.channel()
            self._dead_letters.reset()
            log.info("bridge.consuming", queue=BRIDGE_QUEUE, prefetch=self.prefetch, window=self.window)
            in_flight: _Batch | None = None
            try:
                while not self._stopping.is_set():
                    # Wait for messages only when no batch is in the database; otherwise take what is at hand.
                    connection.process_data_events(time_limit=0.5 if in_flight is None else 0)
                    self._dead_letters.poll(dead_channel)  # into the app table, where they are listed, replayed
                    while self._window and len(self._window) < self.window:  # take what else is at hand
                        before = len(self._window)
                        connection.process_data_events(time_limit=0)
                        if len(self._window) == before:
                            break
                    valid = self._validate_window(channel)  # while the batch before is in the database
                    if in_flight is not None:
                        batch, in_flight = in_flight, None
                        self._finish(channel, batch)
                    if valid and not self._stopping.is_set():  # stopping: left unacked, redelivered
                        in_flight = self._admit(valid)
                if in_flight is not None:  # stopping: the batch in the database finishes, launched and acked
                    batch, in_flight = in_flight, None
                    self._finish(channel, batch)
            finally:
                if in_flight is not None:  # the connection failed: let its transaction end before the next
                    concurrent.futures.wait([in_flight.future])  # connection's batches (redelivery dedups)
        finally:
            self._window = []  # unacked: the broker redelivers them to the next connection
            self._connection = None
            if connection.is_open:
                connection.close()

    def stop(self, *_: Any) -> None:
        """Ask `run()` to return after the batch in hand (safe from a signal handler: sets a flag only)."""
        self._stopping.set()

    def _on_message(self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                    body: bytes) -> None:
        self._window.append((method, properties, body))

    def _validate_window(self, channel: BlockingChannel) -> list[Valid]:
        """Take the window in hand: dead-letter (and ack) the invalid messages, return the valid ones."""
        window, self._window = self._window, []
        valid: list[Valid] = []
        for method, properties, body in window:
            try:
                valid.append((method, properties, body, *self.admissible(body, properties)))
            except InvalidEvent as invalid:
                with bound(event_id=properties.message_id):
                    self._dead_letter(channel, method, properties, body, invalid.reason)
                self.handled += 1
        return valid

    def _admit(self, valid: list[Valid]) -> _Batch:
        """Start the batch's admission transaction on the helper thread."""
        arrivals = [Arrival(event.id, event.type, event.envelope.source, event.body, kind=request.kind,
                            trigger=request.trigger, params=request.params) for _, _, _, event, request in valid]
        return _Batch(valid, self._admitter.submit(run_async, admit_batch(arrivals)))

    def _finish(self, channel: BlockingChannel, batch: _Batch) -> None:
        """Wait for the batch's admission, launch its new executions, mark them, ack the batch at once
        (`multiple=True`); on any error, handle each message alone (`_handle_admissible`)."""
        valid = batch.valid
        try:
            self._launch_all(valid, batch.future.result())
        except Exception as exc:
            log.warning("bridge.batch_failed", size=len(valid), error=_short_error(exc),
                        transient=is_transient(exc))
            for method, properties, body, event, request in valid:
                with bound(event_id=event.id):
                    self._handle_admissible(channel, method, properties, body, event, request)
                self.handled += 1
            return
        channel.basic_ack(valid[-1][0].delivery_tag, multiple=True)
        self.handled += len(valid)

    def _launch_all(self, valid: list[Valid], admissions: list[Admission]) -> None:
        launched: set[str] = set()
        to_mark: list[tuple[Basic.Deliver, ParsedEvent, Admission]] = []
        joined: dict[str, list[ParsedEvent]] = {}  # execution id → the events that joined it, launched already
        for (method, _, _, event, request), admission in zip(valid, admissions, strict=True):
            if admission.launched:
                if admission.duplicate:
                    self._log_served(event, admission)
                else:
                    joined.setdefault(admission.execution_id, []).append(event)
                continue
            if admission.execution_id not in launched:  # several events of one window may share one execution
                self.launch(admission.execution_id, request.params["stages"])
                launched.add(admission.execution_id)
            to_mark.append((method, event, admission))
        if to_mark:
            run_async(mark_launched(*(event.id for _, event, _ in to_mark), executions=launched))
        for method, event, admission in to_mark:  # "launched" is said once it is recorded, as on the single path
            event_consumed(event.type, "launched")
            log.info("bridge.launched", event_id=event.id, execution_id=admission.execution_id, type=event.type,
                     redelivered=bool(method.redelivered), readmitted=admission.duplicate, joined=admission.joined)
        for execution_id, events in joined.items():  # one line per execution and batch, not per event
            for event in events:
                event_consumed(event.type, "joined")
            log.info("bridge.joined", execution_id=execution_id, type=events[0].type, events=len(events),
                     event_ids=[event.id for event in events])

    def handle(self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
               body: bytes) -> None:
        """One message: validate, admit, launch, mark, ack (or dead-letter with the reason, then ack)."""
        try:
            event, request = self.admissible(body, properties)
        except InvalidEvent as invalid:
            self._dead_letter(channel, method, properties, body, invalid.reason)
            return
        self._handle_admissible(channel, method, properties, body, event, request)

    def _handle_admissible(self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                           body: bytes, event: ParsedEvent, request: ExecutionRequest) -> None:
        """One valid message: admit, launch, mark, ack, retrying with backoff (see the module's docstring)."""
        first_delay = get_settings().bridge_retry_seconds
        backoff = Backoff(base=first_delay, cap=first_delay * 20)
        attempt = 0
        while True:
            attempt += 1
            try:
                self._admit_and_launch(event, request, method)
                break
            except Exception as exc:
                # Keep the message (unacked) and try again. A transient error (the database away) is
                # not the message's fault: it is retried until the database is back, never dead-lettered.
                # Any other error: after HANDLE_ATTEMPTS the message is given back, or dead-lettered
                # with the error if it has no delivery left (a poison message).
                error = _short_error(exc)
                log.warning("bridge.handle_failed", attempt=attempt, error=error, transient=is_transient(exc))
                if self._stopping.is_set():
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    return
                if attempt >= HANDLE_ATTEMPTS and not is_transient(exc):
                    self._give_back(channel, method, properties, body, error)
                    return
                channel.connection.sleep(backoff.delay(attempt - 1))
        channel.basic_ack(method.delivery_tag)

    @staticmethod
    def admissible(body: bytes, properties: BasicProperties) -> tuple[ParsedEvent, ExecutionRequest]:
        """The event a message carries (either content mode) and the execution it asks for.

        Raises `InvalidEvent` for anything wrong with the message's content, whatever the error: no exception
        a message can cause leaves the handler (an unexpected one is the message's fault too, and is named).
        """
        try:
            event = parse_message(body, properties.content_type, properties.headers)
            return event, request_for(event, dt.datetime.now(dt.UTC), get_settings().zone)
        except InvalidEvent:
            raise
        except Exception as exc:
            log.exception("bridge.unexpected_invalid")
            raise InvalidEvent(f"cannot be turned into an execution: {_short_error(exc)}") from exc

    def _give_back(self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                   body: bytes, error: str) -> None:
        """Requeue a message that failed every attempt, or dead-letter it (with the error) on its last delivery.

        The queue's own delivery limit stays the backstop for a bridge that crashes on the message.
        """
        deliveries = int((properties.headers or {}).get("x-delivery-count", 0)) + 1
        if deliveries <= BRIDGE_DELIVERY_LIMIT:
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        self._dead_letter(channel, method, properties, body, f"failed on all {deliveries} deliveries: {error}")

    def _admit_and_launch(self, event: ParsedEvent, request: ExecutionRequest, method: Basic.Deliver) -> None:
        with bound(event_id=event.id):
            admission = run_async(admit_event(event.id, event.type, event.envelope.source, event.body,
                                              kind=request.kind, trigger=request.trigger, params=request.params))
            if admission.launched:
                self._log_served(event, admission)
                return
            self.launch(admission.execution_id, request.params["stages"])
            run_async(mark_launched(event.id))
            event_consumed(event.type, "launched")
            log.info("bridge.launched", execution_id=admission.execution_id, type=event.type,
                     redelivered=bool(method.redelivered), readmitted=admission.duplicate, joined=admission.joined)

    @staticmethod
    def _log_served(event: ParsedEvent, admission: Admission) -> None:
        """An event that needs no launch: a duplicate, or one that joined an execution already launched."""
        outcome = "duplicate" if admission.duplicate else "joined"
        log.info("bridge.duplicate" if admission.duplicate else "bridge.joined", event_id=event.id,
                 execution_id=admission.execution_id, type=event.type)
        event_consumed(event.type, outcome)

    def _dead_letter(self, channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties,
                     body: bytes, reason: str) -> None:
        headers = {**(properties.headers or {}), REASON_HEADER: reason,
                   "x-hrsync-routing-key": method.routing_key,
                   "x-hrsync-rejected-at": dt.datetime.now(dt.UTC).isoformat()}
        copy = dead_letter_properties(properties, headers)
        channel.basic_publish(DEAD_LETTER_EXCHANGE, method.routing_key or "", body, copy)  # confirmed
        channel.basic_ack(method.delivery_tag)
        event_dead_lettered()
        log.warning("bridge.dead_lettered", reason=reason, routing_key=method.routing_key)


def _short_error(exc: BaseException) -> str:
    """The error's type and first line (a database error's SQL and parameters left out), redacted, clipped."""
    lines = str(exc).splitlines() or [""]
    return redact_text(f"{type(exc).__name__}: {lines[0]}")[:300]


def run_bridge(launch: Launcher | None = None, stop_flag: StopFlag | None = None) -> None:
    """The `hrsync bridge` process: SIGTERM/SIGINT (`stop_flag`, installed as their handler if not given)
    stop it cleanly."""
    from workers.canvas import launch as launch_canvas

    settings = get_settings()
    bridge = Bridge(settings.events(), launch or launch_canvas, stopping=stop_flag or StopFlag().install())
    serve_metrics(settings.metrics_port, "bridge")
    started = time.monotonic()
    bridge.run()
    log.info("bridge.exit", seconds=round(time.monotonic() - started, 1))
