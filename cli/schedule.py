"""`hrsync scheduler` (the APScheduler process) and `hrsync schedule list|run` (operator commands)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

from shared.config.errors import ConfigError
from shared.config.settings import get_settings

schedule_app = typer.Typer(no_args_is_help=True, help="The scheduled syncs (nightly and HRSYNC_SCHEDULES).")


def run_scheduler_command() -> None:
    """APScheduler process publishing scheduled sync events (stops cleanly on SIGTERM)."""
    from cli.checks import refuse_on_failed_checks
    from scheduler.process import run_scheduler
    from shared.observability.tracing import ensure_logging
    from shared.runtime.stopping import StopFlag

    stop_flag = StopFlag().install()  # from the first moment: a SIGTERM during the checks still exits 0
    settings = get_settings()
    settings.events()  # no event plane configured: exit 2 before anything starts
    ensure_logging()
    refuse_on_failed_checks()
    run_scheduler(settings, stop_flag)


def _job_rows(now: dt.datetime) -> list[dict[str, Any]]:
    from scheduler.jobs import jobs_from_settings

    settings = get_settings()
    rows = []
    for job in jobs_from_settings(settings).values():
        upcoming = job.first_slot(now)
        rows.append({
            "job": job.name, "cron": job.cron, "timezone": settings.timezone, "scope": job.scope,
            "notify": job.notify, "days": job.days, "grace_seconds": int(job.grace.total_seconds()),
            "next_fire_time": upcoming.astimezone(dt.UTC).isoformat() if upcoming else None,
            "next_fire_time_local": upcoming.isoformat() if upcoming else None,
            "next_event_id": None if upcoming is None else job.slot_event(upcoming).id,
        })
    return rows


@schedule_app.command("list")
def schedule_list(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """The scheduled jobs with their next fire times."""
    from cli.output import out, print_json

    rows = _job_rows(dt.datetime.now(dt.UTC))
    if as_json:
        print_json(rows)
        return
    table = Table("job", "cron", "scope", "grace", "next fire time (local)", "next event id")
    for row in rows:
        table.add_row(row["job"], row["cron"], row["scope"], f"{row['grace_seconds']} s",
                      row["next_fire_time_local"] or "never", row["next_event_id"] or "")
    out.print(table)


@schedule_app.command("run")
def schedule_run(job_name: Annotated[str, typer.Argument(metavar="JOB", help="a job of `schedule list`")]) -> None:
    """Publish JOB's sync request now, with a manual id (`<job>:manual:<uuid>`)."""
    from cli.output import out
    from scheduler.jobs import jobs_from_settings
    from shared.events.bus import publish_once

    settings = get_settings()
    jobs = jobs_from_settings(settings)
    job = jobs.get(job_name)
    if job is None:
        raise ConfigError(f"JOB: unknown schedule {job_name!r} (known: {', '.join(jobs) or 'none'})")
    event = job.manual_event(dt.datetime.now(dt.UTC), str(uuid.uuid4()))
    publish_once(settings.events(), event)
    out.print(f"published {event.type} id={event.id} (job {job.name}, scope {job.scope})")
