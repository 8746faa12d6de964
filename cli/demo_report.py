"""What `hrsync demo` prints: the setup, the data, a summary of the execution, the crews' rosters and the trace.

Everything read back comes from the app database (the execution, its stage rows, the attendance days
and outbox rows it wrote) and from the mail sink's folder, so the report shows what the chain did.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from sqlalchemy import case, func, select

from cli.demo_company import CREWS, SHIFTS
from cli.demo_data import DemoData
from pipelines import registry
from pipelines.trace import trace_of
from shared.config.redaction import redact_text, redact_url
from shared.config.settings import Settings
from shared.database.db import app_engine
from shared.database.tables import attendance_days, employees, execution_stages, notifications
from shared.records.executions import FAILURE_STAGE
from shared.records.queries import get_stages
from shared.runtime.runner import run_async

STAGE_ORDER = (*registry.STAGE_NAMES, FAILURE_STAGE)  # the progress line: the stages, then the failure notice


def describe_setup(embedded: dict[str, bool], settings: Settings) -> Text:
    """One line per part: embedded (which file) or the real service (password masked)."""
    shown = {
        "app_db": ("app database", settings.database_url, "app.db (SQLite)"),
        "hris": ("HRIS", settings.hris_odbc, "hris.db (SQLite, generated)"),
        "biostar": ("BioStar", settings.biostar_url, "biostar.db (SQLite, generated)"),
        "broker": ("broker", settings.broker_url, "filesystem:// in broker/"),
        "result_backend": ("result backend", settings.result_backend, "results.db (SQLite)"),
        "mail": ("mail", settings.smtp_url, ".eml files in mail/"),
    }
    text = Text()
    for key, (name, url, embedded_as) in shown.items():
        text.append(f"  {name:<15}", style="bold")
        if embedded[key] or url is None:
            text.append("embedded ", style="green")
            text.append(f"{embedded_as}\n")
        else:
            text.append("real     ", style="yellow")
            text.append(f"{redact_url(url) if '://' in url else redact_text(url)}\n")
    return text


def describe_data(data: DemoData, embedded: dict[str, bool]) -> Text:
    """What was generated and where it went."""
    hris = "→ hris.db" if embedded["hris"] else "(not written: the HRIS is real)"
    biostar = "→ biostar.db" if embedded["biostar"] else "(not written: BioStar is real)"
    text = Text("demo data: ", style="bold")
    text.append(f"{len(data.employees)} employees, {data.departments} departments, {data.managers} managers, "
                f"{len(data.absences)} absences {hris}\n"
                f"           {len(data.logs)} BioStar logs {data.first_day} … {data.last_day} {biostar}")
    return text


async def progress(execution_id: str) -> str:
    """`merge 12/30` style: per stage, finished stage rows of all rows so far."""
    engine = await app_engine()
    es = execution_stages
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(es.c.stage, es.c.status, func.count()).where(es.c.execution_id == execution_id)
            .group_by(es.c.stage, es.c.status))).all()
    total: Counter[str] = Counter()
    done: Counter[str] = Counter()
    for stage, status, count in rows:
        total[stage] += count
        if status == "succeeded":
            done[stage] += count
    parts = [f"{stage} {done[stage]}/{total[stage]}" for stage in STAGE_ORDER if total[stage]]
    return ", ".join(parts) or "waiting for the worker"


@dataclass
class Report:
    """What the execution did, read back from the app database and the mail sink."""

    execution: dict[str, Any]
    stages: list[dict[str, Any]]
    employees: int = 0
    late_days: int = 0
    early_days: int = 0
    outbox: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, status) → rows
    eml_files: int | None = None
    overtime_days: int = 0
    overtime_minutes: int = 0
    leave_kinds: Counter[str] = field(default_factory=Counter)  # absence_kind → `on_leave` days
    crews: list[CrewDay] = field(default_factory=list)


@dataclass(frozen=True)
class CrewDay:
    """How many of a crew's rows of one date have this shift code and status, and their overtime."""

    crew: str
    work_date: dt.date
    shift_code: str
    status: str
    rows: int
    overtime_minutes: int


def collect(execution: dict[str, Any], mail_folder: Path | None) -> Report:
    """Read the report of a finished execution."""
    execution_id = execution["id"]

    async def read() -> Report:
        engine = await app_engine()
        ad, n = attendance_days, notifications
        async with engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(employees))).scalar_one()
            late, early = (await conn.execute(  # CASE, not FILTER: MariaDB has no FILTER clause
                select(func.coalesce(func.sum(case((ad.c.late_minutes > 0, 1), else_=0)), 0),
                       func.coalesce(func.sum(case((ad.c.early_exit_minutes > 0, 1), else_=0)), 0))
                .where(ad.c.execution_id == execution_id))).one()
            outbox = (await conn.execute(select(n.c.kind, n.c.status, func.count())
                                         .where(n.c.execution_id == execution_id).group_by(n.c.kind, n.c.status)))
            report = Report(execution, await get_stages(execution_id), int(count), int(late), int(early),
                            Counter({(kind, status): int(c) for kind, status, c in outbox}))
            days, minutes = (await conn.execute(
                select(func.count(), func.coalesce(func.sum(ad.c.overtime_minutes), 0))
                .where(ad.c.execution_id == execution_id, ad.c.overtime_minutes > 0))).one()
            report.overtime_days, report.overtime_minutes = int(days), int(minutes)
            leave = await conn.execute(select(ad.c.absence_kind, func.count())
                                       .where(ad.c.execution_id == execution_id, ad.c.status == "on_leave")
                                       .group_by(ad.c.absence_kind))
            report.leave_kinds = Counter({str(kind): int(c) for kind, c in leave})
            crews = await conn.execute(
                select(employees.c.department, ad.c.work_date, ad.c.shift_code, ad.c.status, func.count(),
                       func.coalesce(func.sum(ad.c.overtime_minutes), 0))
                .join(employees, employees.c.employee_no == ad.c.employee_no)
                .where(ad.c.execution_id == execution_id, employees.c.department.in_(CREWS))
                .group_by(employees.c.department, ad.c.work_date, ad.c.shift_code, ad.c.status))
            report.crews = [CrewDay(crew, _day(day), code, status, int(c), int(ot))
                            for crew, day, code, status, c, ot in crews]
        return report

    report = run_async(read())
    if mail_folder is not None:
        report.eml_files = len(list(mail_folder.glob("*.eml"))) if mail_folder.exists() else 0
    return report


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _summary(report: Report, stage: str) -> dict[str, Any]:
    return (report.execution.get("summary") or {}).get(stage) or {}


def summary(report: Report, data: DemoData) -> Group:
    """What the chain found, next to what was planted, and the plant's crews day by day."""
    return Group(summary_table(report, data), crews_table(report, data))


def summary_table(report: Report, data: DemoData) -> Table:
    """Employees, punches, days by status and emails: what the chain found, next to what was planted."""
    extract, merge, notify = (_summary(report, s) for s in ("extract", "merge", "notify"))
    imported, by_status = merge.get("imported", {}), merge.get("by_status", {})
    planted = data.planted
    table = Table("", "count", "notes", title="what the chain did", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    table.add_row("employees", str(report.employees),
                  f"{extract.get('read', 0)} read from the HRIS, {extract.get('inserted', 0)} new, "
                  f"{extract.get('rejected_count', 0)} rejected")
    table.add_row("punches", str(imported.get("punches_new", 0)),
                  f"auth failures ignored ({planted['failed verification']} planted)")
    table.add_row("unknown badge", str(imported.get("unmatched_new", 0)),
                  f"a badge no employee owns ({planted['unknown badge']} planted)")
    leave = extract.get("absences", {})
    table.add_row("absences", str(leave.get("read", 0)),
                  f"read from the HRIS; {planted['leave not approved']} cancelled or pending")
    table.add_section()
    dates = data.dates
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(report.leave_kinds.items()))
    notes = {"present": f"double taps counted once ({planted['double tap']} planted)",
             "absent": f"{planted['absence']} planted", "missing_punch": f"{planted['missing punch']} planted",
             "half_day": f"{planted['half day']} planted",
             "on_leave": f"{kinds} ({planted['on leave']} planted)" if kinds else f"{planted['on leave']} planted",
             "holiday": f"company {dates.holiday:%m-%d}, Munich {dates.bavaria:%m-%d}, plant {dates.saxony:%m-%d}",
             "off": "weekends, the crews' days off"}
    for status in (*notes, *sorted(set(by_status) - set(notes))):
        table.add_row(f"days {status}", str(by_status.get(status, 0)), notes.get(status, ""))
    table.add_row("  late arrivals", str(report.late_days), f"{planted['late arrival']} planted")
    table.add_row("  early exits", str(report.early_days),
                  f"{planted['early exit']} planted, + the half days")
    table.add_row("  overtime", str(report.overtime_days),
                  f"{report.overtime_minutes} min; {planted['long day']} long days planted")
    table.add_section()
    for kind in sorted({kind for kind, _ in report.outbox}):
        statuses = {s: c for (k, s), c in report.outbox.items() if k == kind}
        table.add_row(f"emails {kind}", str(sum(statuses.values())),
                      ", ".join(f"{c} {s}" for s, c in sorted(statuses.items())))
    where = f"; {report.eml_files} .eml files in mail/" if report.eml_files is not None else ""
    table.add_row("emails sent", str(notify.get("sent", 0)), f"{notify.get('failed', 0)} failed{where}")
    return table


def crews_table(report: Report, data: DemoData) -> Table:
    """Each crew's roster as it was computed: one letter per day (the shift most of its rows had), its overtime."""
    by_crew: dict[str, dict[dt.date, Counter[tuple[str, str]]]] = {crew: {} for crew in CREWS}
    overtime: Counter[str] = Counter()
    for row in report.crews:
        by_crew[row.crew].setdefault(row.work_date, Counter())[(row.shift_code, row.status)] += row.rows
        overtime[row.crew] += row.overtime_minutes
    days = [data.first_day + dt.timedelta(days=i) for i in range((data.last_day - data.first_day).days + 1)]
    legend = ", ".join(f"{code[0].upper()} {code} {SHIFTS[code]['start'][:2]}-{SHIFTS[code]['end'][:2]}"
                       for code in ("early", "late", "night"))
    table = Table("crew", _by_week([f"{d:%a}"[0] for d in days]), "overtime", box=box.SIMPLE_HEAD, pad_edge=False,
                  title=f"the plant's crews from {data.first_day:%a %Y-%m-%d}", title_justify="left",
                  caption=f"{legend}, · off; lowercase: a holiday", caption_justify="left")
    for crew, rostered in by_crew.items():
        letters = [_roster_letter(rostered.get(day)) for day in days]
        table.add_row(crew, _by_week(letters), f"{overtime[crew]} min")
    return table


def _roster_letter(rows: Counter[tuple[str, str]] | None) -> str:
    if not rows:
        return " "
    code, status = rows.most_common(1)[0][0]
    letter = "·" if code == "off" else code[0].upper()
    return letter.lower() if status == "holiday" else letter


def _by_week(letters: list[str]) -> str:
    return " ".join("".join(letters[i:i + 7]) for i in range(0, len(letters), 7))


def trace_table(report: Report, width: int = 80) -> Table:
    """The execution as a waterfall: one line per step of its trace (`pipelines.trace`: a planner, a final
    step, or a stage's shards of one kind), its bar placed on the execution's timeline."""
    trace = trace_of(report.execution, report.stages)
    table = Table("stage", "step", "n", "start", "wall", "busy", "par", "timeline", box=box.SIMPLE_HEAD,
                  pad_edge=False, title=f"trace of execution {report.execution['id']}", title_justify="left")
    if not trace.steps:
        return table
    total = trace.total_ms
    bar_width = max(10, width - 66)
    for step in trace.steps:
        left = min(int(step.offset_ms / total * bar_width), bar_width - 1)
        length = min(max(1, round(step.wall_ms / total * bar_width)), bar_width - left)
        table.add_row(step.stage, step.name, str(len(step.bars)), f"{step.offset_ms / 1000:.2f}",
                      f"{step.wall_ms / 1000:.2f}", f"{step.busy_ms / 1000:.2f}", str(step.parallel),
                      Text(" " * left + "█" * length, style="red" if step.status == "failed" else "cyan"))
    table.caption = (f"{len(trace.bars)} stage rows in {total / 1000:.1f}s. Seconds from the start; busy: the "
                     "shards' durations added up; par: most shards running at once")
    return table


def where_files_are(folder: Path, embedded: dict[str, bool]) -> Group:
    """The files of this run."""
    entries = [("app.db", "app database (SQLite)", embedded["app_db"]),
               ("hris.db", "demo HRIS: views hrsync_employees, hrsync_absences", embedded["hris"]),
               ("biostar.db", "demo BioStar: monthly tables t_lgYYYYMM", embedded["biostar"]),
               ("shifts.yaml", "the shifts file (HRSYNC_SHIFTS_FILE), the example company",
                (folder / "shifts.yaml").exists()),
               ("mail/", "the .eml sink: one file per email sent", embedded["mail"]),
               ("exports/", "month-end exports: YYYY-MM/vN/ (HRSYNC_EXPORT_DIR)", (folder / "exports").exists()),
               ("broker/", "the embedded Celery transport (message files)", embedded["broker"]),
               ("results.db", "the Celery result backend (SQLite)", embedded["result_backend"]),
               ("worker.log", "the worker's log (JSON lines)", True)]
    lines = [Text(f"files in {folder}:", style="bold")]
    lines += [Text(f"  {name:<12} {what}") for name, what, present in entries if present]
    lines.append(Text("  (HRSYNC_HOME=<that folder> points any hrsync command at this run)"))
    return Group(*lines)
