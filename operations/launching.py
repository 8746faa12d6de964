"""A period's close and the launch of its export, for the CLI, the console and the demo.

With an event plane the close publishes `hrsync.period.closed` and the bridge launches the export. The
embedded defaults (the demo, and the console on its run) have a Celery transport but no RabbitMQ event
plane: there the close's event is admitted and launched in-process (`operations.event_requests`), exactly
as the bridge would, so the same event id is admitted once.
"""

from __future__ import annotations

from typing import Any

from operations.closing import close_month, close_period, period_info
from operations.event_requests import admit_and_launch
from pipelines.monthend.period import Period
from shared.config.settings import get_settings
from shared.runtime.runner import run_async


def close_and_export(period: Period, reason: str, *, force: bool, actor: str, via: str) -> dict[str, Any]:
    """`period close`: with an event plane, the close publishes `hrsync.period.closed` (the bridge launches
    the export); without one (embedded defaults), its event is admitted and launched here.

    Returns `period_info` with `event_id` (and `execution_id` when launched here).
    """
    if get_settings().event_plane_url() is None:
        event = run_async(close_month(period, reason, force=force, actor=actor, via=via))
        execution_id = run_async(admit_and_launch(event))
        return {**run_async(period_info(period)), "event_id": event.id, "execution_id": execution_id}
    return run_async(close_period(period, reason, force=force, actor=actor, via=via))
