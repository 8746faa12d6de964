"""Task shells: decode arguments → `run_stage(stage coroutine)` → small JSON result."""

from __future__ import annotations

from typing import Any

from pipelines.probe import probe_app_db
from workers.app import app
from workers.stage_task import StageTask


@app.task(base=StageTask, bind=True, name="hrsync.probe", stage="probe", queue="hrsync.workflow")
def probe(self: StageTask, execution_id: str, shard: str = "-", sleep_seconds: float = 0.0) -> dict[str, Any]:
    """Read the app DB through the runner: the plumbing check until real stages run."""
    return self.run_stage(execution_id, shard, probe_app_db(sleep_seconds))
