"""Task shells, derived from the stage declarations (`pipelines.registry.STAGES`): decode arguments →
`run_stage(step coroutine)` → small JSON result.

For each stage and each of its phases: a planner task (`hrsync.<stage>.<planner>`) that replaces itself
with a chord of the phase's shard task (`hrsync.<stage>.<worker>`) and what follows (the next phase's
planner, or the final step `hrsync.<stage>.done`). The names are stable: queued messages use them. See
`workers/canvas.py` for how the stages are chained, and `workers.tasks.STAGE_TASKS` for the tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import Task, chord
from celery.canvas import Signature

from pipelines import registry
from pipelines.probe import probe_app_db
from pipelines.stage import Phase, Plan, Stage, StageResult, StepFn
from shared.events.coalesce import COALESCED
from shared.records.executions import (
    CLAIMED_BY,
    FAILURE_STAGE,
    WORKFLOW,
    Holds,
    claim_execution,
    finish_execution,
)
from shared.records.shards import ShardKind
from shared.records.status import OPEN, ExecutionStatus
from workers.app import app
from workers.stage_task import StageTask, claimed_here, kind_holds


def fan_out(task: Task, shards: list[Signature], then: Signature) -> Any:
    """Replace `task` by a chord of `shards` with `then` as its body (or by `then` alone)."""
    raise task.replace(chord(shards, then) if shards else then)


# -- workflow ------------------------------------------------------------------------------------------

class WorkflowTask(StageTask):
    """The claim and the finish: retried and recorded like stage steps (stage `workflow`), so a transient
    error there never leaves an execution pending or running for good."""

    abstract = True
    stage = WORKFLOW
    opens_execution = False  # `start` claims: pending → running once, by one canvas

    def resumes(self, done: StageResult) -> bool:
        """A `start` goes on only when it is the one that claimed (a redelivery of the same canvas)."""
        if self.name == start.name:
            return bool(done.output.get(CLAIMED_BY) == self.request.id)
        return super().resumes(done)


async def claim_step(execution_id: str, task_id: str, one_running: tuple[str, ...] = (), holds: Holds = None,
                     parked: Mapping[str, Any] | None = None) -> StageResult:
    """The `start` step: claim the execution (see `claim_execution`)."""
    outcome = await claim_execution(execution_id, task_id, one_running, holds, parked)
    return StageResult(output={CLAIMED_BY: task_id, "claim": outcome})


async def finish_step(execution_id: str, stages: list[str]) -> StageResult:
    """The `finish` step: the execution succeeds with its summary (see `finish_execution`)."""
    return StageResult(output=await finish_execution(execution_id, stages))


@app.task(base=WorkflowTask, bind=True, name="hrsync.workflow.start", queue="hrsync.workflow")
def start(self: StageTask, execution_id: str, woken: bool = False) -> dict[str, Any]:
    """Claim the execution (pending → running). Another launch of the same execution stops here; a
    redelivered `start` of the canvas that claimed it goes on. A coalesced kind runs one execution at a
    time through its exclusive stages: while another of its kind holds it, the claim parks this message
    on the execution's `@start` row and waits; the step that releases the kind sends a copy (`woken`) at
    once, and this message is sent again after `DEFER_SECONDS` as the safety net. A `woken` copy that
    finds the kind taken again is dropped (the parked message still waits)."""
    parked = None if woken else self.parked_copy()
    claimed = self.run_stage(execution_id, ShardKind.START,
                             claim_step(execution_id, self.request.id, COALESCED, kind_holds(), parked), control=True)
    if woken:
        claimed_here(execution_id)
    return claimed


@app.task(base=WorkflowTask, bind=True, name="hrsync.workflow.finish", queue="hrsync.workflow")
def finish(self: StageTask, execution_id: str, stages: list[str]) -> dict[str, Any]:
    """Mark the execution succeeded with its summary (a cancelled execution stays cancelled)."""
    return self.run_stage(execution_id, ShardKind.FINISH, finish_step(execution_id, stages), control=True)


@app.task(base=StageTask, bind=True, name="hrsync.probe", stage="probe", queue="hrsync.workflow", ignore_result=False)
def probe(self: StageTask, execution_id: str, shard: str = "-", sleep_seconds: float = 0.0) -> dict[str, Any]:
    """Read the app DB through the runner: the plumbing check."""
    return self.run_stage(execution_id, shard, probe_app_db(sleep_seconds))


# -- the stages, from their declarations -----------------------------------------------------------------

@dataclass(frozen=True)
class StageTasks:
    """The Celery tasks of one stage: its planners (the first starts the stage) and its final step."""

    planners: tuple[Task, ...]
    workers: tuple[Task, ...]
    done: Task

    @property
    def first(self) -> Task:
        return self.planners[0]


def _done_task(stage: Stage) -> Task:
    @app.task(base=StageTask, bind=True, name=stage.task_name("done"), stage=stage.name, queue=stage.queue)
    def done(self: StageTask, execution_id: str) -> Any:
        """The stage's final step (`Stage.finish`): fold the shards' outputs."""
        return self.run_stage(execution_id, ShardKind.DONE, stage.finish(execution_id), control=True)

    return done


def _worker_task(stage: Stage, phase: Phase) -> Task:
    @app.task(base=StageTask, bind=True, name=stage.task_name(phase.worker), stage=stage.name, queue=stage.queue,
              ignore_result=False)  # a chord's header: the chord counts its results
    def work(self: StageTask, execution_id: str, shard: dict[str, Any], params: dict[str, Any] | None = None) -> Any:
        """One shard of the phase (`Phase.work`), as planned."""
        # `params`: only in messages queued by a release whose extract shards did not carry their inputs.
        planned = shard if params is None or "params" in shard or "range" not in shard else {**shard, "params": params}
        return self.run_stage(execution_id, str(shard["key"]), phase.work(execution_id, planned))

    return work


class PlannerTask(StageTask):
    """A phase's planner. Its plan may be followed by an inline shard (and the stage's final step) in the
    same task: a retry of the task after such a step failed goes on past its already recorded plan."""

    abstract = True

    def resumes(self, done: StageResult) -> bool:
        """A redelivered planner (as for any control step) or a retried one (its inline step failed) goes on."""
        return int(self.request.retries) > 0 or super().resumes(done)


def _planner_task(stage: Stage, phase: Phase, worker: Task, then: Task, done: Task) -> Task:
    @app.task(base=PlannerTask, bind=True, name=stage.task_name(phase.planner), stage=stage.name, queue=stage.queue)
    def plan(self: StageTask, execution_id: str) -> Any:
        """Plan the phase's shards (`Phase.plan`), then fan out to them and what follows. A plan of at most
        one shard runs it here, with no chord; when the stage's final step follows, it runs here too and the
        chain goes on from this task's return."""
        plan = Plan.from_json(self.run_stage(execution_id, phase.plan_shard, phase.plan(execution_id),
                                             control=True)["output"])
        if len(plan.todo) > 1:
            return fan_out(self, [worker.si(execution_id, s) for s in plan.todo], then.si(execution_id))
        for shard in plan.todo:
            self.run_stage(execution_id, str(shard["key"]), phase.work(execution_id, shard))
        if then is not done:
            return fan_out(self, [], then.si(execution_id))
        return self.run_stage(execution_id, ShardKind.DONE, stage.finish(execution_id), control=True)

    return plan


def _failure_task(stage: Stage, hook: StepFn) -> Task:
    @app.task(base=StageTask, bind=True, name=stage.task_name(Stage.FAILURE_STEP), stage=FAILURE_STAGE,
              queue=stage.queue, runs_when=(*OPEN, ExecutionStatus.FAILED), reports_failure=False)
    def on_failure(self: StageTask, execution_id: str) -> Any:
        """The stage's failure hook (`Stage.on_failure`) for a failed execution, e.g. the sync_failed notice."""
        return self.run_stage(execution_id, ShardKind.FAILURE, hook(execution_id))

    return on_failure


def _stage_tasks(stage: Stage) -> StageTasks:
    done = _done_task(stage)
    workers = tuple(_worker_task(stage, phase) for phase in stage.phases)
    planners: list[Task] = []
    then = done
    for phase, worker in reversed(list(zip(stage.phases, workers, strict=True))):
        then = _planner_task(stage, phase, worker, then, done)
        planners.insert(0, then)
    return StageTasks(tuple(planners), workers, done)


STAGE_TASKS = {stage.name: _stage_tasks(stage) for stage in registry.STAGES}
FAILURE_TASKS = {stage.name: _failure_task(stage, stage.on_failure) for stage in registry.STAGES if stage.on_failure}
