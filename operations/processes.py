"""What the CLI needs of the worker side to start or check the long-running processes (`hrsync bridge`,
`hrsync check`, the demo's worker), so that `cli/` never imports `workers/`."""

from __future__ import annotations

from typing import Any

from shared.runtime.stopping import StopFlag


def celery_conf() -> Any:
    """The configured Celery app's settings (what the self-check inspects)."""
    from workers.app import app

    return app.conf


def worker_queues() -> tuple[str, ...]:
    """Every queue a worker of all stages consumes (each registered stage's, then the workflow's)."""
    from workers.queues import stage_queues

    return stage_queues()


def run_bridge(stop_flag: StopFlag | None = None) -> None:
    """Consume `hrsync.bridge` and launch a workflow per event until SIGTERM (`workers.bridge`; `stop_flag`
    as it takes it)."""
    from workers.bridge import run_bridge as bridge

    bridge(stop_flag=stop_flag)
