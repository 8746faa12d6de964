"""The operator's commands: `executions`, `show`, `trace`, `replay`, `cancel`, `prune`, `dlq list|replay`.

Registered on the main app by `register(app)`. They parse and print; the actions themselves are in
`workers.operations` (shared with the web console). Every command takes `--json`; an unknown execution
id or a bad option exits 2 with one line naming it, a refused or failed operation exits 1 (DESIGN §3).
Heavy modules (Celery, the pipelines) are imported inside the commands, so `hrsync executions` starts fast.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shared.errors import ConfigError, HrsyncError
from shared.operator_actions import cli_actor
from shared.records.status import ExecutionStatus
from shared.records.views import jsonable as _jsonable
from shared.records.views import timeline
from shared.redaction import redact_text
from shared.runner import run_async
from shared.settings import get_settings

if TYPE_CHECKING:
    from pipelines.replay import ReplayPlan

out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
STATUSES = tuple(ExecutionStatus)
TRIGGERS = ("schedule", "event", "replay", "manual")
STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "blue", "retrying": "yellow", "pending": "dim",
                "cancelled": "magenta"}
MIN_PRUNE_AGE = dt.timedelta(days=1)

dlq_app = typer.Typer(no_args_is_help=True, help="Dead-lettered events (queue hrsync.events.dead).")


def register(app: typer.Typer) -> None:
    """Add the operator's commands to the `hrsync` app."""
    for command in (executions, show, trace, replay, cancel, prune, audit):
        app.command()(command)
    app.add_typer(dlq_app, name="dlq")


# -- helpers -------------------------------------------------------------------------------------------

def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(value), indent=2) + "\n")


def _age(option: str, text: str) -> dt.timedelta:
    from shared.records.queries import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def _choice(option: str, value: str | None, allowed: Sequence[str]) -> str | None:
    if value is not None and value not in allowed:
        raise ConfigError(f"{option}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(get_settings().zone).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None:
        return "-"
    seconds = ((end or dt.datetime.now(dt.UTC)) - start).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _status(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLE.get(status or "", ""))


def _row(table: Table, *cells: str | Text) -> None:
    """Add a row of data: strings are shown as they are (an error's `[x]` is not Rich markup)."""
    table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in cells))


def _error(text: str | None, limit: int = 300) -> str | None:
    return redact_text(text)[:limit] if text else None


def _find(execution_id: str) -> dict[str, Any]:
    from shared.records.queries import find_execution

    return run_async(find_execution(execution_id))


# -- executions / show / trace -------------------------------------------------------------------------

def executions(
    status: Annotated[str | None, typer.Option(
        "--status", help="pending, running, succeeded, failed or cancelled")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="e.g. nightly, hris, attendance, punches")] = None,
    trigger: Annotated[str | None, typer.Option("--trigger", help="schedule, event, replay or manual")] = None,
    since: Annotated[str | None, typer.Option("--since", help="created within, e.g. 30m, 24h, 7d")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="at most this many")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List executions, newest first."""
    from shared.records.queries import list_executions

    rows = run_async(list_executions(
        status=_choice("--status", status, STATUSES), kind=kind, trigger=_choice("--trigger", trigger, TRIGGERS),
        since=_age("--since", since) if since else None, limit=limit))
    if as_json:
        _print_json([{**r, "error": _error(r["error"], 4000)} for r in rows])
        return
    table = Table("kind", "trigger", "status", "try", "created", "took", "failed at", "replay of")
    table.add_column("id", no_wrap=True, min_width=36)  # whole, so it can be copied
    for r in rows:
        _row(table, r["kind"], r["trigger"], _status(r["status"]), str(r["attempt"]),
                      _when(r["created_at"]), _seconds(r["started_at"], r["finished_at"]),
                      r["failed_stage"] or "", (r["replay_of"] or "")[:8], r["id"])
    out.print(table)
    out.print(f"{len(rows)} execution(s)" + (f" (first {limit}; use --limit)" if len(rows) == limit else ""))


def _details(execution_id: str) -> dict[str, Any]:
    from shared.records.queries import execution_lineage, replays_of, stage_rows

    execution = _find(execution_id)
    lineage = run_async(execution_lineage(execution["id"]))
    return {"execution": execution, "stages": run_async(stage_rows([execution["id"]])),
            "lineage": [{"id": e["id"], "status": e["status"], "attempt": e["attempt"]} for e in lineage[1:]],
            "replayed_by": [{"id": e["id"], "status": e["status"], "attempt": e["attempt"]}
                            for e in run_async(replays_of(execution["id"]))]}


def show(
    execution_id: Annotated[str, typer.Argument(metavar="ID", help="execution id (or a unique prefix)")],
    as_json: JsonOpt = False,
) -> None:
    """One execution: its inputs, stages and shards with attempts, durations and errors, its replays."""
    details = _details(execution_id)
    e, stages = details["execution"], details["stages"]
    if as_json:
        e = {**e, "error": _error(e["error"], 4000)}
        rows = [{**s, "error_message": _error(s["error_message"], 4000)} for s in stages]
        _print_json({**details, "execution": e, "stages": rows})
        return
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")
    _row(head, "execution", e["id"])
    event = f" (event {e['event_id']})" if e["event_id"] else ""
    _row(head, "kind / trigger", f"{e['kind']} / {e['trigger']}{event}")
    _row(head, "status", Text.assemble(_status(e["status"]), f"  attempt {e['attempt']}"))
    _row(head, "created / started", f"{_when(e['created_at'])} / {_when(e['started_at'])}")
    _row(head, "finished", f"{_when(e['finished_at'])}  (took {_seconds(e['started_at'], e['finished_at'])})")
    if e["status"] == ExecutionStatus.FAILED:
        _row(head, "failed at", f"{e['failed_stage'] or '?'}: {_error(e['error'])}")
    if details["lineage"]:
        _row(head, "replay of", " ← ".join(f"{x['id']} ({x['status']})" for x in details["lineage"]))
    if details["replayed_by"]:
        _row(head, "replayed by", ", ".join(f"{x['id']} ({x['status']})" for x in details["replayed_by"]))
    _row(head, "inputs", json.dumps(_jsonable(e["params"]), sort_keys=True))
    if e["summary"]:
        _row(head, "summary", json.dumps(_jsonable(e["summary"]), sort_keys=True))
    out.print(head)
    table = Table("stage", "shard", "try", "status", "started", "took", "rows in/out", "error", title="stages")
    for s in stages:
        took = f"{s['duration_ms'] / 1000:.2f}s" if s["duration_ms"] is not None else _seconds(s["started_at"], None)
        error = f"{s['error_type']}: {_error(s['error_message'], 200)}" if s["error_type"] else ""
        _row(table, s["stage"], s["shard"], str(s["attempt"]), _status(s["status"]), _when(s["started_at"]),
                      took, f"{s['rows_in'] if s['rows_in'] is not None else '-'}/"
                            f"{s['rows_out'] if s['rows_out'] is not None else '-'}", error)
    out.print(table)
    if e["status"] == ExecutionStatus.FAILED and not details["replayed_by"]:
        out.print(f"next: hrsync replay {e['id']} --dry-run")


def trace(
    execution_id: Annotated[str, typer.Argument(metavar="ID", help="execution id (or a unique prefix)")],
    as_json: JsonOpt = False,
) -> None:
    """The execution's timeline: stages and shards as bars on a time axis, failures marked."""
    from shared.records.queries import stage_rows

    execution = _find(execution_id)
    line = timeline(execution, run_async(stage_rows([execution["id"]])))
    if as_json:
        _print_json(line)
        return
    label_width = 34
    width = max(20, min(100, out.width - label_width - 12))
    scale = line["total_ms"] / width
    axis = Text(" " * label_width)
    axis.append(f"0s{' ' * (width - 12)}{line['total_ms'] / 1000:>9.2f}s", style="dim")
    out.print(Text(f"execution {line['execution_id']} ", style="bold") + _status(line["status"]))
    out.print(axis)
    for bar in line["bars"]:
        label = f"{bar['stage']} {bar['shard']}" + (f" #{bar['attempt']}" if bar["attempt"] > 1 else "")
        begin = min(width - 1, int(bar["offset_ms"] / scale))
        length = max(1, min(width - begin, round(bar["duration_ms"] / scale)))
        row = Text(f"{label[:label_width - 1]:<{label_width}}")
        row.append(" " * begin)
        row.append("█" * length, style=STATUS_STYLE.get(bar["status"], ""))
        row.append(" " * (width - begin - length))
        row.append(f" {bar['duration_ms'] / 1000:7.2f}s")
        if bar["status"] == "failed":
            row.append(" ✗", style="red")
        elif bar["status"] == "retrying":
            row.append(" ↻", style="yellow")
        out.print(row, no_wrap=True, overflow="ellipsis")
        if bar["error"]:  # on its own line, so a narrow terminal still shows it
            out.print(Text(f"{'':<4}{'✗' if bar['status'] == 'failed' else '↻'} {bar['error']}",
                           style=STATUS_STYLE.get(bar["status"], "")), no_wrap=True, overflow="ellipsis")


# -- replay / cancel -------------------------------------------------------------------------------------

def _print_plan(plan: ReplayPlan) -> None:
    out.print(f"replay of [bold]{plan.source_id}[/] ({escape(plan.kind)}, attempt {plan.attempt - 1} → "
              f"{plan.attempt}), failed at {escape(plan.failed_stage or '?')}")
    for stage in plan.plan:
        if stage.action == "skip":
            out.print(f"  [green]{stage.stage:<8} skip[/]  succeeded in {stage.done_in or '?'}: "
                      f"{len(stage.skipped)} shard(s), {stage.rows_kept} row(s) kept — not rerun; "
                      "its output feeds the next stage")
            continue
        parts = [f"{len(stage.run)} shard(s) to run"]
        if stage.skipped:
            parts.append(f"{len(stage.skipped)} already succeeded, skipped ({stage.rows_kept} row(s) kept)")
        if stage.later:
            parts.append("planned when it runs: " + ", ".join(stage.later))
        out.print(f"  [yellow]{stage.stage:<8} run[/]   " + "; ".join(parts))
        for shard in stage.run:
            out.print(Text(f"             run  {shard}"))
    emails = plan.emails
    out.print(f"  emails: {emails['sent']} already sent and {emails['parked']} parked by this chain — never sent "
              f"again; {emails['pending_backlog']} pending in the outbox will be sent")
    if plan.params.get("rerun_stages"):
        out.print(f"  --from-stage: {', '.join(plan.params['rerun_stages'])} rerun whole (no shard skipped)")


def replay(
    execution_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="the failed execution")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="replay every failed execution not replayed yet")] = False,
    since: Annotated[str | None, typer.Option("--since", help="with --failed: created within (default 24h)")] = None,
    from_stage: Annotated[str | None, typer.Option(
        "--from-stage", help="rerun from this (earlier) stage on purpose: none of its shards is skipped")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan, create nothing")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="follow the replay to its end")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds --wait follows at most")] = 3600,
    as_json: JsonOpt = False,
) -> None:
    """Replay a failed execution from its failed stage (or all failed ones with --failed)."""
    from workers import operations

    if failed == (execution_id is not None):
        raise ConfigError("replay: give one execution ID or --failed")
    if failed and (from_stage or wait):
        raise ConfigError(f"{'--from-stage' if from_stage else '--wait'}: only with one execution ID")
    if not failed and since:
        raise ConfigError("--since: only with --failed")
    if failed:
        _replay_failed(_age("--since", since or "24h"), dry_run, as_json)
        return
    assert execution_id is not None
    if dry_run:
        plan = operations.plan_replay(execution_id, from_stage)
        if as_json:
            _print_json({"dry_run": True, **plan.as_json()})
        else:
            _print_plan(plan)
            out.print("nothing was created (--dry-run)")
        return
    outcome = operations.replay(execution_id, from_stage, actor=cli_actor(), via="cli")
    assert outcome.execution_id is not None
    if as_json:
        _print_json(outcome.as_json())
    elif outcome.relaunched:
        out.print(f"replay {outcome.execution_id} of {outcome.replay_of} was never started: launched it again")
    else:
        assert outcome.plan is not None
        _print_plan(outcome.plan)
        stages = ", ".join(outcome.stages) or "none, finish only"
        out.print(f"launched replay {outcome.execution_id} (stages: {stages})")
    if wait:
        from cli.follow import follow_execution

        status = follow_execution(outcome.execution_id, Console(stderr=True) if as_json else out, timeout)
        raise typer.Exit(0 if status == ExecutionStatus.SUCCEEDED else 1)


def _replay_failed(since: dt.timedelta, dry_run: bool, as_json: bool) -> None:
    from workers import operations

    outcomes = operations.plan_failed(since) if dry_run \
        else operations.replay_failed(since, actor=cli_actor(), via="cli")
    if as_json:
        _print_json([o.as_json() for o in outcomes])
    for o in [] if as_json else outcomes:
        if o.skipped:
            out.print(Text(f"{o.replay_of}: skipped: {o.skipped}"))
        elif o.error:
            out.print(Text(f"{o.replay_of}: {o.error}", style="red"))
        elif o.dry_run and o.plan is not None:
            _print_plan(o.plan)
        else:
            out.print(Text(f"{o.replay_of}: launched replay {o.execution_id} ({', '.join(o.stages)})"))
    if not outcomes and not as_json:
        out.print("no failed execution to replay")
    if any(o.error for o in outcomes):
        raise typer.Exit(1)


def cancel(
    execution_id: Annotated[str, typer.Argument(metavar="ID", help="a pending or running execution")],
    reason: Annotated[str | None, typer.Option("--reason", help="why (kept in the execution and the audit)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """End a pending or running execution as cancelled: its running steps end their current step, its queued
    tasks stop at their start. Exit 1 if it already finished, 2 if the id is unknown."""
    from workers import operations

    outcome = operations.cancel(execution_id, reason, actor=cli_actor(), via="cli")
    if as_json:
        _print_json(outcome.as_json())
        return
    out.print(Text(f"cancelled {outcome.execution_id} (was {outcome.previous_status})"
                   + (f"; {outcome.running_steps} running step(s) end their current step"
                      if outcome.running_steps else "")))


# -- prune ---------------------------------------------------------------------------------------------

def prune(
    older_than: Annotated[str, typer.Option("--older-than", help="age of what goes, e.g. 90d (at least 1d)")] = "90d",
    keep_ids: Annotated[str, typer.Option(
        "--keep-ids", help="age until which event ids stay (the deduplication horizon; at least --older-than)")]
        = "365d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only count what would go")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove finished executions, their stage rows and inbox bodies older than --older-than, in batches;
    event ids stay in the inbox until --keep-ids (an id sent again within it is still recognised)."""
    from shared.records.queries import prune_records

    age, ids_age = _age("--older-than", older_than), _age("--keep-ids", keep_ids)
    if age < MIN_PRUNE_AGE:
        raise ConfigError("--older-than: at least 1d (younger records may belong to running chains)")
    if ids_age < age:
        raise ConfigError("--keep-ids: at least --older-than (ids are kept longer than everything else)")
    now = dt.datetime.now(dt.UTC)
    cutoff, ids_cutoff = now - age, now - ids_age
    counts = run_async(prune_records(cutoff, dry_run=dry_run, ids_cutoff=ids_cutoff))
    if as_json:
        _print_json({"dry_run": dry_run, "before": cutoff, "ids_before": ids_cutoff, **counts.__dict__})
        return
    verb = "would remove" if dry_run else "removed"
    out.print(f"{verb} {counts.executions} execution(s), {counts.stages} stage row(s) and {counts.inbox} inbox "
              f"body(ies) from before {_when(cutoff)}, and {counts.inbox_ids} event id(s) from before "
              f"{_when(ids_cutoff)}")
    if counts.open_kept:
        out.print(f"kept {counts.open_kept} older execution(s) that never finished (pending/running): look at them "
                  "with `hrsync executions --status running`")


# -- audit ---------------------------------------------------------------------------------------------

def audit(
    since: Annotated[str, typer.Option("--since", help="done within, e.g. 24h, 7d")] = "7d",
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="at most this many")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Operator actions (replay, cancel, dead-letter replay, corrections), newest first: who, when, what,
    from the CLI or the web console."""
    from shared.operator_actions import list_operator_actions

    rows = run_async(list_operator_actions(dt.datetime.now(dt.UTC) - _age("--since", since), limit))
    if as_json:
        _print_json(rows)
        return
    table = Table("when", "who", "via", "action", "target", "details")
    for r in rows:
        _row(table, _when(dt.datetime.fromisoformat(r["at"])), r["actor"], r["via"], r["action"], r["target"],
             json.dumps(_jsonable(r["details"]), sort_keys=True))
    out.print(table)
    out.print(f"{len(rows)} action(s)" + (f" (first {limit}; use --limit)" if len(rows) == limit else ""))


# -- dead letters ----------------------------------------------------------------------------------------

@dlq_app.command("list")
def dlq_list(as_json: JsonOpt = False) -> None:
    """The dead-lettered events: reason, type, id, first seen (the queue keeps them all)."""
    from shared.dead_letters import list_dead_letters

    letters = list_dead_letters(get_settings().events())
    if as_json:
        _print_json([letter.as_json() for letter in letters])
        return
    table = Table("type", "reason", "first seen", "replays")
    table.add_column("id", no_wrap=True)
    for letter in letters:
        _row(table, letter.type, letter.reason, letter.first_seen or "-", str(letter.replays), letter.id)
    out.print(table)
    out.print(f"{len(letters)} dead-lettered event(s)")


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="ids from `dlq list` (none: all)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Republish dead-lettered events to hrsync.events (all, or the given ids); each leaves the queue once
    the broker confirmed it. One that is still invalid is dead-lettered again by the bridge."""
    from workers import operations

    outcome = operations.replay_dead_letters(ids or None, actor=cli_actor(), via="cli")
    if as_json:
        _print_json(outcome.as_json())
    else:
        for letter in outcome.replayed:
            out.print(Text(f"replayed {letter['id']} ({letter['type']}; was: {letter['reason']})"))
        for failure in outcome.failed:
            out.print(Text(f"not replayed {failure['id']}: {failure['error']} (still in the queue)", style="red"))
        out.print(f"{len(outcome.replayed)} replayed")
    if outcome.not_found:
        raise HrsyncError(f"not in the dead-letter queue: {', '.join(outcome.not_found)}")
    if outcome.failed:
        raise typer.Exit(1)
