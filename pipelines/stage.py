"""How a stage is declared, once: its name, queue, planners, shard steps, final step, kinds of shards (with
their trace labels), inputs per scope, how its inputs join when events coalesce, and what every step returns.

    Stage(name, queue, phases=(Phase(planner, plan_shard, plan, worker, work), …), finish, shard_kinds, …)

A stage runs its phases in turn: each phase's planner (a control step, shard `@plan` or `@plan-days`)
returns a `Plan` of shards, the phase's shard step runs once per shard, then the next phase's planner or
the stage's final step (`@done`). The Celery task shells (`workers/tasks.py`, task names
`hrsync.<stage>.<step>`), the canvas, the replay planner and the trace's grouping are derived from the
declarations registered in `pipelines.registry.STAGES`; nothing here imports Celery.

Every shard step gets its inputs the same way: the execution's inputs snapshot (`stage_params`) and the
shard as planned (a typed value, `Shard.from_json` of what the message carries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.config.errors import HrsyncError
from shared.events.coalesce import Join
from shared.records.queries import get_execution, succeeded_outputs
from shared.records.shards import ShardKind, is_control, shard_name

MAX_SHARDS = 2000  # the most one planner may fan out: far above real plans, far below what eats a worker


@dataclass
class StageResult:
    """What a step returns: counts for its `execution_stages` row and a small JSON-able `output`."""

    rows_in: int = 0
    rows_out: int = 0
    output: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The task's result, and what the step's row records (`shared.records.executions.StepResult`)."""
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "output": self.output}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageResult:
        """A result as recorded (`as_json`'s shape), e.g. a step that already succeeded."""
        return cls(int(data.get("rows_in") or 0), int(data.get("rows_out") or 0), dict(data.get("output") or {}))


class PlanTooLarge(HrsyncError):
    """A planner produced more shards than `MAX_SHARDS`: a bug or an input past the bounds, never fanned out."""


class Shard(Protocol):
    """A planned shard: its name (`key`, the `execution_stages.shard`) and JSON for the task message."""

    @property
    def key(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass
class Plan:
    """A planner's output: every shard it planned, those still to run (`todo`: no succeeded row in the
    lineage), and what the later steps read (`extra`, e.g. the pinned window, the marks to clear)."""

    shards: list[dict[str, Any]]
    todo: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The recorded output (`execution_stages.result` of the planner's row)."""
        return {**self.extra, "shards": self.shards, "todo": self.todo, "skipped": len(self.shards) - len(self.todo)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        extra = {k: v for k, v in data.items() if k not in ("shards", "todo", "skipped")}
        return cls(list(data.get("shards", [])), list(data.get("todo", [])), extra)

    def result(self) -> StageResult:
        """The planner's stage result (rows in: shards planned, rows out: shards to run)."""
        return StageResult(rows_in=len(self.shards), rows_out=len(self.todo), output=self.to_json())


def plan_of(shards: Sequence[Shard | Mapping[str, Any]], done: Mapping[str, Any], **extra: Any) -> StageResult:
    """The planner's result: `shards` (typed or as JSON), minus those already done (`done`: shard → output,
    as `succeeded_outputs` returns it). Refuses (`PlanTooLarge`) more than `MAX_SHARDS` shards."""
    if len(shards) > MAX_SHARDS:
        raise PlanTooLarge(f"the plan has {len(shards)} shards, more than the ceiling of {MAX_SHARDS}")
    planned = [dict(s) if isinstance(s, Mapping) else s.to_json() for s in shards]
    return Plan(planned, [s for s in planned if s["key"] not in done], extra).result()


async def stage_params(execution_id: str, stage: str) -> dict[str, Any]:
    """The execution's inputs snapshot for `stage` (`executions.params[stage]`; {} when it has none)."""
    execution = await get_execution(execution_id)
    if execution is None:
        raise LookupError(f"execution {execution_id} does not exist")
    return dict((execution["params"] or {}).get(stage) or {})


async def recorded_plan(execution_id: str, stage: str, plan_shard: str) -> dict[str, Any] | None:
    """The planner's recorded output in the execution's lineage (a replay reuses its predecessor's plan)."""
    return (await succeeded_outputs(execution_id, stage)).get(plan_shard)


def sum_outputs(outputs: Any, keys: Sequence[str]) -> dict[str, int]:
    """Per key, the sum over the shards' outputs (a missing count is 0)."""
    return {key: sum(int(out.get(key) or 0) for out in outputs) for key in keys}


StepFn = Callable[[str], Coroutine[Any, Any, StageResult]]
ShardFn = Callable[[str, dict[str, Any]], Coroutine[Any, Any, StageResult]]


@dataclass(frozen=True)
class WorkKind:
    """A kind of a stage's work shards, declared in its folder (`Stage.shard_kinds`), with its label in the
    trace (`group`). Its names are either a `prefix` and a key (`punches:<window>`), or one `name` (the
    kind's only shard, `absences`), or neither: names without a prefix (`E0001..E0200`; a stage's plain kind,
    the first of its `shard_kinds`). Names are recorded and replays read them: never rename a prefix."""

    group: str
    prefix: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if self.prefix and self.name:
            raise ValueError(f"a shard kind has a prefix or a name, not both ({self.prefix!r}, {self.name!r})")
        if is_control(self.prefix or self.name):
            raise ValueError(f"{self.prefix or self.name!r}: '@' starts a control step's name, not a shard's")

    def of(self, key: str = "") -> str:
        """The shard name of this kind for `key` (clipped to the column: `shard_name`)."""
        return self.name or shard_name(f"{self.prefix}{key}")

    def matches(self, shard: str) -> bool:
        """Whether a recorded name is of this kind by its name or prefix (a plain kind matches none: it is
        the kind of what no other kind of its stage matches)."""
        return shard == self.name if self.name else bool(self.prefix) and shard.startswith(self.prefix)


@dataclass(frozen=True)
class Phase:
    """A planner (task `hrsync.<stage>.<planner>`, shard `plan_shard`: `@plan` for the first, a name of the
    stage's own starting with `@` for a later one) and the shard step it fans out to (task
    `hrsync.<stage>.<worker>`; `work(execution_id, shard as JSON)`)."""

    planner: str
    plan_shard: str
    plan: StepFn
    worker: str
    work: ShardFn

    def __post_init__(self) -> None:
        if not is_control(self.plan_shard):
            raise ValueError(f"a planner's shard {self.plan_shard!r} must start with '@' (a control step)")


@dataclass(frozen=True)
class Scope:
    """What an event asks of a workflow, before any stage's inputs (`pipelines.plans` builds it): the scope's
    name and the ranges the event names. Each stage's `inputs` reads it."""

    name: str  # nightly, hris, attendance, employee, punches, export
    employees: list[str] | None = None  # None: everyone
    days: tuple[dt.date, dt.date] | None = None  # local work dates, inclusive
    window: Mapping[str, str] | None = None  # a punches window, UTC ISO `from`/`to`
    devices: list[int] | None = None
    period: str | None = None  # a closed month and its version
    version: int | None = None
    notify: bool = True  # sync.requested's `notify`: false leaves out the mail


def no_inputs(scope: Scope) -> dict[str, Any] | None:
    """A stage that runs in no event's scope (only when a caller lists it)."""
    return None


def day_range(first: dt.date, last: dt.date) -> dict[str, str]:
    """A date range as the snapshot keeps it."""
    return {"from": first.isoformat(), "to": last.isoformat()}


@dataclass(frozen=True)
class Output:
    """A stage's result that later stages may read (`pipelines.outputs`): which stage produces it, its name
    and what it holds. A reader names it in `Stage.reads`; stage folders never import each other."""

    stage: str
    name: str
    holds: str


@dataclass(frozen=True)
class Stage:
    """A stage, declared once. `shard_kinds`: the kinds of its work shards and their trace labels (the first
    is the kind of a name no other kind matches); `replans`: for a stage planned afresh when a
    replay runs it (not from recorded plans), the shards the replay's dry run predicts from the pending
    outbox ids, and what it can only plan later; `reads`: the outputs of earlier stages it uses; `inputs`: whether
    it runs for an event's scope (None: it does not) and its inputs snapshot then (`executions.params[name]`,
    left out when empty); `on_failure`: a step run when any step of an execution fails for good (task
    `hrsync.<stage>.failure` on the stage's queue, shard `@failure`, e.g. notify's `sync_failed` notice);
    `join`: how its inputs grow when events coalesce into one execution (`shared.events.coalesce`; without one, only
    events with the same inputs for it join); `exclusive_until`: for a kind that runs one execution at a time (the
    coalesced kinds), the step of this stage up to which an execution keeps its kind to itself — the stage's final
    step (`@done`, the default: the whole stage), an earlier control step (notify: `@plan`, the outbox build; its
    sends run beside the next execution), or None (the stage never needs its kind to itself). An execution holds its
    kind from its claim until the `exclusive_until` step of the last of its stages that declares one has succeeded
    (docs/workflows.md "One running per kind")."""

    name: str
    queue: str
    phases: tuple[Phase, ...]
    finish: StepFn
    shard_kinds: tuple[WorkKind, ...]
    replans: Callable[[Sequence[int]], tuple[list[str], list[str]]] | None = None
    reads: tuple[Output, ...] = ()
    inputs: Callable[[Scope], dict[str, Any] | None] = no_inputs
    on_failure: StepFn | None = None
    join: Join | None = None
    exclusive_until: ShardKind | None = ShardKind.DONE

    def __post_init__(self) -> None:
        if not self.phases or not self.shard_kinds:
            raise ValueError(f"stage {self.name!r} declares no phase or no kind of shard")

    FAILURE_STEP = "failure"  # the step name of `on_failure`'s task

    def task_name(self, step: str) -> str:
        """The Celery task name of a step (stable: queued messages and deployed workers use it)."""
        return f"hrsync.{self.name}.{step}"

    @property
    def plan_shards(self) -> tuple[str, ...]:
        """The planners' shard names, in order."""
        return tuple(p.plan_shard for p in self.phases)

    @property
    def hold(self) -> tuple[str, str] | None:
        """(stage, shard) of the step whose success ends this stage's hold on its kind (None: no hold)."""
        return None if self.exclusive_until is None else (self.name, self.exclusive_until.value)

    def kind_of(self, shard: str) -> WorkKind | None:
        """The kind of one of this stage's recorded shard names (None: a control step)."""
        if is_control(shard):
            return None
        return next((kind for kind in self.shard_kinds if kind.matches(shard)), self.shard_kinds[0])

    def group_of(self, shard: str) -> str:
        """The trace's group of a shard: a control step by its name, a work shard by its kind's label."""
        kind = self.kind_of(shard)
        return shard if kind is None else kind.group

    def outputs_of(self, outputs: Mapping[str, Any], *kinds: WorkKind) -> list[Any]:
        """Of `succeeded_outputs` of this stage, the outputs of the shards of `kinds`."""
        return [out for key, out in outputs.items() if self.kind_of(key) in kinds]
