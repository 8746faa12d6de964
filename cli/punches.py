"""`hrsync punches list|add|void`: manual punch corrections (DESIGN §3, §6), audited as operator actions.

Times without an offset are read in HRSYNC_TIMEZONE. Each add or void requests the recompute of the
affected day(s) through the event plane (`operations.corrections`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.output import JsonOpt, out, print_json
from shared.config.errors import ConfigError
from shared.config.settings import get_settings

punches_app = typer.Typer(no_args_is_help=True, help="Manual punch corrections: list, add, void.")


def _date(value: str | None, option: str, default: dt.date) -> dt.date:
    if value is None:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option}: not a date (YYYY-MM-DD): {value!r}") from None


def parse_local_time(value: str, zone: dt.tzinfo) -> dt.datetime:
    """An ISO date and time; without an offset it is a wall-clock time in `zone`, which must exist and be
    unique (`local_instant`: a DST gap or a repeated hour is refused, naming it)."""
    from operations.corrections import local_instant

    try:
        at = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"TIME: not an ISO date and time (YYYY-MM-DDTHH:MM): {value!r}") from None
    return local_instant(at, zone)


def _show(punch: dict[str, Any]) -> str:
    state = f"void ({punch['void_reason']})" if punch["voided"] else "kept"
    return f"punch {punch['id']} of {punch['employee_no']} at {punch['local_time']} ({punch['source']}): {state}"


def _recompute_line(result: dict[str, Any]) -> str:
    r = result["recompute"]
    execution = f", execution {r['execution_id']}" if r.get("execution_id") else ""
    return f"recompute of {r['from']}..{r['to']} requested (event {r['event_id']}{execution})"


@punches_app.command("list")
def punches_list(
    employee_no: Annotated[str, typer.Argument(metavar="EMP", help="employee number")],
    date_from: Annotated[str | None, typer.Option("--from", help="first local day (default: 7 days ago)")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="last local day (default: today)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """An employee's punches, device and manual, void ones included."""
    from operations.corrections import list_punches
    from shared.runtime.runner import run_async

    today = dt.datetime.now(get_settings().zone).date()
    last = _date(date_to, "--to", today)
    first = _date(date_from, "--from", last - dt.timedelta(days=6))
    rows = run_async(list_punches(employee_no, first, last))
    if as_json:
        print_json(rows)
        return
    table = Table("id", "local time", "source", "device", "state", "reason")
    for r in rows:
        reason = r["void_reason"] if r["voided"] else (r["added_reason"] or "")
        table.add_row(str(r["id"]), r["local_time"], r["source"], str(r["device_id"] or "-"),
                      "void" if r["voided"] else "kept", reason)
    out.print(table)
    out.print(f"{len(rows)} punch(es) of {employee_no} on {first}..{last}")


@punches_app.command("add")
def punches_add(
    employee_no: Annotated[str, typer.Argument(metavar="EMP", help="employee number")],
    time: Annotated[str, typer.Argument(metavar="TIME", help="YYYY-MM-DDTHH:MM (in HRSYNC_TIMEZONE unless an offset)")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept with the punch and in the audit log)")],
    as_json: JsonOpt = False,
) -> None:
    """Add a manual punch; its day is recomputed through the normal event path."""
    from operations.corrections import add_punch
    from operations.event_requests import request_event
    from shared.records.operator_actions import cli_actor
    from shared.runtime.runner import run_async

    at = parse_local_time(time, get_settings().zone)
    result = run_async(add_punch(employee_no, at, reason, actor=cli_actor(), via="cli", request_event=request_event))
    if as_json:
        print_json(result)
        return
    out.print(f"added {_show(result)}; {_recompute_line(result)}")


@punches_app.command("void")
def punches_void(
    punch_id: Annotated[int, typer.Argument(metavar="ID", help="punch id (see `hrsync punches list`)")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept with the punch and in the audit log)")],
    as_json: JsonOpt = False,
) -> None:
    """Void a punch (device or manual): kept, ignored by the rules; its day is recomputed."""
    from operations.corrections import void_punch
    from operations.event_requests import request_event
    from shared.records.operator_actions import cli_actor
    from shared.runtime.runner import run_async

    result = run_async(void_punch(punch_id, reason, actor=cli_actor(), via="cli", request_event=request_event))
    if as_json:
        print_json(result)
        return
    out.print(f"voided {_show(result)}; {_recompute_line(result)}")
