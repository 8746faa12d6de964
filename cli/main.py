"""`hrsync`: one console script for every process and operator command (DESIGN §3).

Exit codes: 0 success, 1 failed operation, 2 bad usage or bad input (one line naming the option).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.checks import refuse_on_failed_checks
from cli.intake import intake
from cli.month_end import register as register_month_end
from cli.operations import register as register_operations
from cli.output import JsonOpt, out, print_json
from cli.punches import punches_app
from cli.schedule import run_scheduler_command, schedule_app
from cli.web import web_app
from shared.config.errors import ConfigError, HrsyncError
from shared.events.models import CLI_SOURCE

try:  # Typer ≥ 0.20 vendors Click; older releases use the click package itself
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[assignment,no-redef,unused-ignore]
from shared.config.settings import get_settings
from shared.records.status import ExecutionStatus

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="hrsync: HRIS extract → attendance merge → email notify, on Celery + RabbitMQ.")
db_app = typer.Typer(no_args_is_help=True, help="The app database (Alembic migrations).")
app.add_typer(db_app, name="db")
register_operations(app)  # executions, show, trace, replay, cancel, prune, audit, dlq
app.add_typer(schedule_app, name="schedule")
app.command("scheduler")(run_scheduler_command)
app.add_typer(web_app, name="web")  # the operator console
app.add_typer(punches_app, name="punches")
app.command("intake")(intake)  # events over HTTP
register_month_end(app)  # exceptions, overtime, period, export



@app.callback()
def _validate_settings() -> None:
    """Read the settings before any command, so a bad HRSYNC_* variable fails first (exit 2)."""
    get_settings()


@app.command()
def check(as_json: JsonOpt = False, offline: Annotated[bool, typer.Option(
        "--offline", help="static checks only, no connections")] = False) -> None:
    """The start-up self-check (also run by worker, bridge and scheduler at start)."""
    from operations.processes import celery_conf
    from shared.check import run_checks

    results = run_checks(get_settings(), celery_conf(), connectivity=not offline)
    if as_json:
        print_json([r.__dict__ for r in results])
    else:
        table = Table("check", "ok", "detail")
        for r in results:
            table.add_row(r.name, "[green]ok[/]" if r.ok else "[red]FAIL[/]", r.detail)
        out.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """A Celery worker on the gevent pool (extra arguments go to `celery worker`)."""
    args = list(ctx.args)
    if not any(a in ("-P", "--pool") or a.startswith("--pool=") for a in args):
        args = ["-P", "gevent", *args]
    if not any(a in ("-c", "--concurrency") or a.startswith("--concurrency=") for a in args):
        args = ["-c", "50", *args]
    argv = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", *args]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with the worker


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Migrate the app database up (to the newest revision by default)."""
    from shared.database import migrations
    from shared.runtime.runner import run_async

    run_async(migrations.upgrade(revision))
    out.print(f"app database at revision {run_async(migrations.current_revision())}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target revision")]) -> None:
    """Migrate the app database down to REVISION (`base` removes every table)."""
    from shared.database import migrations
    from shared.runtime.runner import run_async

    run_async(migrations.downgrade(revision))
    out.print(f"app database at revision {run_async(migrations.current_revision())}")


@app.command()
def bridge() -> None:
    """Consume `hrsync.bridge` and launch a workflow for each event (stops cleanly on SIGTERM)."""
    from operations.processes import run_bridge
    from shared.observability.tracing import ensure_logging
    from shared.runtime.stopping import StopFlag

    stop_flag = StopFlag().install()  # from the first moment: a SIGTERM during the checks still exits 0
    ensure_logging()
    refuse_on_failed_checks()
    run_bridge(stop_flag=stop_flag)


@app.command()
def publish(
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="event type, e.g. hrsync.sync.requested")],
    data: Annotated[str, typer.Option("--data", help="the event's data as JSON")] = "{}",
    event_id: Annotated[str | None, typer.Option("--id", help="event id (idempotency key)")] = None,
) -> None:
    """Publish one event to `hrsync.events`, as another system would (confirmed by the broker)."""
    from shared.events.bus import publish_once
    from shared.events.models import InvalidEvent, build_event

    try:
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--data: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(payload, dict):
        raise ConfigError("--data: expected a JSON object")
    try:
        event = build_event(event_type, payload, id=event_id, source=CLI_SOURCE)
    except InvalidEvent as exc:
        raise ConfigError(f"--data: {exc.reason}" if exc.reason.startswith("data") else exc.reason) from None
    publish_once(get_settings().events(), event)
    out.print(f"published {event.type} id={event.id}")


@app.command()
def sync(
    scope: Annotated[str, typer.Option("--scope", help="nightly, hris or attendance")] = "nightly",
    date_from: Annotated[str | None, typer.Option("--from", help="first day (YYYY-MM-DD)")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="last day (YYYY-MM-DD)")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the execution to its end")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds --wait follows at most")] = 3600,
) -> None:
    """Publish a sync request now; with --wait, follow it to the end (exit 0 succeeded, 1 failed)."""
    from cli.follow import follow_event
    from shared.events.bus import publish_once
    from shared.events.models import InvalidEvent, build_event

    data: dict[str, Any] = {"scope": scope}
    data.update({k: v for k, v in (("from", date_from), ("to", date_to)) if v is not None})
    try:
        event = build_event("hrsync.sync.requested", data, source=CLI_SOURCE)
    except InvalidEvent as exc:
        raise ConfigError(_option_reason(exc.reason)) from None
    publish_once(get_settings().events(), event)
    out.print(f"published sync request {event.id} (scope {scope})")
    if wait:
        status = follow_event(event.id, out, timeout)
        raise typer.Exit(0 if status == ExecutionStatus.SUCCEEDED else 1)


def _option_reason(reason: str) -> str:
    """An event validation reason in terms of the command's options (`data.from` → `--from`)."""
    options = (("data.scope", "--scope"), ("data.from", "--from"), ("data.to", "--to"), ("data", "--from/--to"))
    for field, option in options:
        if reason.startswith(field):
            return option + reason[len(field):]
    return reason


@app.command()
def demo(web: Annotated[bool, typer.Option("--web", help="then serve the console on this run")] = False,
         port: Annotated[int, typer.Option("--port", min=1, max=65535, help="the console's port (--web)")] = 8080,
         ) -> None:
    """Run hrsync end to end on embedded defaults (no services needed) and show what it did."""
    from cli.demo import run_demo

    def console() -> None:  # on the run's own database (run_demo pointed HRSYNC_HOME at it), its worker running
        from cli.web import serve

        serve("127.0.0.1", port, out, one_time_note="; Ctrl-C stops it and the demo's worker")

    run_demo(out, then=console if web else None)


def main() -> None:
    """Console entry point: map errors to one line and the contract's exit codes."""
    try:
        code = app(standalone_mode=False)  # returns the exit code of a typer.Exit in this mode
    except NoArgsIsHelpError:
        sys.exit(2)  # the help was printed; no command is bad usage
    except UsageError as exc:
        sys.stderr.write(f"hrsync: error: {exc.format_message()}\n")
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("hrsync: aborted\n")
        sys.exit(130)
    except HrsyncError as exc:
        sys.stderr.write(f"hrsync: error: {exc}\n")
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
