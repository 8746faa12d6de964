"""Writing a closed month's export files into a directory (DESIGN §11), in one pass over its day rows.

Memory stays flat in the number of rows: each day is written out as it comes, and only the current
employee's totals are held; the workbook's rows go to temporary files until it is closed. Every file is
written under a temporary name and renamed when complete, the manifest last, so a directory with a
manifest holds a whole export. The same job, kinds and rows write byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import date
from pathlib import Path

from pipelines.export.cells import Cell
from pipelines.export.csvfile import CsvFile
from pipelines.export.dayrows import DaySpeller
from pipelines.export.layout import DAYS_COLUMNS, PAYROLL_COLUMNS, leave_kinds, summary_columns
from pipelines.export.manifest import MANIFEST, FileEntry, manifest_bytes, sha256_of
from pipelines.export.rows import ExportDay, ExportJob
from pipelines.export.totals import EmployeeMonth
from pipelines.export.workbook import Workbook

DAYS, SUMMARY, PAYROLL = "days.csv", "summary.csv", "payroll.csv"
SHEETS = ("Summary", "Days", "Payroll")


def workbook_name(job: ExportJob) -> str:
    return f"attendance-{job.period}.xlsx"


def export_names(job: ExportJob) -> tuple[str, ...]:
    """The five files of an export, in the manifest's order, the manifest last."""
    return (DAYS, SUMMARY, PAYROLL, workbook_name(job), MANIFEST)


def _partial(directory: Path, name: str) -> Path:
    return directory / f".{name}.partial{Path(name).suffix}"


class _Order:
    """Refuses rows out of (employee_no, work_date) order, outside the period, or not closed."""

    def __init__(self, job: ExportJob, kinds: set[str]) -> None:
        self._job, self._kinds = job, kinds
        self._last: tuple[str, date] | None = None

    def check(self, day: ExportDay) -> None:
        key = (day.employee_no, day.work_date)
        kind = day.absence_kind
        if (self._last is not None and key <= self._last) or day.work_date not in self._job.period \
                or day.status == "open" or (kind is not None and kind.lower() not in self._kinds):
            self._refuse(day)  # the message is built only for the row refused
        self._last = key

    def _refuse(self, day: ExportDay) -> None:
        key = (day.employee_no, day.work_date)
        where = f"{day.employee_no} {day.work_date}"
        if self._last is not None and key <= self._last:
            raise ValueError(f"day rows out of order: {where} after {self._last[0]} {self._last[1]}")
        if day.work_date not in self._job.period:
            raise ValueError(f"day {where} is not in period {self._job.period}")
        if day.status == "open":
            raise ValueError(f"day {where} is an open instance: a month with open days is not exported")
        if day.absence_kind is not None and day.absence_kind.lower() not in self._kinds:
            raise ValueError(f"day {where}: absence kind {day.absence_kind!r} is not among the month's kinds")


def write_month_export(directory: Path, job: ExportJob, absence_kinds: Iterable[str],
                       days: Iterable[ExportDay]) -> dict[str, FileEntry]:
    """Write days.csv, summary.csv, payroll.csv, the workbook and manifest.json into `directory`.

    `absence_kinds`: every `absence_kind` of the month's day rows (the summary's header names them
    before the first row is read). `days`: the month's closed day rows ordered by employee_no (code
    point order, which is the exact collation's on MariaDB and SQLite), then work_date; a row out of
    order, outside the period, `open`, or of an unlisted kind raises ValueError. Returns the manifest's file entries.
    """
    directory.mkdir(parents=True, exist_ok=True)
    kinds = leave_kinds(absence_kinds)
    summary_layout = summary_columns(kinds)
    names = export_names(job)
    xlsx = workbook_name(job)
    partials = {name: _partial(directory, name) for name in names}
    order = _Order(job, set(kinds))
    try:
        with ExitStack() as files:
            days_csv = files.enter_context(CsvFile(partials[DAYS], DAYS_COLUMNS))
            summary_csv = files.enter_context(CsvFile(partials[SUMMARY], summary_layout))
            payroll_csv = files.enter_context(CsvFile(partials[PAYROLL], PAYROLL_COLUMNS))
            book = files.enter_context(Workbook(partials[xlsx], job.created_at, list(
                zip(SHEETS, (summary_layout, DAYS_COLUMNS, PAYROLL_COLUMNS), strict=True))))
            summary_sheet, days_sheet, payroll_sheet = (book.sheet(name) for name in SHEETS)
            speller = DaySpeller(job.zone, days_sheet.tails)

            def close_employee(month: EmployeeMonth) -> None:
                cells = month.summary_cells(kinds)
                summary_csv.write(cells)
                summary_sheet.write(cells)
                for line in month.payroll_lines(kinds):
                    payroll: list[Cell] = [month.employee_no, line.component, line.quantity, line.unit]
                    payroll_csv.write(payroll)
                    payroll_sheet.write(payroll)

            month: EmployeeMonth | None = None
            for day in days:
                order.check(day)
                if month is None or day.employee_no != month.employee_no:
                    if month is not None:
                        close_employee(month)
                    month = EmployeeMonth(day)
                month.add(day)
                number = days_sheet.next_number()
                line, xml = speller.spell(day, number)
                days_csv.write_line(line)
                days_sheet.write_xml(number, xml)
            if month is not None:
                close_employee(month)
            counts = {DAYS: days_csv.rows, SUMMARY: summary_csv.rows, PAYROLL: payroll_csv.rows}
        counts[xlsx] = book.rows
        entries = {name: FileEntry(counts[name], sha256_of(partials[name])) for name in names[:4]}
        partials[MANIFEST].write_bytes(manifest_bytes(job, entries))
        for name in names:
            os.replace(partials[name], directory / name)
    finally:
        for path in partials.values():
            path.unlink(missing_ok=True)
    return entries
