"""The watchdogs' home: every worker process runs a round (`pipelines.watchdogs.run_watchdogs`) every
`WATCHDOG_SECONDS`, from `worker_ready` until shutdown.

Workers, not the scheduler: the nightly-deadline alert must fire when the scheduler is down, and a worker
can send mail. Several workers (or processes) running rounds at once still mail each alert once: the alert
row and its mail are inserted in one transaction keyed by the alert.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from celery import signals

from pipelines.watchdogs import run_watchdogs
from shared.runtime.runner import run_async
from shared.runtime.stopping import StopFlag

log = structlog.get_logger(__name__)
WATCHDOG_SECONDS = 30.0  # between rounds (the first one too: a worker's start is busy enough)
_stopping = StopFlag()


def watch(stopping: StopFlag, every: float = WATCHDOG_SECONDS) -> None:
    """Run a round every `every` seconds until `stopping` is set; a failed round is logged, not raised."""
    while not stopping.wait(every):
        try:
            run_async(run_watchdogs(), timeout=every * 4)
        except Exception as exc:
            log.warning("watchdog.round_failed", error=f"{type(exc).__name__}: {exc}"[:300])


@signals.worker_ready.connect
def _start_watchdogs(**_: Any) -> None:
    threading.Thread(target=watch, args=(_stopping,), name="hrsync-watchdogs", daemon=True).start()


@signals.worker_shutting_down.connect
def _stop_watchdogs(**_: Any) -> None:
    _stopping.set()
