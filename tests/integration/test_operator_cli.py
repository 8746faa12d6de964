"""The operator's commands on recorded executions in the real MariaDB app database: `executions`, `show`,
`trace`, `replay` refusals and dry runs, `prune` — exit codes, one-line errors, `--json`."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from shared.database.db import app_engine
from shared.database.tables import event_inbox, execution_stages, executions
from shared.records.queries import prune_records
from shared.runtime.runner import run_async
from tests.integration.scenarios import CHAIN, NOW, hrsync, one_line_error, record
from tests.integration.stack_fixtures import app_rows, count_rows

pytestmark = [pytest.mark.integration, pytest.mark.drives_subprocesses]


@pytest.fixture
def kind(app_db: str) -> str:
    """A kind unique to the test, so filters see only its executions."""
    return f"t{uuid.uuid4().hex[:8]}"


def test_executions_lists_and_filters(kind: str) -> None:
    """`executions` filters by status, kind, trigger and --since, newest first, as a table or JSON."""
    failed = record(kind, status="failed", trigger="schedule", failed_stage="merge", stages=CHAIN)
    done = record(kind, age=dt.timedelta(hours=1))
    old = record(kind, trigger="replay", age=dt.timedelta(days=3))
    listed = json.loads(hrsync("executions", "--kind", kind, "--json").stdout)
    assert [e["id"] for e in listed] == [failed, done, old]
    assert json.loads(hrsync("executions", "--kind", kind, "--status", "failed", "--json").stdout)[0]["id"] == failed
    assert [e["id"] for e in json.loads(hrsync("executions", "--kind", kind, "--trigger", "replay", "--json").stdout)] \
        == [old]
    assert [e["id"] for e in json.loads(hrsync("executions", "--kind", kind, "--since", "2d", "--json").stdout)] \
        == [failed, done]
    assert [e["id"] for e in json.loads(hrsync("executions", "--kind", kind, "--since", "30m", "--json").stdout)] \
        == [failed]
    table = hrsync("executions", "--kind", kind)
    assert table.returncode == 0
    assert failed[:8] in table.stdout  # the short id; the whole one with --wide
    assert failed in hrsync("executions", "--kind", kind, "--wide").stdout
    assert "3 execution(s)" in table.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["executions", "--since", "yesterday"], "--since: expected a positive number with m, h or d"),
     (["executions", "--since", "0h"], "--since"),
     (["executions", "--status", "done"], "--status: 'done' is not one of"),
     (["executions", "--trigger", "cron"], "--trigger"),
     (["replay", "--failed", "--since", "1w"], "--since"),
     (["replay"], "give one execution ID or --failed"),
     (["replay", "--failed", "--from-stage", "merge"], "--from-stage: only with one execution ID"),
     (["prune", "--older-than", "12h"], "--older-than: at least 1d"),
     (["prune", "--older-than", "ninety"], "--older-than"),
     (["prune", "--older-than", "90d", "--keep-ids", "30d"], "--keep-ids: at least --older-than"),
     (["audit", "--since", "week"], "--since")],
    ids=["since-word", "since-zero", "status", "trigger", "replay-since", "replay-nothing", "from-stage-failed",
         "prune-too-young", "prune-word", "keep-ids", "audit-since"],
)
def test_bad_options_exit_2_naming_the_option(app_db: str, args: list[str], fragment: str) -> None:
    """A bad option value exits 2 with one line naming the option."""
    one_line_error(hrsync(*args), 2, fragment)


@pytest.mark.parametrize("command", ["show", "trace", "replay", "cancel"])
def test_unknown_execution_exits_2_with_one_line(app_db: str, command: str) -> None:
    """An id that matches no execution is bad input: exit 2 with one line, also with --json."""
    reason = ["--reason", "test"] if command in ("replay", "cancel") else []
    one_line_error(hrsync(command, "00000000-dead-beef-0000-000000000000", *reason), 2, "no execution")
    one_line_error(hrsync(command, "zzzz-nothing", "--json", *reason), 2, "no execution 'zzzz-nothing'")


def test_show_and_trace_an_execution(kind: str) -> None:
    """`show` gives inputs, stages, shards, errors and replay lineage; `trace` draws them on a time axis."""
    failed = record(kind, status="failed", failed_stage="merge", stages=CHAIN)
    replay = record(kind, status="failed", trigger="replay", replay_of=failed, failed_stage="merge", stages=CHAIN[3:])
    shown = json.loads(hrsync("show", failed, "--json").stdout)
    assert shown["execution"]["params"]["scope"] == "nightly"
    assert [(s["stage"], s["shard"], s["status"]) for s in shown["stages"]] == CHAIN
    assert shown["stages"][-1]["error_message"] == "boom"
    assert shown["replayed_by"] == [{"id": replay, "status": "failed", "attempt": 1}]
    assert json.loads(hrsync("show", replay[:13], "--json").stdout)["lineage"][0]["id"] == failed  # a prefix
    text = hrsync("show", failed)
    assert text.returncode == 0
    assert "ValueError: boom" in text.stdout
    assert "merge[x]: ValueError: boom" in " ".join(text.stdout.split())

    line = json.loads(hrsync("trace", failed, "--json").stdout)
    assert [b["offset_ms"] for b in line["bars"]] == [0, 1000, 2000, 3000, 4000]
    assert all(b["duration_ms"] == 1000 for b in line["bars"])
    assert line["bars"][-1]["error"] == "ValueError: boom"
    drawn = hrsync("trace", failed)
    assert drawn.returncode == 0
    assert "█" in drawn.stdout
    assert "✗ ValueError: boom" in drawn.stdout


def test_replay_refuses_running_succeeded_and_replayed(kind: str) -> None:
    """Replaying a running, succeeded or already replayed execution is refused with one line (exit 1)."""
    running = record(kind, status="running")
    one_line_error(hrsync("replay", running, "--reason", "test"), 1, "is running: wait for it to finish")
    one_line_error(hrsync("replay", record(kind), "--reason", "test"), 1, "succeeded: there is nothing to replay")
    failed = record(kind, status="failed", failed_stage="merge", stages=CHAIN)
    child = record(kind, status="failed", trigger="replay", replay_of=failed, failed_stage="merge")
    one_line_error(hrsync("replay", failed, "--dry-run"), 1, f"already replayed by {child} (failed): replay that one")


def test_replay_dry_run_plans_without_creating_anything(kind: str) -> None:
    """`replay --dry-run` prints the plan from the recorded rows and creates no execution."""
    failed = record(kind, status="failed", failed_stage="merge", stages=CHAIN)
    plan = json.loads(hrsync("replay", failed, "--dry-run", "--json").stdout)
    assert plan["dry_run"] is True
    assert plan["stages"] == ["merge", "notify"]
    merge = next(s for s in plan["plan"] if s["stage"] == "merge")
    assert (merge["run"], merge["later"]) == (["k1"], ["@plan-days"])
    text = hrsync("replay", failed, "--dry-run")
    assert "extract  skip" in text.stdout
    assert "nothing was created (--dry-run)" in text.stdout
    assert len(json.loads(hrsync("executions", "--kind", kind, "--json").stdout)) == 1


def test_replay_failed_since_skips_replayed_ones(kind: str) -> None:
    """`replay --failed --since` takes each failed execution once: one that a replay took over is left out."""
    lone = record(kind, status="failed", failed_stage="merge", stages=CHAIN)
    taken = record(kind, status="failed", failed_stage="merge", stages=CHAIN, age=dt.timedelta(minutes=5))
    record(kind, status="running", trigger="replay", replay_of=taken)
    too_old = record(kind, status="failed", failed_stage="merge", age=dt.timedelta(hours=3))
    done = hrsync("replay", "--failed", "--since", "1h", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    planned = {r["replay_of"] for r in json.loads(done.stdout)}
    assert lone in planned
    assert taken not in planned
    assert too_old not in planned


def inbox_body(event_id: str) -> object:
    """The stored body of an inbox row, or the string `gone` when the row itself is gone."""
    rows = app_rows(event_inbox, event_inbox.c.event_id == event_id)
    return rows[0]["body"] if rows else "gone"


def inbox_row(event_id: str, age: dt.timedelta) -> None:
    async def insert() -> None:
        engine = await app_engine()
        async with engine.begin() as conn:
            await conn.execute(event_inbox.insert().values(
                event_id=event_id, type="hrsync.sync.requested", source="test", status="launched",
                execution_id=None, received_at=NOW - age, body="{}"))

    run_async(insert())


def test_prune_removes_old_finished_records_in_batches(kind: str) -> None:
    """`prune --older-than 90d` counts (dry run), then removes old finished executions, their stages and
    inbox bodies; event ids older than --keep-ids go too; recent records and old unfinished executions stay."""
    old = dt.timedelta(days=100)
    gone = [record(kind, age=old, stages=CHAIN), record(kind, status="failed", age=old, stages=CHAIN[:2])]
    stuck = record(kind, status="running", age=old, stages=CHAIN[:1])
    recent = record(kind, stages=CHAIN)
    inbox_row(f"{kind}-old", old)
    inbox_row(f"{kind}-new", dt.timedelta(days=1))
    inbox_row(f"{kind}-ancient", dt.timedelta(days=400))
    dry = json.loads(hrsync("prune", "--older-than", "90d", "--dry-run", "--json").stdout)
    assert (dry["executions"], dry["stages"], dry["open_kept"]) == (2, 7, 1)
    assert dry["inbox"] >= 2  # the session's other tests may leave old rows too
    assert dry["inbox_ids"] >= 1
    assert count_rows(executions, executions.c.id.in_(gone)) == 2  # a dry run removes nothing

    counts = run_async(prune_records(NOW - dt.timedelta(days=90), dry_run=False, batch=1,
                                     ids_cutoff=NOW - dt.timedelta(days=365)))
    assert (counts.executions, counts.stages, counts.open_kept) == (2, 7, 1)
    assert (counts.inbox, counts.inbox_ids) == (dry["inbox"], dry["inbox_ids"])
    assert inbox_body(f"{kind}-old") is None  # the id stays: sent again, it is still a duplicate
    assert inbox_body(f"{kind}-ancient") == "gone"
    assert inbox_body(f"{kind}-new") == "{}"
    assert count_rows(executions, executions.c.id.in_(gone)) == 0
    assert count_rows(execution_stages, execution_stages.c.execution_id.in_(gone)) == 0
    assert count_rows(executions, executions.c.id.in_([stuck, recent])) == 2
    assert count_rows(execution_stages, execution_stages.c.execution_id == recent) == len(CHAIN)
    text = hrsync("prune", "--older-than", "90d")
    assert text.returncode == 0
    assert "removed 0 execution(s)" in text.stdout
    assert "kept 1 older execution(s) that never finished" in text.stdout


def test_cancel_then_audit(kind: str) -> None:
    """`cancel` ends a running execution (exit 0), refuses a finished one (exit 1); `audit` lists the action."""
    running = record(kind, status="running")
    done = hrsync("cancel", running, "--reason", "wrong range", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"execution_id": running, "previous_status": "running", "running_steps": 0,
                                       "reason": "wrong range", "status": "cancelled", "events": 0, "dry_run": False}
    assert json.loads(hrsync("executions", "--kind", kind, "--status", "cancelled", "--json").stdout)[0]["id"] \
        == running
    one_line_error(hrsync("cancel", running, "--reason", "test"), 1,
                   "is cancelled: only a pending or running execution")
    actions = [a for a in json.loads(hrsync("audit", "--since", "1h", "--json").stdout) if a["target"] == running]
    assert [(a["action"], a["via"], a["details"]["reason"]) for a in actions] == [("cancel", "cli", "wrong range")]
    table = hrsync("audit")
    assert table.returncode == 0
    assert "cancel" in table.stdout


def test_a_prefix_two_executions_share_is_refused_saying_how_many(app_db: str) -> None:
    """Two ids starting with the same 8 characters: that prefix exits 2 with one line naming the 2 matches;
    one more character picks one."""
    shared = uuid.uuid4().hex[:8]
    first, second = (record("hris", execution_id=f"{shared}-{n}{uuid.uuid4().hex[:26]}") for n in (1, 2))
    one_line_error(hrsync("show", shared), 2, "2 executions start with")
    assert json.loads(hrsync("show", first[:10], "--json").stdout)["execution"]["id"] == first
    assert json.loads(hrsync("show", second[:10], "--json").stdout)["execution"]["id"] == second
