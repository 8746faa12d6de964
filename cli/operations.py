"""The operator's commands: `executions`, `show`, `trace`, `replay`, `cancel`, `prune`, `dlq list|replay`.

Registered on the main app by `register(app)`. They parse and print; the actions themselves are in
`operations.executions` (shared with the web console). Every command takes `--json`; an unknown execution
id or a bad option exits 2 with one line naming it, a refused or failed operation exits 1 (DESIGN §3).
Heavy modules (Celery, the pipelines) are imported inside the commands, so `hrsync executions` starts fast.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cli.output import (
    STATUS_STYLE,
    JsonOpt,
    add_row,
    age,
    choice,
    clock,
    out,
    print_json,
    seconds,
    short_when,
    status_text,
    when,
)
from shared.config.errors import ConfigError, HrsyncError
from shared.records.operator_actions import checked_reason, cli_actor
from shared.records.readable import input_rows, stage_rows
from shared.records.status import ExecutionStatus
from shared.records.views import jsonable, shown_details, shown_error
from shared.runtime.runner import run_async

if TYPE_CHECKING:
    from pipelines.replay import ReplayPlan

STATUSES = tuple(ExecutionStatus)
TRIGGERS = ("schedule", "event", "replay", "manual")
SHORT_ID = 8  # characters of an id in the narrow listing (`show`/`trace`/`replay`/`cancel` take a prefix)
MIN_PRUNE_AGE = dt.timedelta(days=1)

dlq_app = typer.Typer(no_args_is_help=True, help="Dead-lettered events (kept in the app database by the bridge).")


def register(app: typer.Typer) -> None:
    """Add the operator's commands to the `hrsync` app."""
    for command in (executions, show, trace, replay, cancel, prune, audit):
        app.command()(command)
    app.add_typer(dlq_app, name="dlq")


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
    wide: Annotated[bool, typer.Option("--wide", help="every column and whole ids")] = False,
    late: Annotated[bool, typer.Option("--late", help="what the watchdogs flagged: waiting, stuck, late nightly")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """List executions, newest first (ids shortened: `show`, `trace`, `replay` and `cancel` take a prefix)."""
    from shared.records.queries import list_executions

    if late:
        _late(age("--since", since) if since else None, limit, as_json)
        return

    rows = run_async(list_executions(
        status=choice("--status", status, STATUSES), kind=kind, trigger=choice("--trigger", trigger, TRIGGERS),
        since=age("--since", since) if since else None, limit=limit))
    if as_json:
        print_json([{**r, "error": shown_error(r["error"], 4000)} for r in rows])
        return
    if wide:
        table = Table("kind", "trigger", "status", "try", "created", "took", "failed at", "replay of")
        table.add_column("id", no_wrap=True, min_width=36)  # whole, so it can be copied
        for r in rows:
            add_row(table, r["kind"], r["trigger"], status_text(r["status"]), str(r["attempt"]),
                    when(r["created_at"]), seconds(r["started_at"], r["finished_at"]),
                    r["failed_stage"] or "", (r["replay_of"] or "")[:SHORT_ID], r["id"])
    else:  # fits 80 columns, no word cut: what tells executions apart, the rest with --wide or `hrsync show`
        width = short_id_width([r["id"] for r in rows])  # a prefix the other commands accept
        table = Table(box=None, pad_edge=False)
        for name in ("id", "kind", "status", "created", "took", "failed stage"):
            table.add_column(name, no_wrap=True)
        for r in rows:
            add_row(table, r["id"][:width], r["kind"], status_text(r["status"]), short_when(r["created_at"]),
                    seconds(r["started_at"], r["finished_at"]), r["failed_stage"] or "")
    out.print(table)
    out.print(f"{len(rows)} execution(s)" + (f" (first {limit}; use --limit)" if len(rows) == limit else ""))


def _late(since: dt.timedelta | None, limit: int, as_json: bool) -> None:
    """`executions --late`: the watchdogs' alerts, newest first (all still open, and the cleared ones of
    `--since`, 24 h by default)."""
    from pipelines.watchdogs import late_alerts

    window = since or dt.timedelta(hours=24)
    found = run_async(late_alerts(dt.datetime.now(dt.UTC) - window))
    found += [a for a in run_async(late_alerts(open_only=True)) if a not in found]
    rows = [{**a, "status": "open" if a["cleared_at"] is None else "cleared"} for a in found][:limit]
    if as_json:
        print_json(rows)
        return
    table = Table("alert", "target", "status", "since", "detected", "what was seen", box=None, pad_edge=False)
    for r in rows:
        add_row(table, r["alert"], r["target"][:SHORT_ID] if r["alert"] != "nightly_deadline" else r["target"],
                r["status"], short_when(r["since"]) if r["since"] else "", short_when(r["detected_at"]), r["detail"])
    out.print(table)
    out.print(f"{len(rows)} alert(s)")


def short_id_width(ids: list[str]) -> int:
    """The shortest prefix length, at least `SHORT_ID`, that tells the listed ids apart (like git's)."""
    width = SHORT_ID
    while width < max((len(i) for i in ids), default=0) and len({i[:width] for i in ids}) < len(set(ids)):
        width += 2
    return width


def _details(execution_id: str) -> dict[str, Any]:
    from shared.records.queries import execution_details

    return run_async(execution_details(execution_id))


def show(
    execution_id: Annotated[str, typer.Argument(metavar="ID", help="execution id (or a unique prefix)")],
    as_json: JsonOpt = False,
) -> None:
    """One execution: its inputs, stages and shards with attempts, durations and errors, its replays."""
    details = _details(execution_id)
    e, stages = details["execution"], details["stages"]
    if as_json:
        print_json(shown_details(details))
        return
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column(overflow="fold")
    add_row(head, "execution", e["id"])
    event = f" (event {e['event_id']})" if e["event_id"] else ""
    add_row(head, "kind / trigger", f"{e['kind']} / {e['trigger']}{event}")
    if len(details["events"]) > 1:  # coalesced: every event it serves
        add_row(head, f"serves {len(details['events'])} events", served_list(details["events"]))
    add_row(head, "status", Text.assemble(status_text(e["status"]), f"  attempt {e['attempt']}"))
    add_row(head, "created / started", f"{when(e['created_at'])} / {when(e['started_at'])}")
    add_row(head, "finished", f"{when(e['finished_at'])}  (took {seconds(e['started_at'], e['finished_at'])})")
    if e["status"] == ExecutionStatus.FAILED:
        add_row(head, "failed at", f"{e['failed_stage'] or '?'}: {shown_error(e['error'], 300)}")
    if details["lineage"]:
        add_row(head, "replay of", " ← ".join(f"{x['id']} ({x['status']})" for x in details["lineage"]))
    if details["replayed_by"]:
        add_row(head, "replayed by", ", ".join(f"{x['id']} ({x['status']})" for x in details["replayed_by"]))
    out.print(head)
    out.print(labelled_inputs(e["params"]))
    out.print(stage_figures(e["summary"], stages))
    table = Table(title="stages and shards (started: time of day)", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for name in ("stage", "shard", "try", "status", "started", "took", "in/out"):
        table.add_column(name, no_wrap=name != "shard", overflow="fold", ratio=1 if name == "shard" else None)
    errors = []
    for s in stages:
        took = f"{s['duration_ms'] / 1000:.2f}s" if s["duration_ms"] is not None else seconds(s["started_at"], None)
        add_row(table, s["stage"], s["shard"], str(s["attempt"]), status_text(s["status"]), clock(s["started_at"]),
                took, f"{s['rows_in'] if s['rows_in'] is not None else '-'}/"
                      f"{s['rows_out'] if s['rows_out'] is not None else '-'}")
        if s["error_type"]:  # on lines of their own: a narrow terminal still shows them whole
            errors.append(Text(f"{s['stage']} {s['shard']} (try {s['attempt']}): {s['error_type']}: "
                               f"{shown_error(s['error_message'], 200)}", style=STATUS_STYLE.get(s["status"], "")))
    out.print(table)
    if errors:
        out.print(Text("errors", style="bold"))
        for line in errors:
            out.print(line)
    if e["status"] == ExecutionStatus.FAILED and not details["replayed_by"]:
        out.print(f"next: hrsync replay {e['id']} --dry-run")


def labelled_inputs(params: dict[str, Any] | None) -> Table:
    """The execution's inputs as a labelled table (`--json` has them raw)."""
    table = Table(title="inputs", show_header=False, box=None, pad_edge=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in input_rows(params):
        add_row(table, label, value)
    return table


def stage_figures(summary: dict[str, Any] | None, stages: list[dict[str, Any]]) -> Table:
    """What each stage read, wrote, sent and failed (from the summary, else from its shards)."""
    table = Table(title="per stage" if summary else "per stage (no summary: added up from its shards)",
                  title_justify="left")
    table.add_column("stage", no_wrap=True)
    for name in ("read", "written", "sent", "failed"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("details", overflow="fold", ratio=1)
    for row in stage_rows(summary, stages):
        figures = ("-" if row[k] is None else str(row[k]) for k in ("read", "written", "sent", "failed"))
        add_row(table, row["stage"], *figures, "\n".join(row["details"]))
    return table


def trace(
    execution_id: Annotated[str, typer.Argument(metavar="ID", help="execution id (or a unique prefix)")],
    as_json: JsonOpt = False,
) -> None:
    """The execution's timeline: its steps (a planner, a final step, a stage's shards of one kind) and their
    shards as bars on a time axis, failures marked."""
    from pipelines.trace import trace_of
    from shared.records.queries import execution_lineage, served_events, stage_rows

    execution = _find(execution_id)
    lineage = [x["id"] for x in run_async(execution_lineage(execution["id"]))]
    line = trace_of(execution, run_async(stage_rows([execution["id"]])), run_async(served_events(lineage)))
    if as_json:
        print_json(line.to_json())
        return
    label_width = 34
    width = max(20, min(100, out.width - label_width - 12))
    scale = line.total_ms / width
    axis = Text(" " * label_width)
    axis.append(f"0s{' ' * (width - 12)}{line.total_ms / 1000:>9.2f}s", style="dim")
    out.print(Text(f"execution {line.execution_id} ", style="bold") + status_text(line.status))
    if len(line.events) > 1:
        out.print(Text(f"serves {len(line.events)} events: {served_list(list(line.events))}", style="dim"))
    out.print(axis)

    def draw(label: str, offset_ms: int, duration_ms: int, status: str, style: str) -> Text:
        begin = min(width - 1, int(offset_ms / scale))
        length = max(1, min(width - begin, round(duration_ms / scale)))
        row = Text(f"{label[:label_width - 1]:<{label_width}}")
        row.append(" " * begin)
        row.append("█" * length, style=style)
        row.append(" " * (width - begin - length))
        row.append(f" {duration_ms / 1000:7.2f}s")
        if status in MARK:
            row.append(f" {MARK[status][0]}", style=MARK[status][1])
        return row

    for step in line.steps:
        grouped = not step.single
        if grouped:  # a group (its name and rows): its span, then each of its rows indented
            out.print(draw(f"{step.stage} {step.name} ({len(step.bars)})", step.offset_ms, step.wall_ms,
                           step.status, "dim"), no_wrap=True, overflow="ellipsis")
        for bar in step.bars:
            style = STATUS_STYLE.get(bar.status, "")
            out.print(draw(f"  {bar.name}" if grouped else bar.label, bar.offset_ms, bar.duration_ms, bar.status,
                           style), no_wrap=True, overflow="ellipsis")
            if bar.error:  # on its own line, so a narrow terminal still shows it
                out.print(Text(f"{'':<4}{'✗' if bar.status == 'failed' else '↻'} {bar.error}", style=style),
                          no_wrap=True, overflow="ellipsis")


MARK = {"failed": ("✗", "red"), "retrying": ("↻", "yellow")}  # a bar's mark after its duration


def served_list(events: list[Any], shown: int = 10) -> str:
    """The first `shown` event ids (rows of `served_events` or ids), and how many more."""
    ids = [e["event_id"] if isinstance(e, dict) else str(e) for e in events]
    more = f" … and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


# -- replay / cancel -------------------------------------------------------------------------------------

def _print_served(events: list[str]) -> None:
    """The events a replay serves, on one line (nothing for an execution no event started)."""
    if events:
        out.print(Text(f"  serves {len(events)} event{'s' if len(events) > 1 else ''}: {served_list(events)}"))


def _print_plan(plan: ReplayPlan) -> None:
    out.print(f"replay of [bold]{plan.source_id}[/] ({escape(plan.kind)}, attempt {plan.attempt - 1} → "
              f"{plan.attempt}), failed at {escape(plan.failed_stage or '?')}")
    _print_served(plan.events)
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
    reason: Annotated[str | None, typer.Option("--reason", help="why (required unless --dry-run; kept in the audit)")]
        = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan, create nothing")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="follow the replay to its end")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds --wait follows at most")] = 3600,
    as_json: JsonOpt = False,
) -> None:
    """Replay a failed execution from its failed stage (or all failed ones with --failed)."""
    from operations import executions as operations

    if failed == (execution_id is not None):
        raise ConfigError("replay: give one execution ID or --failed")
    if failed and (from_stage or wait):
        raise ConfigError(f"{'--from-stage' if from_stage else '--wait'}: only with one execution ID")
    if not failed and since:
        raise ConfigError("--since: only with --failed")
    within = age("--since", since or "24h") if failed else None
    text = "" if dry_run else checked_reason(reason, "--reason")
    if within is not None:
        _replay_failed(within, dry_run, text, as_json)
        return
    assert execution_id is not None
    if dry_run:
        plan = operations.plan_replay(execution_id, from_stage)
        if as_json:
            print_json({"dry_run": True, **plan.as_json()})
        else:
            _print_plan(plan)
            out.print("nothing was created (--dry-run)")
        return
    outcome = operations.replay(execution_id, from_stage, reason=text, actor=cli_actor(), via="cli")
    assert outcome.execution_id is not None
    if as_json:
        print_json(outcome.as_json())
    elif outcome.relaunched:
        out.print(f"replay {outcome.execution_id} of {outcome.replay_of} was never started: launched it again")
        _print_served(outcome.plan.events if outcome.plan else [])
    else:
        assert outcome.plan is not None
        _print_plan(outcome.plan)
        stages = ", ".join(outcome.stages) or "none, finish only"
        out.print(f"launched replay {outcome.execution_id} (stages: {stages})")
    if wait:
        from cli.follow import follow_execution

        status = follow_execution(outcome.execution_id, Console(stderr=True) if as_json else out, timeout)
        raise typer.Exit(0 if status == ExecutionStatus.SUCCEEDED else 1)


def _replay_failed(since: dt.timedelta, dry_run: bool, reason: str, as_json: bool) -> None:
    from operations import executions as operations

    outcomes = operations.plan_failed(since) if dry_run \
        else operations.replay_failed(since, reason=reason, actor=cli_actor(), via="cli")
    if as_json:
        print_json([o.as_json() for o in outcomes])
    for o in [] if as_json else outcomes:
        if o.skipped:
            out.print(Text(f"{o.replay_of}: skipped: {o.skipped}"))
        elif o.error:
            out.print(Text(f"{o.replay_of}: {o.error}", style="red"))
        elif o.dry_run and o.plan is not None:
            _print_plan(o.plan)
        else:
            out.print(Text(f"{o.replay_of}: launched replay {o.execution_id} ({', '.join(o.stages)})"))
            _print_served(o.plan.events if o.plan else [])
    if not outcomes and not as_json:
        out.print("no failed execution to replay")
    if any(o.error for o in outcomes):
        raise typer.Exit(1)


def cancel(
    execution_id: Annotated[str, typer.Argument(metavar="ID", help="a pending or running execution")],
    reason: Annotated[str | None, typer.Option("--reason", help="why (required; kept in the execution and the audit)")]
        = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what it would cancel and its events")] = False,
    as_json: JsonOpt = False,
) -> None:
    """End a pending or running execution as cancelled: its running steps end their current step, its queued
    tasks stop at their start; `hrsync replay ID` later serves the events it holds. Exit 1 if it already
    finished, 2 if the id is unknown."""
    from operations import executions as operations

    outcome = (operations.plan_cancel(execution_id) if dry_run
               else operations.cancel(execution_id, checked_reason(reason, "--reason"), actor=cli_actor(), via="cli"))
    if as_json:
        print_json(outcome.as_json())
        return
    short = outcome.execution_id[:SHORT_ID]
    head = (f"would cancel {outcome.execution_id} ({outcome.previous_status}); it holds" if outcome.dry_run
            else f"cancelled {outcome.execution_id} (was {outcome.previous_status}); it holds")
    steps = "would end" if outcome.dry_run else "end"
    out.print(Text(f"{head} {outcome.events} event(s), served again by `hrsync replay {short}`"
                   + (f"; {outcome.running_steps} running step(s) {steps} their current step"
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

    records_age, ids_age = age("--older-than", older_than), age("--keep-ids", keep_ids)
    if records_age < MIN_PRUNE_AGE:
        raise ConfigError("--older-than: at least 1d (younger records may belong to running chains)")
    if ids_age < records_age:
        raise ConfigError("--keep-ids: at least --older-than (ids are kept longer than everything else)")
    now = dt.datetime.now(dt.UTC)
    cutoff, ids_cutoff = now - records_age, now - ids_age
    counts = run_async(prune_records(cutoff, dry_run=dry_run, ids_cutoff=ids_cutoff))
    if as_json:
        print_json({"dry_run": dry_run, "before": cutoff, "ids_before": ids_cutoff, **counts.__dict__})
        return
    verb = "would remove" if dry_run else "removed"
    out.print(f"{verb} {counts.executions} execution(s), {counts.stages} stage row(s) and {counts.inbox} inbox "
              f"body(ies) from before {when(cutoff)}, and {counts.inbox_ids} event id(s) from before "
              f"{when(ids_cutoff)}")
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
    from shared.records.operator_actions import list_operator_actions

    rows = run_async(list_operator_actions(dt.datetime.now(dt.UTC) - age("--since", since), limit))
    if as_json:
        print_json(rows)
        return
    table = Table("when", "who", "via", "action", "target", "details")
    for r in rows:
        add_row(table, when(dt.datetime.fromisoformat(r["at"])), r["actor"], r["via"], r["action"], r["target"],
             json.dumps(jsonable(r["details"]), sort_keys=True))
    out.print(table)
    out.print(f"{len(rows)} action(s)" + (f" (first {limit}; use --limit)" if len(rows) == limit else ""))


# -- dead letters ----------------------------------------------------------------------------------------

@dlq_app.command("list")
def dlq_list(as_json: JsonOpt = False) -> None:
    """The dead-lettered events waiting for a replay: id, event id, type, reason, first seen (reads the app
    database, where the bridge moves them; the queue is not touched)."""
    from shared.events.dead_letters import list_dead_letters

    letters = run_async(list_dead_letters())
    if as_json:
        print_json([letter.as_json() for letter in letters])
        return
    table = Table("type", "reason", "first seen", "replays")
    table.add_column("id", no_wrap=True)
    table.add_column("event id", overflow="fold")
    for letter in letters:
        add_row(table, letter.type, letter.reason, letter.first_seen or "-", str(letter.replays), letter.id,
                letter.event_id or "")
    out.print(table)
    out.print(f"{len(letters)} dead-lettered event(s)")


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="ids (or event ids) from `dlq list`")]
        = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every dead letter waiting (instead of IDs)")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="why (required; kept in the audit)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Republish dead-lettered events to hrsync.events (the given ids, or every one with --all), each audited
    before it goes out. One that is still invalid is dead-lettered again by the bridge."""
    from operations import executions as operations

    text = checked_reason(reason, "--reason")
    if replay_all == bool(ids):
        raise ConfigError("ID: give the dead letters' ids, or --all for every one (not both)")
    outcome = operations.replay_dead_letters(ids or None, replay_all=replay_all, reason=text, actor=cli_actor(),
                                             via="cli")
    if as_json:
        print_json(outcome.as_json())
    else:
        for letter in outcome.replayed:
            out.print(Text(f"replayed {letter['id']} ({letter['type']}; was: {letter['reason']})"))
        for failure in outcome.failed:
            out.print(Text(f"not replayed {failure['id']}: {failure['error']} (still waiting)", style="red"))
        out.print(f"{len(outcome.replayed)} replayed")
    if outcome.not_found:
        raise HrsyncError(f"no dead letter waiting under: {', '.join(outcome.not_found)}")
    if outcome.failed:
        raise typer.Exit(1)
