"""The intake's ASGI app (Starlette): `create_app(sources, sender, zone)`.

`POST /events` runs the checks of DESIGN §12 in this order, each refusal an RFC 9457 problem document:
size (413; a batch of 0 or more than 100 events: 400) → signature (401) → parsing and validation (400) →
source and type (403) → rate (429) → publish with confirms (202; 429 while RabbitMQ blocks; 503 when it is
away). `OPTIONS /events` is the CloudEvents webhook handshake, `GET /asyncapi.json` the contract,
`GET /healthz` whether the broker is reachable.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import Final

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from intake.asyncapi import asyncapi_document
from intake.http_binding import Rejected, batch_size_problem, is_batch, read_events
from intake.problems import Problem
from intake.publisher import BrokerBlocked, BrokerUnavailable, EventSender, Outgoing
from intake.ratelimit import TokenBucket
from intake.signatures import SignatureRefused, signing_source
from shared.events.intake_sources import Source, Sources
from shared.events.models import MAX_EVENT_BYTES, ParsedEvent

log = structlog.get_logger(__name__)
BROKER_RETRY_AFTER: Final = 5  # seconds a sender waits while the broker blocks or is away


class Intake:
    """What the routes share: the sources, a token bucket per source, the sender, the company's zone."""

    def __init__(self, sources: Sources, sender: EventSender, zone: tzinfo,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.sources, self.sender, self.zone = sources, sender, zone
        self.clock, self.monotonic = clock, monotonic
        self.buckets = {name: TokenBucket(source.rate_per_second) for name, source in sources.by_name.items()}

    async def accept(self, request: Request) -> list[ParsedEvent]:
        """The request's events once published and confirmed; `Problem` at the first check that refuses."""
        content_type = request.headers.get("content-type")
        batch = is_batch(content_type)
        body = await _body(request)
        if batch and (problem := batch_size_problem(body)):
            raise Problem(400, problem, [("body", problem)])
        try:
            source = signing_source(request.headers, body, self.sources.by_name.values(), self.clock())
        except SignatureRefused as refused:
            raise Problem(401, str(refused), [(refused.field, refused.message)]) from None
        try:
            events = read_events(body, content_type, request.headers, datetime.now(UTC), self.zone)
        except Rejected as rejected:
            raise Problem(400, rejected.detail, rejected.errors) from None
        self._check_allowed(source, events, batch)
        self._check_rate(source, len(events))
        try:
            await self.sender.publish([Outgoing(e.type, e.id, e.body) for e in events])
        except BrokerBlocked as blocked:
            raise Problem(429, str(blocked), retry_after=BROKER_RETRY_AFTER) from None
        except BrokerUnavailable as away:
            raise Problem(503, str(away), retry_after=BROKER_RETRY_AFTER) from None
        return events

    @staticmethod
    def _check_allowed(source: Source, events: list[ParsedEvent], batch: bool) -> None:
        errors = []
        for index, event in enumerate(events):
            prefix = f"[{index}]." if batch else ""
            if event.envelope.source != source.name:
                errors.append((f"{prefix}source", f"{event.envelope.source!r} is not the signing source "
                                                  f"{source.name!r}"))
            if event.type not in source.types:
                errors.append((f"{prefix}type", f"source {source.name!r} may not send {event.type}"))
        if errors:
            raise Problem(403, f"{errors[0][0]}: {errors[0][1]}", errors)

    def _check_rate(self, source: Source, count: int) -> None:
        bucket = self.buckets[source.name]
        if not bucket.fits(count):  # would never pass: the burst is the rate
            message = (f"{count} events in one request, more than source {source.name!r} may send at once "
                       f"({bucket.rate:g}, its rate_per_second)")
            raise Problem(400, message, [("body", message)])
        wait = bucket.take(count, self.monotonic())
        if wait:
            raise Problem(429, f"source {source.name!r} sends more than {bucket.rate:g} events per second",
                          retry_after=wait)


async def _body(request: Request) -> bytes:
    """The body, refused (413) as soon as it is known to be over the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise _too_large(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_EVENT_BYTES:
            raise _too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int) -> Problem:
    message = f"{size} bytes or more, over the limit of {MAX_EVENT_BYTES}" if size else "too large"
    return Problem(413, message, [("body", message)])


def create_app(sources: Sources, sender: EventSender, zone: tzinfo, *,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The intake app; the sender's connection is closed when the app shuts down."""
    intake = Intake(sources, sender, zone, clock=clock)
    contract = asyncapi_document()
    allowed_rate = str(max(1, math.floor(sources.highest_rate)))

    async def post_events(request: Request) -> Response:
        started = time.monotonic()
        try:
            events = await intake.accept(request)
        except Problem as problem:
            log.info("intake.refused", status=problem.status, detail=problem.detail,
                     webhook_id=request.headers.get("webhook-id"), ms=_ms(started))
            return problem.response()
        log.info("intake.accepted", events=len(events), source=events[0].envelope.source,
                 ids=[e.id for e in events[:10]], webhook_id=request.headers.get("webhook-id"), ms=_ms(started))
        return JSONResponse({"status": "accepted", "ids": [e.id for e in events]}, status_code=202)

    async def handshake(request: Request) -> Response:
        origin = request.headers.get("webhook-request-origin")
        if not origin:
            return Problem(400, "WebHook-Request-Origin: missing (the CloudEvents webhook handshake)",
                           [("WebHook-Request-Origin", "missing")]).response()
        # Every POST is signed, so any origin may deliver: the handshake consents and echoes it.
        return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin,
                                                  "WebHook-Allowed-Rate": allowed_rate, "Allow": "POST, OPTIONS"})

    async def contract_json(request: Request) -> Response:
        return JSONResponse(contract)

    async def healthz(request: Request) -> Response:
        if await sender.reachable():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "detail": "the broker is unreachable"}, status_code=503)

    return Starlette(
        routes=[Route("/events", _guarded(post_events), methods=["POST"]),
                Route("/events", handshake, methods=["OPTIONS"]),
                Route("/asyncapi.json", contract_json, methods=["GET"]),
                Route("/healthz", healthz, methods=["GET"])],
        lifespan=lambda app: _closing(sender),
    )


@contextlib.asynccontextmanager
async def _closing(sender: EventSender) -> AsyncIterator[None]:
    yield
    await sender.close()


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A route that answers an unexpected error with a problem document (500) and logs it, never a trace."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception:
            log.exception("intake.failed")
            detail = "the intake failed on this request; send it again (its event ids keep it from counting twice)"
            return Problem(500, detail).response()

    return guarded


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
