"""An event's execution created and launched in-process, the way the bridge does it, where no event plane runs.

The embedded defaults (the demo, and the console on its run) have a Celery transport but no RabbitMQ event
plane: an event hrsync raises itself there (a period's close) is admitted and launched here instead of
being published. The same event id is admitted once, as through the bridge.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipelines.export.closing import close_month, close_period, period_info
from pipelines.export.period import Period
from pipelines.plans import request_for
from shared.config.errors import ConfigError
from shared.config.settings import get_settings
from shared.events.inbox import admit_event, mark_launched
from shared.events.models import Event, parse_event
from shared.runtime.runner import run_async
from workers.canvas import launch


def admit_and_launch(event: Event) -> str:
    """Event → request → inbox + execution rows → the canvas on the broker; the execution's id.

    Refuses (`InvalidEvent`) what the bridge would dead-letter."""
    body = event.to_json_bytes()
    parsed = parse_event(body)
    request = request_for(parsed, dt.datetime.now(dt.UTC), get_settings().zone)
    admission = run_async(admit_event(parsed.id, parsed.type, parsed.envelope.source, body, kind=request.kind,
                                      trigger=request.trigger, params=request.params))
    if not admission.launched:  # a second admission of the same id launches nothing
        launch(admission.execution_id, request.params["stages"])
        run_async(mark_launched(parsed.id))
    return admission.execution_id


def close_and_export(period: Period, reason: str, *, force: bool, actor: str, via: str) -> dict[str, Any]:
    """`period close`: with an event plane, the close publishes `hrsync.period.closed` (the bridge launches
    the export); without one (embedded defaults), its event is admitted and launched here.

    Returns `period_info` with `event_id` (and `execution_id` when launched here).
    """
    try:
        get_settings().events()
    except ConfigError:
        event = run_async(close_month(period, reason, force=force, actor=actor, via=via))
        execution_id = admit_and_launch(event)
        return {**run_async(period_info(period)), "event_id": event.id, "execution_id": execution_id}
    return run_async(close_period(period, reason, force=force, actor=actor, via=via))
