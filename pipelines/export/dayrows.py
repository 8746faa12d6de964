"""A day's days.csv line and Days sheet row, spelled from caches: the export's hot path, once per day row.

The general path (`CsvFile.write` and the sheet's `write` over `layout.day_cells`) spells each of a row's
15 cells through a function; on a month of 600,000 days that was most of the writers' time. Here what
repeats is spelled once, by the same functions: an employee's three text cells (30 rows each), dates,
codes and statuses, local minutes (keyed by the instant's UTC minute: zone offsets are whole minutes);
the row is then one format. It writes what the general path writes (tests/unit/test_month_end_files.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.export.cells import CSV_TEXT
from pipelines.export.csvfile import csv_field
from pipelines.export.layout import DAYS_COLUMNS, local_minute
from pipelines.export.rows import ExportDay
from pipelines.export.workbook import CellTail

_KINDS = ("text", "name", "name", "date", "text", "text", "text", "minute", "minute",
          "count", "count", "count", "count", "count", "bool")
_MINUTES_HELD = 100_000  # local minutes cached (a month has 44,640); cleared beyond, so memory stays flat
_CODES_HELD = 10_000  # (date, shift, status, kind) spellings cached: a month has a few hundred
_NO_CELL = ("", "")  # a null: an empty CSV field, no sheet cell


class DaySpeller:
    """Spells days as `DAYS_COLUMNS` rows; `tails`: the Days sheet's cell tails (`Workbook.sheet(...).tails`)."""

    def __init__(self, zone: ZoneInfo, tails: Sequence[CellTail]) -> None:
        if tuple(column.kind for column in DAYS_COLUMNS) != _KINDS:
            raise ValueError("DAYS_COLUMNS changed: DaySpeller spells the old layout")
        if tails[9](0) != '"><v>0</v></c>' or tails[14](True) != '" t="b"><v>1</v></c>':
            raise ValueError("the Days sheet's count or bool cells changed: DaySpeller spells the old ones")
        self._zone = zone
        self._text_tail, self._name_tail, self._date_tail, self._minute_tail = tails[0], tails[1], tails[3], tails[7]
        self._employee: tuple[str, str, str | None] | None = None
        self._employee_csv = ""
        self._employee_xml: tuple[str, str, str] = ("", "", "")
        self._codes: dict[tuple[date, str, str, str | None], tuple[str, str, str, str, str]] = {}
        self._minutes: dict[datetime | None, tuple[str, str]] = {None: _NO_CELL}

    def _spell_employee(self, key: tuple[str, str, str | None]) -> None:
        number, name, department = key
        self._employee = key
        self._employee_csv = ",".join([csv_field(CSV_TEXT["text"](number)), csv_field(CSV_TEXT["name"](name)),
                                       csv_field(CSV_TEXT["name"](department))])
        self._employee_xml = (self._text_tail(number), self._name_tail(name),
                              "" if department is None else self._name_tail(department))

    def _spell_codes(self, key: tuple[date, str, str, str | None]) -> tuple[str, str, str, str, str]:
        """work_date, shift_code, status, absence_kind: their CSV fields joined, and their cells' tails."""
        if len(self._codes) > _CODES_HELD:
            self._codes.clear()
        work_date, shift, status, kind = key
        text = CSV_TEXT["text"]
        fields = ",".join([CSV_TEXT["date"](work_date), *(csv_field(text(code)) for code in (shift, status, kind))])
        tail = self._text_tail
        spelled = (fields, self._date_tail(work_date), tail(shift), tail(status), "" if kind is None else tail(kind))
        self._codes[key] = spelled
        return spelled

    def _minute(self, instant: datetime | None) -> tuple[str, str]:
        key = instant if instant is None else instant.replace(second=0, microsecond=0)
        spelled = self._minutes.get(key)
        if spelled is None:
            if len(self._minutes) > _MINUTES_HELD:
                self._minutes = {None: _NO_CELL}
            local: Any = local_minute(key, self._zone)
            spelled = self._minutes[key] = (CSV_TEXT["minute"](local), self._minute_tail(local))
        return spelled

    def spell(self, day: ExportDay, n: str) -> tuple[str, str]:
        """The days.csv fields (without the line end) and the cells of sheet row `n` for `day`."""
        key = (day.employee_no, day.full_name, day.department)
        if key != self._employee:
            self._spell_employee(key)
        a, b, c = self._employee_xml
        codes = (day.work_date, day.shift_code, day.status, day.absence_kind)
        codes_csv, work_date_x, shift_x, status_x, kind_x = self._codes.get(codes) or self._spell_codes(codes)
        first_in, first_in_x = self._minute(day.first_in)
        last_out, last_out_x = self._minute(day.last_out)
        worked, late, early = day.worked_minutes, day.late_minutes, day.early_exit_minutes
        overtime, approved = day.overtime_minutes, day.approved_overtime_minutes
        corrected = day.corrected
        line = (f"{self._employee_csv},{codes_csv},{first_in},{last_out},{worked},{late},"
                f"{early},{overtime},{approved},{'true' if corrected else 'false'}")
        department = f'<c r="C{n}{c}' if c else ""
        absence = f'<c r="G{n}{kind_x}' if kind_x else ""
        came = f'<c r="H{n}{first_in_x}' if first_in_x else ""
        left = f'<c r="I{n}{last_out_x}' if last_out_x else ""
        xml = (f'<c r="A{n}{a}<c r="B{n}{b}{department}<c r="D{n}{work_date_x}<c r="E{n}{shift_x}'
               f'<c r="F{n}{status_x}{absence}{came}{left}<c r="J{n}"><v>{worked}</v></c>'
               f'<c r="K{n}"><v>{late}</v></c><c r="L{n}"><v>{early}</v></c><c r="M{n}"><v>{overtime}</v></c>'
               f'<c r="N{n}"><v>{approved}</v></c><c r="O{n}" t="b"><v>{1 if corrected else 0}</v></c>')
        return line, xml

