"""`hrsync sync --wait`: follow an event's execution to its end with a progress bar."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.config.errors import HrsyncError
from shared.events.inbox import inbox_entry
from shared.records.queries import get_execution, get_stages
from shared.records.shards import is_control
from shared.records.status import TERMINAL, ExecutionStatus, StageStatus
from shared.runtime.runner import run_async

POLL_SECONDS = 0.5
ENDED = (StageStatus.SUCCEEDED, StageStatus.FAILED)


def _progress_counts(stages: list[dict[str, object]]) -> tuple[int, int]:
    """(finished, known) units of work: every shard row, plus the shards planners announced (a planner's row:
    one of its stage's declared `plan_shards`)."""
    from pipelines import registry  # the stages' modules: only once there is something to follow

    planners = {(stage.name, shard) for stage in registry.STAGES for shard in stage.plan_shards}
    announced = sum(int(str(s["rows_out"] or 0)) for s in stages if (s["stage"], s["shard"]) in planners)
    finished = sum(1 for s in stages if s["status"] in ENDED and not is_control(str(s["shard"])))
    return finished, max(announced, finished)


def follow_event(event_id: str, console: Console, timeout: float) -> str:
    """Wait for the bridge to admit `event_id`, then follow its execution; return the final status."""
    return _follow(event_id, None, console, timeout)


def follow_execution(execution_id: str, console: Console, timeout: float) -> str:
    """Follow an execution (e.g. a replay) to its end; return the final status."""
    return _follow(None, execution_id, console, timeout)


def _follow(event_id: str | None, execution_id: str | None, console: Console, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        bar = progress.add_task("waiting for the bridge", total=None)
        while time.monotonic() < deadline:
            if execution_id is None:
                entry = run_async(inbox_entry(event_id)) if event_id else None
                execution_id = entry["execution_id"] if entry else None
                if execution_id is None:
                    time.sleep(POLL_SECONDS)
                    continue
            execution = run_async(get_execution(execution_id))
            stages = run_async(get_stages(execution_id))
            finished, known = _progress_counts(stages)
            status = execution["status"] if execution else ExecutionStatus.PENDING
            current = stages[-1]["stage"] if stages else "-"
            progress.update(bar, description=f"{execution_id[:8]} {status} ({current})", completed=finished,
                            total=known or None)
            if status in TERMINAL:  # cancelled too: nothing of it runs any more
                where = (f" at {execution['failed_stage']}: {execution['error']}"
                         if execution and status == ExecutionStatus.FAILED else "")
                console.print(f"execution {execution_id} {status}{where}")
                return str(status)
            time.sleep(POLL_SECONDS)
    raise HrsyncError(f"gave up after {timeout:.0f} s: execution {execution_id or '(not admitted yet)'} still open")
