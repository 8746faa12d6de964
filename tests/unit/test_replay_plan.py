"""Replay planning (`pipelines.replay.plan_replay`), the lineage rule behind it, and `--since` parsing:
pure functions, tested with tables of recorded rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipelines.replay import ReplayRefused, plan_replay
from shared.config.errors import ConfigError
from shared.records.queries import parse_age, visible_lineage

NIGHTLY = ["extract", "merge", "notify"]


def execution(eid: str, *, status: str = "failed", failed_stage: str | None = None, stages: list[str] | None = None,
              replay_of: str | None = None, attempt: int = 1, **params: Any) -> dict[str, Any]:
    return {"id": eid, "kind": "nightly", "status": status, "failed_stage": failed_stage, "replay_of": replay_of,
            "attempt": attempt, "params": {"stages": stages or NIGHTLY, "scope": "nightly", **params}}


def row(eid: str, stage: str, shard: str, status: str = "succeeded", rows_out: int = 0,
        shards: list[str] | None = None) -> dict[str, Any]:
    result = {"shards": [{"key": k} for k in shards]} if shards is not None else {}
    return {"execution_id": eid, "stage": stage, "shard": shard, "status": status, "rows_out": rows_out,
            "result": result}


EXTRACT_DONE = [row("O", "extract", "@plan", shards=["k1"]), row("O", "extract", "k1", rows_out=4),
                row("O", "extract", "@done")]
IMPORTS_DONE = [row("O", "merge", "@plan", shards=["w1", "w2"]), row("O", "merge", "w1", rows_out=3),
                row("O", "merge", "w2", rows_out=5)]
DAYS_HALF = [row("O", "merge", "@plan-days", shards=["dA", "dB"]), row("O", "merge", "dA", rows_out=6),
             row("O", "merge", "dB", status="failed")]
MERGE_DONE = [*IMPORTS_DONE, row("O", "merge", "@plan-days", shards=["dA"]), row("O", "merge", "dA", rows_out=6),
              row("O", "merge", "@done")]


def stage(plan: Any, name: str) -> Any:
    return next(s for s in plan.plan if s.stage == name)


@pytest.mark.parametrize(
    ("lineage", "rows", "from_stage", "stages", "expect"),
    [
        pytest.param(
            [execution("O", failed_stage="notify")], [*EXTRACT_DONE, *MERGE_DONE], None, ["notify"],
            {"extract": ("skip", [], ["k1"], []), "merge": ("skip", [], ["dA", "w1", "w2"], []),
             "notify": ("run", ["batch:1-2:2"], [], ["messages the build adds for the merged days"])},
            id="notify-failed: extract and merge kept, notify sends the pending outbox"),
        pytest.param(
            [execution("O", failed_stage="merge")], [*EXTRACT_DONE, *IMPORTS_DONE, *DAYS_HALF], None,
            ["merge", "notify"],
            {"extract": ("skip", [], ["k1"], []), "merge": ("run", ["dB"], ["w1", "w2", "dA"], [])},
            id="day-shard-failed: only that shard reruns"),
        pytest.param(
            [execution("O", failed_stage="merge")],
            [*EXTRACT_DONE, row("O", "merge", "@plan", shards=["w1", "w2"]), row("O", "merge", "w1"),
             row("O", "merge", "w2", status="failed")], None, ["merge", "notify"],
            {"merge": ("run", ["w2"], ["w1"], ["@plan-days"])},
            id="import-failed: day shards are planned when the replay runs"),
        pytest.param(
            [execution("O", failed_stage="merge")], [*EXTRACT_DONE, *IMPORTS_DONE, *DAYS_HALF], "merge",
            ["merge", "notify"],
            {"extract": ("skip", [], ["k1"], []), "merge": ("run", [], [], ["@plan", "@plan-days"])},
            id="from-stage-merge: nothing of merge is skipped, it is planned afresh"),
        pytest.param(
            [execution("O", failed_stage="notify")], [*EXTRACT_DONE, *MERGE_DONE], "extract", NIGHTLY,
            {"extract": ("run", [], [], ["@plan"]), "merge": ("run", [], [], ["@plan", "@plan-days"])},
            id="from-stage-extract: the whole chain reruns"),
        pytest.param(
            [execution("O", failed_stage="extract")], [row("O", "extract", "k1", status="failed")], None, NIGHTLY,
            {"extract": ("run", [], [], ["@plan"])},
            id="extract-failed-before-its-plan"),
        pytest.param(
            [execution("O", failed_stage=None)], [*EXTRACT_DONE, *IMPORTS_DONE], None, ["merge", "notify"],
            {"merge": ("run", [], ["w1", "w2"], ["@plan-days"])},
            id="no-failed-stage-recorded: the first stage without @done"),
        pytest.param(
            [execution("O", failed_stage="notify_failure")], [*EXTRACT_DONE], None, ["merge", "notify"],
            {"extract": ("skip", [], ["k1"], [])},
            id="failed-stage-not-of-the-chain: the first stage without @done"),
        pytest.param(
            [execution("R", failed_stage="notify", replay_of="O", attempt=2, rerun_stages=["merge", "notify"]),
             execution("O", failed_stage="merge")],
            [*EXTRACT_DONE, *IMPORTS_DONE, *DAYS_HALF,
             row("R", "merge", "@plan", shards=["w1"]), row("R", "merge", "w1", rows_out=2),
             row("R", "merge", "@plan-days", shards=["dB"]), row("R", "merge", "dB", rows_out=1),
             row("R", "merge", "@done")],
            None, ["notify"],
            {"extract": ("skip", [], ["k1"], []), "merge": ("skip", [], ["dB", "w1"], [])},
            id="replay-of-a-from-stage-replay: its rerun hides the original's merge rows"),
        pytest.param(
            [execution("O", failed_stage="merge", stages=["merge", "notify"])], [*IMPORTS_DONE, *DAYS_HALF], None,
            ["merge", "notify"], {"merge": ("run", ["dB"], ["w1", "w2", "dA"], [])},
            id="attendance-scope: no extract stage at all"),
    ],
)
def test_replay_plan_table(lineage: list[dict[str, Any]], rows: list[dict[str, Any]], from_stage: str | None,
                           stages: list[str], expect: dict[str, tuple[str, list[str], list[str], list[str]]]) -> None:
    """Each recorded situation gives the expected stages to launch and, per stage, run/skip/later shards."""
    plan = plan_replay(lineage, rows, from_stage=from_stage, pending_outbox_ids=[1, 2])
    assert plan.stages == stages
    for name, (action, run, skipped, later) in expect.items():
        got = stage(plan, name)
        assert (got.action, got.run, sorted(got.skipped), got.later) == (action, run, sorted(skipped), later), name
    assert plan.attempt == lineage[0]["attempt"] + 1
    assert plan.params.get("rerun_stages") == (stages if from_stage else None)


def test_plan_counts_kept_rows_and_emails() -> None:
    """Skipped shards report the rows they wrote; the outbox counts say what will not be sent again."""
    plan = plan_replay([execution("O", failed_stage="notify")], [*EXTRACT_DONE, *MERGE_DONE],
                       outbox_by_status={"sent": 3, "failed": 1, "pending": 2}, pending_outbox_ids=list(range(1, 61)))
    assert stage(plan, "extract").rows_kept == 4
    assert stage(plan, "merge").rows_kept == 14
    assert stage(plan, "merge").done_in == "O"
    assert plan.emails == {"sent": 3, "parked": 1, "pending": 2, "pending_backlog": 60}
    assert stage(plan, "notify").run == ["batch:1-50:50", "batch:51-60:10"]


def test_plan_keeps_the_inputs_and_drops_an_earlier_rerun() -> None:
    """The replay's params are the original's, without a predecessor's `rerun_stages`."""
    source = execution("R", failed_stage="notify", replay_of="O", rerun_stages=["merge", "notify"], merge={"from": "x"})
    plan = plan_replay([source, execution("O", failed_stage="merge")], [], pending_outbox_ids=[])
    assert plan.params == {"stages": NIGHTLY, "scope": "nightly", "merge": {"from": "x"}}


@pytest.mark.parametrize(
    ("source", "children", "fragment"),
    [
        (execution("O", status="running"), [], "is running: wait for it"),
        (execution("O", status="pending"), [], "is pending"),
        (execution("O", status="succeeded"), [], "succeeded: there is nothing to replay"),
        (execution("O", failed_stage="merge"), [{"id": "R", "status": "failed"}],
         r"already replayed by R \(failed\): replay that one"),
        (execution("O", failed_stage="merge"), [{"id": "R", "status": "running"}], "already replayed by R"),
    ],
    ids=["running", "pending", "succeeded", "replayed-failed", "replayed-running"],
)
def test_replay_refused(source: dict[str, Any], children: list[dict[str, Any]], fragment: str) -> None:
    """Only a failed execution that no replay took over yet can be replayed (exit code 1, one line)."""
    with pytest.raises(ReplayRefused, match=fragment) as caught:
        plan_replay([source], [], children=children)
    assert caught.value.exit_code == 1
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("rows", "stages", "expect"),
    [
        # cancelled while pending: nothing ran, so every stage of its params runs
        pytest.param([], NIGHTLY, {"extract": "run", "merge": "run", "notify": "run"}, id="cancelled-pending"),
        # cancelled after extract finished, during merge: extract is kept, merge and notify run
        pytest.param([*EXTRACT_DONE, *IMPORTS_DONE], ["merge", "notify"],
                     {"extract": "skip", "merge": "run", "notify": "run"}, id="cancelled-during-merge"),
    ],
)
def test_a_cancelled_execution_is_replayed_from_where_it_stopped(
        rows: list[dict[str, Any]], stages: list[str], expect: dict[str, str]) -> None:
    """A cancelled execution is replayable like a failed one (DESIGN §7): the stages it did not finish run,
    with its inputs."""
    plan = plan_replay([execution("O", status="cancelled")], rows)
    assert plan.stages == stages
    assert {s.stage: s.action for s in plan.plan} == expect
    assert plan.params["scope"] == "nightly"


def test_a_cancelled_execution_with_a_step_still_running_is_not_replayed_yet() -> None:
    """A cancelled execution whose step still runs is refused (the replay would run beside it), unless
    that step started before the task's time limit could still let it run."""
    running = [*EXTRACT_DONE, {**row("O", "merge", "w1", status="running"), "started_at": dt.datetime(2026, 12, 1, 8)}]
    with pytest.raises(ReplayRefused, match="was cancelled but 1 of its steps still run"):
        plan_replay([execution("O", status="cancelled")], running)
    # started at 08:00, the time limit ended it by 08:25: it no longer counts
    plan = plan_replay([execution("O", status="cancelled")], running, alive_since=dt.datetime(2026, 12, 1, 8, 25))
    assert plan.stages == ["merge", "notify"]


@pytest.mark.parametrize(
    ("from_stage", "fragment"),
    [("notify", "comes after the failed stage merge"), ("load", "'load' is not a stage"),
     ("extract", "'extract' is not a stage")],
)
def test_bad_from_stage(from_stage: str, fragment: str) -> None:
    """A --from-stage after the failed stage, or not in the chain, is bad usage (exit code 2) naming the option."""
    source = execution("O", failed_stage="merge", stages=["merge", "notify"])
    with pytest.raises(ConfigError, match=fragment) as caught:
        plan_replay([source], [], from_stage=from_stage)
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith("--from-stage: ")


@pytest.mark.parametrize(
    ("chain", "stage", "visible"),
    [
        ([("C", {}), ("B", {}), ("A", {})], "merge", ["C", "B", "A"]),
        ([("C", {}), ("B", {"rerun_stages": ["merge", "notify"]}), ("A", {})], "merge", ["C", "B"]),
        ([("C", {}), ("B", {"rerun_stages": ["merge", "notify"]}), ("A", {})], "extract", ["C", "B", "A"]),
        ([("C", {"rerun_stages": ["notify"]}), ("B", {}), ("A", {})], "notify", ["C"]),
        ([("C", None), ("B", {})], "merge", ["C", "B"]),
    ],
    ids=["plain", "rerun-hides-older", "rerun-other-stage", "rerun-self", "missing-params"],
)
def test_visible_lineage(chain: list[tuple[str, Any]], stage: str, visible: list[str]) -> None:
    """A replay that reruns a stage on purpose hides its predecessors' rows of that stage, and only those."""
    assert visible_lineage(chain, stage) == visible


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", dt.timedelta(minutes=30)), ("24h", dt.timedelta(hours=24)), ("90d", dt.timedelta(days=90)),
     (" 2H ", dt.timedelta(hours=2)), ("1d", dt.timedelta(days=1))],
)
def test_parse_age(text: str, expected: dt.timedelta) -> None:
    """`--since` / `--older-than` values: a whole number with m, h or d."""
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "0d", "-1d", "1.5h", "1w", "24hours", "d24", "9999999d"])
def test_parse_age_rejects(text: str) -> None:
    """Anything else is refused with one line that shows the value."""
    with pytest.raises(ValueError, match="expected a positive number with m, h or d") as caught:
        parse_age(text)
    assert repr(text) in str(caught.value)
