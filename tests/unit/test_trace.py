"""The trace model (`pipelines.trace`): an execution's rows on a time axis, grouped by the stage declarations,
as `hrsync trace`, the console's waterfall and the demo's trace table render it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipelines.registry import BY_NAME
from pipelines.stage import Phase, Stage, StageResult, WorkKind
from pipelines.trace import trace_of
from shared.records.shards import ShardKind
from web.waterfall import waterfall

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(seconds=100)


def row(stage: str, shard: str, start: float, end: float | None, status: str = "succeeded", attempt: int = 1,
        error: tuple[str, str] | None = None) -> dict[str, Any]:
    """A stage row from `start` to `end` seconds after T0 (`end` None: still running)."""
    return {"stage": stage, "shard": shard, "attempt": attempt, "status": status,
            "started_at": T0 + dt.timedelta(seconds=start),
            "finished_at": None if end is None else T0 + dt.timedelta(seconds=end),
            "error_type": error[0] if error else None, "error_message": error[1] if error else None}


def execution(started: float | None = 0, finished: float | None = 60) -> dict[str, Any]:
    return {"id": "x-1", "status": "failed", "created_at": T0 - dt.timedelta(seconds=5),
            "started_at": None if started is None else T0 + dt.timedelta(seconds=started),
            "finished_at": None if finished is None else T0 + dt.timedelta(seconds=finished)}


async def _nothing(execution_id: str, *shard: Any) -> StageResult:
    return StageResult()


SCRATCH = Stage("scratch", "hrsync.scratch", (Phase("plan", ShardKind.PLAN, _nothing, "piece", _nothing),), _nothing,
                (WorkKind("pieces", prefix="piece:"),))
NIGHTLY = [
    row("workflow", "@start", 0, 1),
    row("extract", "@plan", 1, 2),
    row("extract", "('E0', 'E5']", 2, 5), row("extract", "('E5', 'E9']", 2, 4), row("extract", "absences", 4, 6),
    row("extract", "@done", 6, 7),
    row("merge", "@plan", 7, 8), row("merge", "punches:2026-11-30T00:00..2026-12-01T00:00", 8, 10),
    row("merge", "@plan-days", 10, 11),
    row("merge", "2026-11-30..2026-11-30=Ops", 11, 13), row("merge", "leave:2026-11-28..2026-11-28=Ops", 13, 14),
    row("merge", "@done", 14, 15),
    row("notify", "@plan", 15, 16), row("notify", "batch:1-50:50", 16, 17, "retrying", error=("SMTPError", "421")),
    row("notify", "batch:1-50:50", 18, 19, attempt=2), row("notify", "@done", 19, 20),
    row("notify_failure", "@failure", 20, 21), row("scratch", "piece:1", 21, 22, "failed", error=("ValueError", "x")),
]


@pytest.mark.parametrize(("rows", "declared", "steps"), [
    # the product's declarations: control steps by name, work shards by their kind's label, in start order; the
    # failure notice and a stage this process does not declare fall back to `@…` by name and `shards`
    (NIGHTLY, BY_NAME, [("workflow", "@start", 1), ("extract", "@plan", 1), ("extract", "ranges", 3),
               ("extract", "@done", 1), ("merge", "@plan", 1), ("merge", "imports", 1), ("merge", "@plan-days", 1),
               ("merge", "days", 2), ("merge", "@done", 1), ("notify", "@plan", 1), ("notify", "batches", 2),
               ("notify", "@done", 1), ("notify_failure", "@failure", 1), ("scratch", "shards", 1)]),
    # a stage registered with its own kinds (the throwaway stage): its label
    (NIGHTLY[-2:], {**BY_NAME, "scratch": SCRATCH}, [("notify_failure", "@failure", 1), ("scratch", "pieces", 1)]),
    # no declaration at all: everything by name or `shards`
    (NIGHTLY[1:6], {}, [("extract", "@plan", 1), ("extract", "shards", 3), ("extract", "@done", 1)]),
])
def test_rows_group_into_the_declared_steps(rows: list[dict[str, Any]], declared: dict[str, Stage],
                                            steps: list[tuple[str, str, int]]) -> None:
    """Each row's step comes from its stage's declaration (`Stage.group_of`); steps are in start order."""
    trace = trace_of(execution(), rows, declared=declared, now=NOW)
    assert [(s.stage, s.name, len(s.bars)) for s in trace.steps] == steps


@pytest.mark.parametrize(("rows", "figures"), [
    # two ranges overlapping (2..5 and 2..4) and the absences after (4..6): wall 4 s, busy 7 s, 2 at once
    (NIGHTLY[2:5], {"offset_ms": 2000, "wall_ms": 4000, "busy_ms": 7000, "parallel": 2, "status": "succeeded"}),
    # one ending as the next starts does not overlap it
    ([row("merge", "a", 0, 2), row("merge", "b", 2, 3)], {"wall_ms": 3000, "parallel": 1}),
    # a shard retried and then succeeded: the step succeeded (its latest attempt counts)
    (NIGHTLY[13:15], {"status": "succeeded", "busy_ms": 2000, "wall_ms": 3000}),
    # one shard of three failed: the step failed
    ([row("merge", "a", 0, 1), row("merge", "b", 0, 1, "failed"), row("merge", "c", 0, 1)], {"status": "failed"}),
    # a shard still running ends at `now` (100 s)
    ([row("merge", "a", 0, 1), row("merge", "b", 90, None, "running")],
     {"status": "running", "wall_ms": 100_000, "busy_ms": 11_000}),
])
def test_a_step_says_when_how_busy_and_how_parallel(rows: list[dict[str, Any]], figures: dict[str, Any]) -> None:
    """A step's figures: from its first start to its last end, the rows' durations added up, the most at once,
    the worst of each shard's latest attempt."""
    [step] = trace_of(execution(), rows, now=NOW).steps
    assert {key: step.to_json()[key] for key in figures} == figures


@pytest.mark.parametrize(("run", "rows", "origin", "total_ms"), [
    (execution(started=1, finished=30), NIGHTLY[:2], T0 + dt.timedelta(seconds=1), 29_000),  # from its start
    (execution(started=None, finished=None), NIGHTLY[1:3], T0 + dt.timedelta(seconds=1), 4000),  # first row's
    (execution(started=None, finished=None), [], T0 - dt.timedelta(seconds=5), 1),  # nothing ran: its creation
    (execution(finished=None), [row("merge", "a", 0, None, "running")], T0, 100_000),  # up to now
])
def test_the_axis_starts_with_the_execution(run: dict[str, Any], rows: list[dict[str, Any]], origin: dt.datetime,
                                            total_ms: int) -> None:
    """The axis starts at the execution's start (else its first row's, else its creation) and ends with the
    last row or the execution's end."""
    trace = trace_of(run, rows, now=NOW)
    assert (trace.start, trace.total_ms) == (origin, total_ms)


def test_the_json_keeps_the_bars_and_adds_the_steps() -> None:
    """`hrsync trace --json`: every row a bar in the rows' order (as before), the error masked and cut, each bar
    naming its step; the steps beside them."""
    secret = ("OperationalError", "connect to mysql://hr:s3cret@db/app failed " + "x" * 400)
    rows = [row("merge", "@plan", 0, 1), row("merge", "d1", 1, 3, "failed", error=secret)]
    line = trace_of(execution(), rows, [{"event_id": "e1"}, {"event_id": "e2"}], now=NOW).to_json()
    assert [set(b) for b in line["bars"]] == [{"stage", "shard", "attempt", "status", "offset_ms", "duration_ms",
                                                "error", "step"}] * 2
    assert [(b["shard"], b["offset_ms"], b["duration_ms"], b["step"]) for b in line["bars"]] == [
        ("@plan", 0, 1000, "@plan"), ("d1", 1000, 2000, "days")]
    error = line["bars"][1]["error"]
    assert error.startswith("OperationalError: ")
    assert "s3cret" not in error
    assert len(error) == len("OperationalError: ") + 200  # the message cut at 200 characters
    assert (line["events"], line["total_ms"], line["execution_id"]) == (["e1", "e2"], 60_000, "x-1")
    assert [(s["step"], s["rows"], s["status"]) for s in line["steps"]] == [("@plan", 1, "succeeded"),
                                                                          ("days", 1, "failed")]


def test_a_bar_is_labelled_with_its_attempt_after_the_first() -> None:
    """`notify batch:1-50:50 #2` for a second attempt; a control step run once is a step of its own row."""
    trace = trace_of(execution(), NIGHTLY[12:15], now=NOW)
    assert [b.label for b in trace.bars] == ["notify @plan", "notify batch:1-50:50", "notify batch:1-50:50 #2"]
    assert [s.single for s in trace.steps] == [True, False]


def test_the_waterfall_draws_a_step_of_several_rows_above_them() -> None:
    """The console's waterfall: a step of one control row is one bar labelled `<stage> <shard>`; a group gets
    its span (`step`, labelled with its name and row count), then its rows indented (`bar`)."""
    picture = waterfall(trace_of(execution(), NIGHTLY[12:16], now=NOW))
    assert [(b.kind, b.label, b.status, b.label_x) for b in picture["bars"]] == [
        ("bar", "notify @plan", "succeeded", 4), ("step", "notify batches (2)", "succeeded", 4),
        ("bar", "batch:1-50:50", "retrying", 18), ("bar", "batch:1-50:50 #2", "succeeded", 18),
        ("bar", "notify @done", "succeeded", 4)]
    assert picture["bars"][2].title == "notify batch:1-50:50: retrying, 1.00 s — SMTPError: 421"
    assert picture["height"] == 5 * picture["row"] + 24
