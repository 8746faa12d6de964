"""`hrsync exceptions`, `overtime`, `period` (DESIGN §3, §11): the days HR decides, and closing the month.

Every decision, close and reopen is audited in its own transaction (`operations.deciding`,
`operations.closing`). A refused close exits 1 with the counts per kind and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from cli.output import JsonOpt, out, print_json

exceptions_app = typer.Typer(invoke_without_command=True, help="The days HR must look at, and accepting one.")
overtime_app = typer.Typer(no_args_is_help=True, help="The overtime decision of a day: approve or refuse.")
period_app = typer.Typer(no_args_is_help=True, help="Month end: list, show, close, reopen a period.")

ReasonOpt = Annotated[str, typer.Option("--reason", help="why (kept with the decision and in the audit log)")]
EmpArg = Annotated[str, typer.Argument(metavar="EMP", help="employee number")]
DateArg = Annotated[str, typer.Argument(metavar="DATE", help="the work date, YYYY-MM-DD")]
PeriodArg = Annotated[str, typer.Argument(metavar="YYYY-MM", help="the month")]


def _decided_line(item: dict[str, Any]) -> str:
    line = f"{item['employee_no']} {item['work_date']} {item['kind']}: {item['state']}"
    if item["kind"] == "overtime":
        line += f", {item['approved_overtime_minutes']} of {item['overtime_minutes']} overtime minutes approved"
    return line


@exceptions_app.callback()
def exceptions_list(
    ctx: typer.Context,
    period: Annotated[str | None, typer.Option("--period", metavar="YYYY-MM", help="only this month")] = None,
    only_open: Annotated[bool, typer.Option("--open", help="only open exceptions")] = False,
    kind: Annotated[str | None, typer.Option("--kind", metavar="K", help="only this kind")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The exceptions of closed days (every state unless --open), by employee, date and kind."""
    if ctx.invoked_subcommand is not None:
        return
    from operations.deciding import list_exceptions, parse_kind
    from pipelines.monthend.period import Period
    from shared.runtime.runner import run_async

    month = Period.parse(period) if period is not None else None
    wanted = parse_kind(kind, "--kind") if kind is not None else None
    items = run_async(list_exceptions(month, only_open=only_open, kind=wanted))
    if as_json:
        print_json(items)
        return
    table = Table("employee", "date", "kind", "severity", "state", "decided by", "reason")
    for item in items:
        state = item["state"] + (" (changed since decided)" if item["changed_since_decided"] else "")
        if item["kind"] == "overtime":
            state += f" {item['approved_overtime_minutes']}/{item['overtime_minutes']} min"
        table.add_row(item["employee_no"], item["work_date"], item["kind"], item["severity"], state,
                      item["decided_by"] or "", item["reason"] or "")
    out.print(table)
    out.print(f"{len(items)} exception(s)")


@exceptions_app.command("accept")
def exceptions_accept(employee_no: EmpArg, work_date: DateArg,
                      kind: Annotated[str, typer.Argument(metavar="KIND", help="the exception's kind")],
                      reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Keep the day as it is: the exception becomes accepted (audited)."""
    from operations.deciding import accept_exception, parse_day, parse_kind
    from shared.records.operator_actions import cli_actor
    from shared.runtime.runner import run_async

    item = run_async(accept_exception(employee_no, parse_day(work_date), parse_kind(kind), reason,
                                      actor=cli_actor(), via="cli"))
    print_json(item) if as_json else out.print(_decided_line(item))


def _overtime(employee_no: str, work_date: str, *, approve: bool, minutes: int | None, reason: str,
              as_json: bool) -> None:
    from operations.deciding import decide_overtime, parse_day
    from shared.records.operator_actions import cli_actor
    from shared.runtime.runner import run_async

    item = run_async(decide_overtime(employee_no, parse_day(work_date), approve=approve, minutes=minutes,
                                     reason=reason, actor=cli_actor(), via="cli"))
    print_json(item) if as_json else out.print(_decided_line(item))


@overtime_app.command("approve")
def overtime_approve(employee_no: EmpArg, work_date: DateArg, reason: ReasonOpt,
                     minutes: Annotated[int | None, typer.Option("--minutes", metavar="N",
                                                                 help="approve N minutes (default: all)")] = None,
                     as_json: JsonOpt = False) -> None:
    """Approve the day's overtime, all of it or N minutes (audited)."""
    _overtime(employee_no, work_date, approve=True, minutes=minutes, reason=reason, as_json=as_json)


@overtime_app.command("refuse")
def overtime_refuse(employee_no: EmpArg, work_date: DateArg, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Refuse the day's overtime: none of it is paid (audited)."""
    _overtime(employee_no, work_date, approve=False, minutes=None, reason=reason, as_json=as_json)


@period_app.command("list")
def period_list(as_json: JsonOpt = False) -> None:
    """The periods ever closed, newest first, with their latest version's state."""
    from operations.closing import list_periods
    from shared.runtime.runner import run_async

    rows = run_async(list_periods())
    if as_json:
        print_json(rows)
        return
    table = Table("period", "state", "version", "closed by", "closed at", "changes kept")
    for row in rows:
        table.add_row(row["period"], row["state"] + (" (forced)" if row["forced"] else ""), str(row["version"]),
                      row["closed_by"], row["closed_at"], str(row["changes"]))
    out.print(table)


def _print_period(info: dict[str, Any]) -> None:
    version = f" version {info['version']}" if info["version"] else ""
    out.print(f"period {info['period']}: {info['state']}{version}")
    if info["closed_by"]:
        forced = " (forced)" if info["forced"] else ""
        out.print(f"  closed by {info['closed_by']} at {info['closed_at']}{forced}: {info['reason']}")
    if info["reopened_by"] and info["state"] == "open":
        out.print(f"  reopened by {info['reopened_by']} at {info['reopened_at']}: {info['reopen_reason']}")
    counts = ", ".join(f"{kind} {n}" for kind, n in info["open_exceptions"].items()) or "none"
    out.print(f"  open exceptions: {counts}; days not closed yet: {info['days_not_closed']}")
    if info["changes"]:
        table = Table("employee", "date", "before", "after", "execution")
        for change in info["changes"]:
            table.add_row(change["employee_no"], change["work_date"], _figures(change["before"]),
                          _figures(change["after"]), change["execution_id"][:8])
        out.print(f"  changes kept instead of written ({len(info['changes'])}):")
        out.print(table)


def _figures(figures: dict[str, Any]) -> str:
    if not figures:
        return "(no row)"
    return f"{figures['status']} {figures['worked_minutes']} min"


@period_app.command("show")
def period_show(period: PeriodArg, as_json: JsonOpt = False) -> None:
    """One period: state, version, who closed it and why, and what recomputes kept after the close."""
    from operations.closing import period_info
    from pipelines.monthend.period import Period
    from shared.runtime.runner import run_async

    info = run_async(period_info(Period.parse(period)))
    print_json(info) if as_json else _print_period(info)


@period_app.command("close")
def period_close(period: PeriodArg, reason: ReasonOpt,
                 force: Annotated[bool, typer.Option("--force", help="close over open critical exceptions")] = False,
                 as_json: JsonOpt = False) -> None:
    """Close the month: its days freeze and its export is launched (refused while critical exceptions are open)."""
    from operations.launching import close_and_export
    from pipelines.monthend.period import Period
    from shared.records.operator_actions import cli_actor

    info = close_and_export(Period.parse(period), reason, force=force, actor=cli_actor(), via="cli")
    if as_json:
        print_json(info)
        return
    _print_period(info)
    out.print(f"  export launched (event {info['event_id']})")


@period_app.command("reopen")
def period_reopen(period: PeriodArg, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Reopen a closed month: its days may change again; closing it again makes the next version."""
    from operations.closing import reopen_period
    from pipelines.monthend.period import Period
    from shared.records.operator_actions import cli_actor
    from shared.runtime.runner import run_async

    info = run_async(reopen_period(Period.parse(period), reason, actor=cli_actor(), via="cli"))
    print_json(info) if as_json else _print_period(info)


def export(period: PeriodArg,
           to: Annotated[str | None, typer.Option("--to", metavar="DIR", help="write the five files here")] = None,
           as_json: JsonOpt = False) -> None:
    """The files of a closed month's latest export: its folder, or copied into DIR (the same bytes)."""
    from pathlib import Path

    from pipelines.export.version import export_files
    from pipelines.monthend.period import Period
    from shared.runtime.runner import run_async

    result = run_async(export_files(Period.parse(period), Path(to) if to is not None else None))
    if as_json:
        print_json(result)
    elif to is None:
        out.print(result["directory"], highlight=False, soft_wrap=True)
    else:
        out.print(f"period {result['period']} version {result['version']} written to {result['directory']}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add the month-end commands to `app`."""
    app.command("export")(export)
    app.add_typer(exceptions_app, name="exceptions")
    app.add_typer(overtime_app, name="overtime")
    app.add_typer(period_app, name="period")
