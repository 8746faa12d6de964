"""The export's workbook (DESIGN §11): XlsxWriter lays out the package, the data rows are streamed in.

XlsxWriter writes a small workbook holding only each sheet's header row (bold, frozen), its column widths
and the number formats, with a fixed creation date. The data rows are written as SpreadsheetML `<row>`
elements to one temporary file per sheet, as they come, and spliced into that workbook's sheets when
the workbook is closed: memory stays flat and each cell costs one string format instead of XlsxWriter's
per-cell calls (about 3x faster on a month of 600,000 days, docs/benchmarks.md); the Days sheet's rows come
already formatted from `dayrows.DaySpeller`, through the same cell tails. The rows are written the
way XlsxWriter writes them: inline strings, dates and times as serial numbers with a date format,
numbers as numbers, booleans as booleans. Text is always a string cell (never a formula), guarded like
the CSV.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from pipelines.export.cells import Cell, guarded
from pipelines.export.layout import CellKind, Column

_WIDTH: dict[CellKind, int] = {"text": 14, "name": 28, "date": 11, "minute": 17, "count": 8, "days": 8,
                               "quantity": 10, "bool": 9}
_NUMBER_FORMAT: dict[CellKind, str] = {"date": "yyyy-mm-dd", "minute": "yyyy-mm-dd hh:mm", "quantity": "0.00"}
_ZIP64_FROM = zipfile.ZIP64_LIMIT // 2  # compressed and uncompressed sizes both stay below the limit
_EXCEL_EPOCH = datetime(1899, 12, 31)
_ROWS_PER_WRITE = 1000
# Deflate's fastest level: a quarter of the default's time on the sheets' XML for a third more bytes
# (docs/benchmarks.md); any level is a valid workbook.
ZIP_LEVEL = 1

_ESCAPED_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_EDGE_SPACE = re.compile(r"^\s|\s$")
_NEEDS_CARE = re.compile(r"[&<>\x00-\x1f\ufffe\uffff]|_x|^\s|\s$")  # most names and codes have none


def excel_text(text: str) -> str:
    """Text as Excel reads an inline string: XML-escaped, control characters as `_xHHHH_`."""
    if "_x" in text:
        text = _ESCAPED_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda match: f"_x{ord(match[0]):04X}_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def excel_serial(value: date) -> float:
    """Excel's serial day number (1900 system, with its fictitious 1900-02-29)."""
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    delta = moment - _EXCEL_EPOCH
    days = delta.days + 1 if delta.days > 59 else delta.days
    return days + (delta.seconds + delta.microseconds / 1e6) / 86400


# A cell's XML is `<c r="{ref}` + its tail: the tail depends on the value only, so it can be cached per value.
CellTail = Callable[[Any], str]


def _string(value: Any) -> str:
    text = guarded(value)
    if _NEEDS_CARE.search(text) is None:
        return f'" t="inlineStr"><is><t>{text}</t></is></c>'
    space = ' xml:space="preserve"' if _EDGE_SPACE.search(text) else ""
    return f'" t="inlineStr"><is><t{space}>{excel_text(text)}</t></is></c>'


def cell_tail(kind: CellKind, style: int | None) -> CellTail:
    """How a column of `kind` writes a non-null cell after its reference (`style`: the number format's index)."""
    s = f' s="{style}"' if style else ""
    if kind in ("text", "name"):
        return _string
    if kind == "bool":
        return lambda value: f'" t="b"><v>{int(value)}</v></c>'
    if kind in ("date", "minute"):
        return lambda value: f'"{s}><v>{excel_serial(value):.16G}</v></c>'
    if kind == "count":
        return lambda value: f'"{s}><v>{value:d}</v></c>'
    return lambda value: f'"{s}><v>{value:f}</v></c>'  # Decimal: exact, no exponent


class _Sheet:
    """One sheet's data rows, streamed to a temporary file as `<row>` elements, a block of rows at a time."""

    def __init__(self, columns: Sequence[Column], styles: dict[CellKind, int]) -> None:
        self.columns = columns
        self.rows = 0
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the workbook)
        self.tails = [cell_tail(column.kind, styles.get(column.kind)) for column in columns]
        self._cells = [(xl_col_to_name(index), tail) for index, tail in enumerate(self.tails)]
        self._pending: list[str] = []

    def write(self, cells: Sequence[Cell]) -> None:
        if len(cells) != len(self._cells):
            raise ValueError(f"{len(cells)} cells for {len(self._cells)} columns")
        number = str(self.rows + 2)  # row 1 is the header
        self.write_xml(number, "".join([f'<c r="{letter}{number}{tail(cell)}'
                                        for (letter, tail), cell in zip(self._cells, cells, strict=True)
                                        if cell is not None]))

    def next_number(self) -> str:
        """The row number the next `write_xml` must use."""
        return str(self.rows + 2)

    def write_xml(self, number: str, cells: str) -> None:
        """Add row `number` (`next_number()`) made of `cells`, each `<c r="{letter}{number}` + its tail."""
        self.rows += 1
        self._pending.append(f'<row r="{number}">{cells}</row>')
        if len(self._pending) >= _ROWS_PER_WRITE:
            self.flush()

    def flush(self) -> None:
        self.file.write("".join(self._pending).encode())
        self._pending.clear()


def _template(created: datetime, sheets: Sequence[tuple[str, Sequence[Column]]]) -> tuple[bytes, dict[CellKind, int]]:
    """The workbook without data rows, and the style index of each formatted kind of cell."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_numbers": False, "strings_to_urls": False})
    book.set_properties({"created": created})
    header = book.add_format({"bold": True})
    formats = {kind: book.add_format({"num_format": pattern}) for kind, pattern in _NUMBER_FORMAT.items()}
    for name, columns in sheets:
        sheet = book.add_worksheet(name)
        for index, column in enumerate(columns):
            # The column's format also registers the style its data cells name.
            sheet.set_column(index, index, max(_WIDTH[column.kind], len(column.name) + 2), formats.get(column.kind))
            sheet.write_string(0, index, guarded(column.name), header)
        sheet.freeze_panes(1, 0)
    book.close()
    return buffer.getvalue(), {kind: int(fmt.xf_index) for kind, fmt in formats.items()}


class Workbook:
    """The workbook's sheets in the order named; `sheet(name).write(cells)` adds a data row to one.

    Rows of one sheet come in order; the sheets may be written in any interleaving. `close` writes the file.
    """

    def __init__(self, path: Path, created: datetime, sheets: Sequence[tuple[str, Sequence[Column]]]) -> None:
        self._path = path
        self._template, styles = _template(created, sheets)
        self._sheets = {name: _Sheet(columns, styles) for name, columns in sheets}

    def sheet(self, name: str) -> _Sheet:
        return self._sheets[name]

    @property
    def rows(self) -> int:
        """Data rows of all sheets."""
        return sum(sheet.rows for sheet in self._sheets.values())

    def close(self) -> None:
        sheets = list(self._sheets.values())
        with zipfile.ZipFile(io.BytesIO(self._template)) as template, \
                zipfile.ZipFile(self._path, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as book:
            for part in template.infolist():
                data = template.read(part)
                match = re.fullmatch(r"xl/worksheets/sheet(\d+)\.xml", part.filename)
                if match is None:
                    book.writestr(part, data)
                    continue
                sheet = sheets[int(match[1]) - 1]
                head, tail = data.split(b"</sheetData>", 1)
                if sheet.rows:
                    last = f"{xl_col_to_name(len(sheet.columns) - 1)}{sheet.rows + 1}"
                    head = re.sub(rb'<dimension ref="A1:[A-Z]+1"/>', f'<dimension ref="A1:{last}"/>'.encode(), head,
                                  count=1)
                sheet.flush()
                size = len(head) + sheet.file.seek(0, io.SEEK_END) + len(tail) + 12
                # ZIP64 records only where the size needs them, as XlsxWriter does: older readers balk at them.
                # Opened by name: a ZipInfo dated 1980-01-01 (what XlsxWriter stamps), deflated at ZIP_LEVEL.
                with book.open(part.filename, "w", force_zip64=size > _ZIP64_FROM) as out:
                    out.write(head)
                    sheet.file.seek(0)
                    shutil.copyfileobj(sheet.file, out, 1 << 20)
                    out.write(b"</sheetData>" + tail)
        self._discard()

    def _discard(self) -> None:
        for sheet in self._sheets.values():
            sheet.file.close()

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._discard()
