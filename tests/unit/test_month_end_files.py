"""Month end's export files (DESIGN §11): columns, CSV spelling, the formula guard, the workbook, the manifest."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from pipelines.export.rows import ExportDay, ExportJob
from pipelines.export.workbook import excel_serial, excel_text
from pipelines.export.write import write_month_export
from pipelines.monthend.period import Period
from tests.unit.month_end_rows import a_day

JOB = ExportJob(Period(2026, 11), 2, "0631b3c4-761f-4c4b-9a8e-6f0a3c1d2e4f", ZoneInfo("Europe/Berlin"),
                datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
FILES = ("days.csv", "summary.csv", "payroll.csv", "attendance-2026-11.xlsx")


def _month() -> list[ExportDay]:
    return [
        # 07:58:30Z and 17:01Z are 08:58 and 18:01 in Berlin (CET, UTC+1), to the minute
        a_day(day=2, first_in=datetime(2026, 11, 2, 7, 58, 30, tzinfo=UTC),
              last_out=datetime(2026, 11, 2, 17, 1, tzinfo=UTC), worked_minutes=543, overtime_minutes=63,
              approved_overtime_minutes=30, corrected=True),
        a_day(day=3, status="on_leave", worked_minutes=0, absence_kind="Vacation", absence_part="full"),
        a_day(employee_no="E2", full_name="=HYPERLINK(\"http://x\")", department="-ops", day=2,
              status="absent", worked_minutes=0),
    ]


def _write(directory: Path, days: list[ExportDay] | None = None) -> Path:
    days = _month() if days is None else days
    write_month_export(directory, JOB, [d.absence_kind for d in days if d.absence_kind], iter(days))
    return directory


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")  # UTF-8 without BOM
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n")  # every line ends CRLF
    return data.decode("utf-8").split("\r\n")[:-1]


def test_days_csv_columns_and_cells(tmp_path: Path) -> None:
    """The days.csv header and rows as §11 spells them: local minutes, empty null, true/false, guard."""
    lines = _lines(_write(tmp_path) / "days.csv")
    assert lines == [
        "employee_no,full_name,department,work_date,shift_code,status,absence_kind,first_in,last_out,"
        "worked_minutes,late_minutes,early_exit_minutes,overtime_minutes,approved_overtime_minutes,corrected",
        "E1,Ada Lovelace,Ops,2026-11-02,day,present,,2026-11-02 08:58,2026-11-02 18:01,543,0,0,63,30,true",
        "E1,Ada Lovelace,Ops,2026-11-03,day,on_leave,Vacation,,,0,0,0,0,0,false",
        # a name starting with = and a department starting with - get a leading ' (RFC 4180 quotes the ")
        "E2,\"'=HYPERLINK(\"\"http://x\"\")\",'-ops,2026-11-02,day,absent,,,,0,0,0,0,0,false",
    ]


def test_summary_and_payroll_csv(tmp_path: Path) -> None:
    """summary.csv gains leave_vacation after days_on_leave; payroll.csv per employee in component order."""
    _write(tmp_path)
    assert _lines(tmp_path / "summary.csv") == [
        "employee_no,full_name,department,days_present,days_half_day,days_absent,days_missing_punch,"
        "days_on_leave,leave_vacation,days_holiday,days_off,worked_minutes,approved_overtime_minutes,late_count,"
        "late_minutes,early_exit_count,early_exit_minutes",
        "E1,Ada Lovelace,Ops,1,0,0,0,1,1,0,0,543,30,0,0,0,0",  # vacation on_leave counts 1
        "E2,\"'=HYPERLINK(\"\"http://x\"\")\",'-ops,0,0,1,0,0,0,0,0,0,0,0,0,0,0",
    ]
    assert _lines(tmp_path / "payroll.csv") == [
        "employee_no,component,quantity,unit",
        "E1,REGULAR,8.00,hours",  # (543 - 63) / 60 = 8.00
        "E1,OVERTIME,0.50,hours",  # 30 approved of 63 → 0.50
        "E1,LEAVE_VACATION,1.00,days",  # one on_leave day
        "E2,ABSENT,1.00,days",  # E2 worked nothing: REGULAR 0 left out
    ]


def test_the_workbook_reads_back_as_typed_cells(tmp_path: Path) -> None:
    """Summary first, bold frozen header, dates as dates, numbers as numbers, guarded text as text."""
    book = load_workbook(_write(tmp_path) / "attendance-2026-11.xlsx")
    assert book.sheetnames == ["Summary", "Days", "Payroll"]
    days, summary, payroll = book["Days"], book["Summary"], book["Payroll"]
    for sheet in (days, summary, payroll):
        assert sheet.freeze_panes == "A2"
        assert sheet["A1"].font.b is True
        assert sheet.column_dimensions["A"].width >= len("employee_no")
    assert [c.value for c in days[2]] == [
        "E1", "Ada Lovelace", "Ops", datetime(2026, 11, 2), "day", "present", None, datetime(2026, 11, 2, 8, 58),
        datetime(2026, 11, 2, 18, 1), 543, 0, 0, 63, 30, True]
    name = days["B4"]
    assert (name.value, name.data_type) == ("'=HYPERLINK(\"http://x\")", "s")  # text with the ', never a formula
    assert (days["C4"].value, days["C4"].data_type) == ("'-ops", "s")
    assert summary["I1"].value == "leave_vacation"
    assert [c.value for c in payroll[3]] == ["E1", "OVERTIME", 0.5, "hours"]
    assert payroll["C3"].number_format == "0.00"


def test_manifest_names_rows_and_sha256_of_each_file(tmp_path: Path) -> None:
    """manifest.json: period, version, execution id; per file its data rows (xlsx: all sheets) and sha256."""
    _write(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    digests = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in FILES}
    # rows: 3 days, 2 employees, 4 payroll lines; the workbook 2 + 3 + 4 = 9
    assert manifest == {
        "period": "2026-11", "version": 2, "execution_id": JOB.execution_id,
        "files": {name: {"rows": rows, "sha256": digests[name]}
                  for name, rows in zip(FILES, (3, 2, 4, 9), strict=True)},
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted((*FILES, "manifest.json"))  # no partial file left


def test_writing_again_gives_the_same_bytes(tmp_path: Path) -> None:
    """The same job and rows write byte-identical files, the workbook included."""
    first, second = _write(tmp_path / "a"), _write(tmp_path / "b")
    for name in (*FILES, "manifest.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.parametrize(("days", "message"), [
    ([a_day(day=3), a_day(day=2)], "out of order"),  # dates go backwards
    ([a_day(employee_no="E2"), a_day(employee_no="E1")], "out of order"),  # employees go backwards
    ([a_day(day=2), a_day(day=2)], "out of order"),  # the same day twice
    ([a_day(work_date=date(2026, 12, 1))], "not in period 2026-11"),  # a December day in November
    ([a_day(status="open")], "open instance"),  # the month is not all closed
])
def test_rows_the_export_refuses(tmp_path: Path, days: list[ExportDay], message: str) -> None:
    """Rows out of order, outside the period or still open fail the write, and leave no file behind."""
    with pytest.raises(ValueError, match=message):
        write_month_export(tmp_path, JOB, [], iter(days))
    assert list(tmp_path.iterdir()) == []


def test_an_absence_kind_not_announced_is_refused(tmp_path: Path) -> None:
    """The summary's header is written first, so every kind in the rows must have been named."""
    with pytest.raises(ValueError, match="not among the month's kinds"):
        write_month_export(tmp_path, JOB, ["sick"], iter([a_day(absence_kind="vacation", absence_part="am")]))


@pytest.mark.parametrize(("text", "xml"), [
    ("Zoë 東京", "Zoë 東京"),  # UTF-8 text as it is
    ("R&D <ops>", "R&amp;D &lt;ops&gt;"),  # XML's three specials escaped
    ("a\x01b", "a_x0001_b"),  # a control character is not XML: Excel's _xHHHH_ escape
    ("_x0041_", "_x005F_x0041_"),  # a literal _xHHHH_ keeps its underscore escaped, so Excel shows it as typed
])
def test_text_is_written_as_excel_reads_inline_strings(text: str, xml: str) -> None:
    """ECMA-376 ST_Xstring: XML-escaped, control characters and literal escapes as _xHHHH_."""
    assert excel_text(text) == xml


@pytest.mark.parametrize(("value", "serial"), [
    (date(1900, 1, 1), 1.0),  # Excel's day 1
    (date(1900, 3, 1), 61.0),  # after the fictitious 1900-02-29 (day 60)
    (date(2026, 11, 2), 46328.0),  # 2026-01-01 is 46023; + 304 days of Jan-Oct + 1
    (datetime(2026, 11, 2, 8, 58), 46328 + (8 * 60 + 58) / 1440),  # a time is the fraction of the day
])
def test_dates_are_excel_serial_numbers(value: date, serial: float) -> None:
    """Dates and local times become Excel's 1900-system serial numbers."""
    assert excel_serial(value) == pytest.approx(serial, abs=1e-9)


def test_text_with_edge_spaces_and_specials_reads_back_as_written(tmp_path: Path) -> None:
    """Leading/trailing spaces are preserved, XML specials and non-ASCII read back unchanged."""
    names = [" lead", "trail ", "R&D <ops>", "Zoë 東京", "line\nbreak"]
    days = [a_day(employee_no=f"E{i}", full_name=name) for i, name in enumerate(names)]
    sheet = load_workbook(_write(tmp_path, days) / "attendance-2026-11.xlsx")["Days"]
    assert [sheet.cell(row, 2).value for row in range(2, 7)] == names


SPELLED_DAYS = [
    a_day(),  # a plain present day
    a_day(first_in=datetime(2026, 11, 2, 7, 58, 59, 999, tzinfo=UTC),  # seconds dropped: 08:58 in Berlin
          last_out=datetime(2026, 11, 2, 23, 30, tzinfo=UTC), corrected=True),  # past midnight local: 11-03 00:30
    a_day(day=3, first_in=datetime(2026, 11, 3, 7, 58, 1, tzinfo=UTC)),  # the same local minute as above, cached
    a_day(employee_no="=E2", full_name=" lead,\"q\" _x0041_ \x01", department=None, day=2,  # guard, quoting, null
          status="on_leave", absence_kind="-sick", absence_part="full", worked_minutes=0),
    a_day(employee_no="E3", full_name="R&D <x>", department="Zoë, 東京", day=30, late_minutes=7, overtime_minutes=5,
          approved_overtime_minutes=5, early_exit_minutes=3),
]


def test_the_day_speller_writes_what_the_general_path_writes(tmp_path: Path) -> None:
    """DaySpeller's days.csv lines and Days cells are byte for byte the general path's (day_cells, cell by cell)."""
    from pipelines.export.csvfile import CsvFile
    from pipelines.export.dayrows import DaySpeller
    from pipelines.export.layout import DAYS_COLUMNS, PAYROLL_COLUMNS, day_cells
    from pipelines.export.workbook import Workbook

    # the Payroll sheet only registers the quantity format (every number format must be in use)
    sheets = [("General", DAYS_COLUMNS), ("Spelled", DAYS_COLUMNS), ("Payroll", PAYROLL_COLUMNS)]
    with Workbook(tmp_path / "book.xlsx", JOB.created_at, sheets) as book, \
            CsvFile(tmp_path / "general.csv", DAYS_COLUMNS) as general_csv, \
            CsvFile(tmp_path / "spelled.csv", DAYS_COLUMNS) as spelled_csv:
        general, spelled = book.sheet("General"), book.sheet("Spelled")
        speller = DaySpeller(JOB.zone, spelled.tails)
        for day in SPELLED_DAYS:
            general_csv.write(day_cells(day, JOB.zone))
            general.write(day_cells(day, JOB.zone))
            number = spelled.next_number()
            line, xml = speller.spell(day, number)
            spelled_csv.write_line(line)
            spelled.write_xml(number, xml)
        for sheet in (general, spelled):
            sheet.flush()
            sheet.file.seek(0)
        assert spelled.file.read() == general.file.read()
    assert (tmp_path / "spelled.csv").read_bytes() == (tmp_path / "general.csv").read_bytes()
