"""Task shells: decode arguments → `run_stage(step coroutine)` → small JSON result.

Each stage is a planner that replaces itself with a chord of shards and a final step, so the
fan-out is planned at run time from the data; see `workers/canvas.py` for how they are chained.
"""

from __future__ import annotations

from typing import Any

from celery import Task, chord
from celery.canvas import Signature

from pipelines import steps
from pipelines.probe import probe_app_db
from shared.records.executions import CLAIMED_BY, StageResult, claim_step, finish_step
from shared.records.shards import ShardKind
from shared.records.status import OPEN, ExecutionStatus
from workers.app import app
from workers.stage_task import FAILURE_NOTICE_TASK, StageTask

PLAN, DAYS_PLAN, DONE = steps.PLAN, steps.DAYS_PLAN, steps.DONE


def fan_out(task: Task, shards: list[Signature], then: Signature) -> Any:
    """Replace `task` by a chord of `shards` with `then` as its body (or by `then` alone)."""
    raise task.replace(chord(shards, then) if shards else then)


# -- workflow ------------------------------------------------------------------------------------------

class WorkflowTask(StageTask):
    """The claim and the finish: retried and recorded like stage steps (stage `workflow`), so a transient
    error there never leaves an execution pending or running for good."""

    abstract = True
    stage = "workflow"
    opens_execution = False  # `start` claims: pending → running once, by one canvas

    def resumes(self, done: StageResult) -> bool:
        """A `start` goes on only when it is the one that claimed (a redelivery of the same canvas)."""
        if self.name == start.name:
            return bool(done.output.get(CLAIMED_BY) == self.request.id)
        return super().resumes(done)


@app.task(base=WorkflowTask, bind=True, name="hrsync.workflow.start", queue="hrsync.workflow")
def start(self: StageTask, execution_id: str) -> dict[str, Any]:
    """Claim the execution (pending → running). Another launch of the same execution stops here; a
    redelivered `start` of the canvas that claimed it goes on."""
    return self.run_stage(execution_id, ShardKind.START, claim_step(execution_id, self.request.id), control=True)


@app.task(base=WorkflowTask, bind=True, name="hrsync.workflow.finish", queue="hrsync.workflow")
def finish(self: StageTask, execution_id: str, stages: list[str]) -> dict[str, Any]:
    """Mark the execution succeeded with its summary (a cancelled execution stays cancelled)."""
    return self.run_stage(execution_id, ShardKind.FINISH, finish_step(execution_id, stages), control=True)


@app.task(base=StageTask, bind=True, name="hrsync.probe", stage="probe", queue="hrsync.workflow")
def probe(self: StageTask, execution_id: str, shard: str = "-", sleep_seconds: float = 0.0) -> dict[str, Any]:
    """Read the app DB through the runner: the plumbing check."""
    return self.run_stage(execution_id, shard, probe_app_db(sleep_seconds))


# -- extract -------------------------------------------------------------------------------------------

@app.task(base=StageTask, bind=True, name="hrsync.extract.plan", stage="extract", queue="hrsync.extract")
def extract_plan(self: StageTask, execution_id: str) -> Any:
    """Plan the HRIS key-range shards, then fan out."""
    plan = self.run_stage(execution_id, PLAN, steps.plan_extract(execution_id), control=True)["output"]
    return fan_out(self, [extract_shard.si(execution_id, s, plan["params"]) for s in plan["todo"]],
                   extract_done.si(execution_id))


@app.task(base=StageTask, bind=True, name="hrsync.extract.shard", stage="extract", queue="hrsync.extract")
def extract_shard(self: StageTask, execution_id: str, shard: dict[str, Any], params: dict[str, Any]) -> Any:
    """Extract one key range of employees."""
    return self.run_stage(execution_id, shard["key"], steps.extract_shard(execution_id, shard, params))


@app.task(base=StageTask, bind=True, name="hrsync.extract.done", stage="extract", queue="hrsync.extract")
def extract_done(self: StageTask, execution_id: str) -> Any:
    """Commit the watermark and sum up the extract."""
    return self.run_stage(execution_id, DONE, steps.finish_extract(execution_id), control=True)


# -- merge ---------------------------------------------------------------------------------------------

@app.task(base=StageTask, bind=True, name="hrsync.merge.plan", stage="merge", queue="hrsync.merge")
def merge_plan(self: StageTask, execution_id: str) -> Any:
    """Plan the BioStar import windows, then fan out."""
    plan = self.run_stage(execution_id, PLAN, steps.plan_merge(execution_id), control=True)["output"]
    return fan_out(self, [merge_import.si(execution_id, s) for s in plan["todo"]], merge_days.si(execution_id))


@app.task(base=StageTask, bind=True, name="hrsync.merge.import", stage="merge", queue="hrsync.merge")
def merge_import(self: StageTask, execution_id: str, shard: dict[str, Any]) -> Any:
    """Import one window of BioStar logs into punches."""
    return self.run_stage(execution_id, shard["key"], steps.import_window(execution_id, shard))


@app.task(base=StageTask, bind=True, name="hrsync.merge.days", stage="merge", queue="hrsync.merge")
def merge_days(self: StageTask, execution_id: str) -> Any:
    """Plan the (days x department) shards to recompute, then fan out."""
    plan = self.run_stage(execution_id, DAYS_PLAN, steps.plan_merge_days(execution_id), control=True)["output"]
    return fan_out(self, [merge_shard.si(execution_id, s) for s in plan["todo"]], merge_done.si(execution_id))


@app.task(base=StageTask, bind=True, name="hrsync.merge.shard", stage="merge", queue="hrsync.merge")
def merge_shard(self: StageTask, execution_id: str, shard: dict[str, Any]) -> Any:
    """Recompute the attendance days of one shard."""
    return self.run_stage(execution_id, shard["key"], steps.merge_shard(execution_id, shard))


@app.task(base=StageTask, bind=True, name="hrsync.merge.done", stage="merge", queue="hrsync.merge")
def merge_done(self: StageTask, execution_id: str) -> Any:
    """Sum up the merge."""
    return self.run_stage(execution_id, DONE, steps.finish_merge(execution_id), control=True)


# -- notify --------------------------------------------------------------------------------------------

class NotifyTask(StageTask):
    """Mail tasks: a temporary mail failure (4xx, server away) is transient; a setup error fails at once."""

    abstract = True
    stage = "notify"


@app.task(base=NotifyTask, bind=True, name="hrsync.notify.plan", queue="hrsync.notify")
def notify_plan(self: StageTask, execution_id: str) -> Any:
    """Build the outbox, then fan out the send batches."""
    plan = self.run_stage(execution_id, PLAN, steps.plan_notify(execution_id), control=True)["output"]
    return fan_out(self, [notify_send.si(execution_id, s) for s in plan["todo"]], notify_done.si(execution_id))


@app.task(base=NotifyTask, bind=True, name="hrsync.notify.send", queue="hrsync.notify")
def notify_send(self: StageTask, execution_id: str, shard: dict[str, Any]) -> Any:
    """Send one batch of outbox messages."""
    return self.run_stage(execution_id, shard["key"], steps.send_batch(execution_id, shard))


@app.task(base=NotifyTask, bind=True, name="hrsync.notify.done", queue="hrsync.notify")
def notify_done(self: StageTask, execution_id: str) -> Any:
    """Sum up the notify stage."""
    return self.run_stage(execution_id, DONE, steps.finish_notify(execution_id), control=True)


@app.task(base=NotifyTask, bind=True, name=FAILURE_NOTICE_TASK, stage="notify_failure", queue="hrsync.notify",
          runs_when=(*OPEN, ExecutionStatus.FAILED), reports_failure=False)
def notify_failure(self: StageTask, execution_id: str) -> Any:
    """Queue and send the sync_failed notice of a failed execution."""
    return self.run_stage(execution_id, "@failure", steps.notify_failure(execution_id))
