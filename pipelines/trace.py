"""An execution's trace: its stage rows on a time axis, grouped by the stage declarations (pure, no I/O).

`trace_of(execution, rows, events)` is the one model that `hrsync trace` (text and `--json`), the console's
waterfall (`web/waterfall.py`, `/api/executions/{id}/trace`) and `hrsync demo`'s trace table render. Every
row is a `Bar` (milliseconds from the execution's start); bars are grouped into `Step`s: a control step by
its shard name (`@plan`, `@plan-days`, `@done`, `@start`, …), a stage's work shards by their kind's trace
label (`Stage.group_of`: extract's `ranges`, merge's `imports` and `days`, notify's `batches`, …). A stage
this process has no declaration of (the workflow, the failure notice, a stage registered only elsewhere)
groups its work shards as `shards`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines import registry
from pipelines.stage import Stage
from shared.records.shards import is_control
from shared.records.views import shown_error

TRACE_ERROR_LIMIT = 200  # characters of a row's error on a bar
UNDECLARED = "shards"  # the group of the work shards of a stage without a declaration here
WORSE_FIRST = ("failed", "running", "retrying")  # a step shows the worst of its shards' latest statuses


@dataclass(frozen=True)
class Bar:
    """One stage row (stage, shard, attempt) on the axis: offset and duration in ms, its error as shown, and
    the step it is grouped in."""

    stage: str
    shard: str
    attempt: int
    status: str
    offset_ms: int
    duration_ms: int
    error: str | None
    step: str

    @property
    def end_ms(self) -> int:
        return self.offset_ms + self.duration_ms

    @property
    def name(self) -> str:
        """The shard, and `#<attempt>` from the second attempt on."""
        return self.shard + (f" #{self.attempt}" if self.attempt > 1 else "")

    @property
    def label(self) -> str:
        """`<stage> <shard>`, and `#<attempt>` from the second attempt on."""
        return f"{self.stage} {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "shard": self.shard, "attempt": self.attempt, "status": self.status,
                "offset_ms": self.offset_ms, "duration_ms": self.duration_ms, "error": self.error, "step": self.step}


@dataclass(frozen=True)
class Step:
    """A planner, a final step, a workflow step, or all shards of one group of a stage: when (from the first
    bar's start to the last one's end), how busy (the bars' durations added up), how parallel (the most bars
    running at once) and how it went (`status`: the worst of each shard's latest attempt)."""

    stage: str
    name: str
    bars: tuple[Bar, ...]

    @property
    def offset_ms(self) -> int:
        return min(b.offset_ms for b in self.bars)

    @property
    def end_ms(self) -> int:
        return max(b.end_ms for b in self.bars)

    @property
    def wall_ms(self) -> int:
        return self.end_ms - self.offset_ms

    @property
    def busy_ms(self) -> int:
        return sum(b.duration_ms for b in self.bars)

    @property
    def parallel(self) -> int:
        """The most bars running at the same time (one ending as another starts does not overlap it)."""
        edges = sorted([(b.offset_ms, 1) for b in self.bars] + [(b.end_ms, -1) for b in self.bars])
        running = most = 0
        for _, change in edges:
            running += change
            most = max(most, running)
        return most

    @property
    def status(self) -> str:
        latest: dict[str, Bar] = {}
        for bar in self.bars:
            if bar.shard not in latest or bar.attempt >= latest[bar.shard].attempt:
                latest[bar.shard] = bar
        statuses = {bar.status for bar in latest.values()}
        return next((s for s in WORSE_FIRST if s in statuses), "succeeded" if statuses == {"succeeded"}
                    else self.bars[-1].status)

    @property
    def single(self) -> bool:
        """A step of one row named as its shard (a control step run once): nothing to group."""
        return len(self.bars) == 1 and self.bars[0].shard == self.name

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "step": self.name, "rows": len(self.bars), "status": self.status,
                "offset_ms": self.offset_ms, "wall_ms": self.wall_ms, "busy_ms": self.busy_ms,
                "parallel": self.parallel}


@dataclass(frozen=True)
class Trace:
    """An execution's bars (in the rows' order: their start) and steps (in the order they started); `start`
    is the axis' origin, `total_ms` its length, `events` the events the execution serves."""

    execution_id: str
    status: str
    start: dt.datetime
    total_ms: int
    events: tuple[str, ...]
    bars: tuple[Bar, ...]
    steps: tuple[Step, ...]

    def to_json(self) -> dict[str, Any]:
        """`hrsync trace --json` and `/api/executions/{id}/trace` (`start` as a datetime: `jsonable` it)."""
        return {"execution_id": self.execution_id, "status": self.status, "start": self.start,
                "total_ms": self.total_ms, "events": list(self.events), "bars": [b.to_json() for b in self.bars],
                "steps": [s.to_json() for s in self.steps]}


def step_of(stage: str, shard: str, declared: Mapping[str, Stage]) -> str:
    """The step a row belongs to: its stage's group of the shard (`Stage.group_of`), or for a stage without a
    declaration here the control step's name, else `shards`."""
    if stage in declared:
        return declared[stage].group_of(shard)
    return shard if is_control(shard) else UNDECLARED


def trace_of(execution: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]] = (),
             declared: Mapping[str, Stage] | None = None, now: dt.datetime | None = None) -> Trace:
    """The trace of `execution` from its stage rows (`execution`, `rows` and the `events` it serves as
    `find_execution`, `stage_rows` and `served_events` return them). `declared`: the stage declarations
    (the registry's by default); `now`: where a running row's bar ends (the current time by default). Rows
    that never started are left out."""
    stages = registry.BY_NAME if declared is None else declared
    now = now or dt.datetime.now(dt.UTC)
    started = [r for r in rows if r["started_at"] is not None]
    starts = [r["started_at"] for r in started]
    origin = execution["started_at"] or (min(starts) if starts else execution["created_at"])
    ends = [r["finished_at"] or now for r in started] + [execution["finished_at"] or origin]
    total = max(1, _ms(max(ends) - origin)) if started else 1
    bars = []
    for r in started:
        begin, end = _ms(r["started_at"] - origin), _ms((r["finished_at"] or now) - origin)
        error = shown_error(r["error_message"], TRACE_ERROR_LIMIT)
        bars.append(Bar(str(r["stage"]), str(r["shard"]), int(r["attempt"]), str(r["status"]), max(0, begin),
                        max(0, end - begin), f"{r['error_type']}: {error}" if r["error_type"] else None,
                        step_of(str(r["stage"]), str(r["shard"]), stages)))
    grouped: dict[tuple[str, str], list[Bar]] = {}
    for bar in bars:
        grouped.setdefault((bar.stage, bar.step), []).append(bar)
    steps = sorted((Step(stage, name, tuple(members)) for (stage, name), members in grouped.items()),
                   key=lambda step: step.offset_ms)  # stable: steps starting together keep the rows' order
    return Trace(str(execution["id"]), str(execution["status"]), origin, total,
                 tuple(str(e["event_id"]) for e in events), tuple(bars), tuple(steps))


def _ms(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() * 1000)
