"""Work that hrsync asks for itself by event (a punch correction's recompute, the demo's nightly).

With an event plane (HRSYNC_EVENTS_URL, or an AMQP broker) the event is published there and the bridge
admits it like any other. On the embedded defaults (`hrsync demo`: no AMQP server, so no bridge) it is
admitted here exactly as the bridge admits it (inbox row, execution, coalescing, one execution per id)
and its canvas goes to the embedded Celery transport, where the demo's worker runs it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipelines.plans import request_for
from shared.config.settings import get_settings
from shared.events.bus import publish_once
from shared.events.inbox import admit_event, mark_launched
from shared.events.models import Event, parse_event
from shared.runtime.clock import utcnow
from workers.canvas import launch


async def admit_and_launch(event: Event) -> str:
    """Admit `event` as the bridge does and send its execution's canvas unless it was sent already (the same
    id admitted again launches nothing new); the execution's id."""
    body = event.to_json_bytes()
    parsed = parse_event(body)
    request = request_for(parsed, utcnow(), get_settings().zone)
    admission = await admit_event(parsed.id, parsed.type, parsed.envelope.source, body, kind=request.kind,
                                  trigger=request.trigger, params=request.params)
    if not admission.launched:
        # Celery's publish blocks (and confirms): off the runner's loop
        await asyncio.to_thread(launch, admission.execution_id, request.params["stages"])
        await mark_launched(parsed.id)
    return admission.execution_id


async def request_event(event: Event) -> dict[str, Any]:
    """Publish `event` to the event plane, or admit and launch it here on the embedded defaults.

    Returns `{"event_id", "execution_id"}`; the execution id is None when the bridge will admit the event
    (`inbox_entry(event_id)` finds it then). A broker that does not take it raises (`PublishError`).
    """
    url = get_settings().event_plane_url()
    if url is None:
        return {"event_id": event.id, "execution_id": await admit_and_launch(event)}
    await asyncio.to_thread(publish_once, url, event)  # pika blocks: keep it off the runner's loop
    return {"event_id": event.id, "execution_id": None}
