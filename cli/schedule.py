"""`hrsync scheduler` (the APScheduler process) and `hrsync schedule list|run` (operator commands)."""

from __future__ import annotations

import datetime as dt
import sys
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
    from shared.records.schedule_pauses import paused_jobs
    from shared.runtime.runner import run_async

    settings = get_settings()
    try:
        pauses = run_async(paused_jobs())
    except Exception as exc:  # the jobs come from settings: list them even when the database is away
        sys.stderr.write(f"hrsync: warning: pauses unknown (app database: {type(exc).__name__})\n")
        pauses = {}
    rows = []
    for job in jobs_from_settings(settings).values():
        upcoming = job.first_slot(now)
        rows.append({
            "job": job.name, "cron": job.cron, "timezone": settings.timezone, "scope": job.scope,
            "notify": job.notify, "days": job.days, "grace_seconds": int(job.grace.total_seconds()),
            "next_fire_time": upcoming.astimezone(dt.UTC).isoformat() if upcoming else None,
            "next_fire_time_local": upcoming.isoformat() if upcoming else None,
            "next_event_id": None if upcoming is None else job.slot_event(upcoming).id,
            "paused": _pause_json(pauses.get(job.name)),
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
    table = Table("job", "cron", "scope", "grace", "next fire time (local)", "next event id", "paused")
    for row in rows:
        paused = row["paused"]
        table.add_row(row["job"], row["cron"], row["scope"], f"{row['grace_seconds']} s",
                      "paused" if paused else row["next_fire_time_local"] or "never",
                      "" if paused else row["next_event_id"] or "",
                      f"by {paused['paused_by']} since {paused['paused_at']}: {paused['reason']}" if paused else "")
    out.print(table)


def _pause_json(pause: dict[str, Any] | None) -> dict[str, Any] | None:
    if pause is None:
        return None
    return {"paused_by": pause["paused_by"], "paused_at": pause["paused_at"].isoformat(), "via": pause["via"],
            "reason": pause["reason"]}


def _known_job(job_name: str) -> Any:
    from scheduler.jobs import jobs_from_settings

    jobs = jobs_from_settings(get_settings())
    job = jobs.get(job_name)
    if job is None:
        raise ConfigError(f"JOB: unknown schedule {job_name!r} (known: {', '.join(jobs) or 'none'})")
    return job


JobArg = Annotated[str, typer.Argument(metavar="JOB", help="a job of `schedule list`")]


@schedule_app.command("pause")
def schedule_pause(job_name: JobArg,
                   reason: Annotated[str, typer.Option("--reason", help="why (shown by `schedule list`, audited)")],
                   as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Stop JOB firing until `schedule resume JOB`; its slots meanwhile are recorded `paused` and are not
    fired on resume. Exit 1 if it is paused already."""
    from cli.output import out, print_json
    from shared.records.operator_actions import cli_actor
    from shared.records.schedule_pauses import pause_job
    from shared.runtime.runner import run_async

    if not reason.strip():
        raise ConfigError("--reason: say why the job is paused")
    job = _known_job(job_name)
    pause = run_async(pause_job(job.name, reason, actor=cli_actor(), via="cli"))
    if as_json:
        print_json({"job": job.name, "paused": _pause_json(pause)})
        return
    out.print(f"paused {job.name}: no slot fires until `hrsync schedule resume {job.name}`", highlight=False)


@schedule_app.command("resume")
def schedule_resume(job_name: JobArg,
                    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """JOB fires again from its next slot (the slots that went by while paused are not fired). Exit 1 if
    it is not paused."""
    from cli.output import out, print_json
    from shared.records.operator_actions import cli_actor
    from shared.records.schedule_pauses import resume_job
    from shared.runtime.runner import run_async

    job = _known_job(job_name)
    pause = run_async(resume_job(job.name, actor=cli_actor(), via="cli"))
    if as_json:
        print_json({"job": job.name, "resumed": True, "was": _pause_json(pause)})
        return
    out.print(f"resumed {job.name} (paused by {pause['paused_by']} since {pause['paused_at'].isoformat()}); "
              "it fires from its next slot", highlight=False)


@schedule_app.command("run")
def schedule_run(job_name: JobArg) -> None:
    """Publish JOB's sync request now, with a manual id (`<job>:manual:<uuid>`)."""
    from cli.output import out
    from shared.events.bus import publish_once

    settings = get_settings()
    job = _known_job(job_name)
    event = job.manual_event(dt.datetime.now(dt.UTC), str(uuid.uuid4()))
    publish_once(settings.events(), event)
    out.print(f"published {event.type} id={event.id} (job {job.name}, scope {job.scope})")
