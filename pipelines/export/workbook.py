"""The export's workbook, streamed with XlsxWriter's constant-memory mode (DESIGN §11).

Dates and times are date/datetime cells, counts and quantities numbers, booleans booleans, and text is
always written as a string cell (never a formula), guarded like the CSV. Each sheet has a bold header
row frozen in place and column widths chosen by the kind of cell a column holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import xlsxwriter

from pipelines.export.cells import Cell, guarded
from pipelines.export.layout import CellKind, Column

_WIDTH: dict[CellKind, int] = {"text": 14, "name": 28, "date": 11, "minute": 17, "count": 8, "days": 8,
                               "quantity": 10, "bool": 9}
_NUMBER_FORMAT: dict[CellKind, str] = {"date": "yyyy-mm-dd", "minute": "yyyy-mm-dd hh:mm", "quantity": "0.00"}


class _Sheet:
    def __init__(self, book: Any, name: str, columns: Sequence[Column], header: Any,
                 formats: dict[CellKind, Any]) -> None:
        self.worksheet = book.add_worksheet(name)
        self.rows = 0
        self._formats = [formats.get(column.kind) for column in columns]
        for index, column in enumerate(columns):
            self.worksheet.set_column(index, index, max(_WIDTH[column.kind], len(column.name) + 2))
        self.worksheet.freeze_panes(1, 0)
        for index, column in enumerate(columns):
            self.worksheet.write_string(0, index, guarded(column.name), header)

    def write(self, cells: Sequence[Cell]) -> None:
        self.rows += 1
        row, sheet = self.rows, self.worksheet
        for col, (cell, cell_format) in enumerate(zip(cells, self._formats, strict=True)):
            if cell is None:
                continue
            if isinstance(cell, str):
                sheet.write_string(row, col, guarded(cell))
            elif isinstance(cell, bool):
                sheet.write_boolean(row, col, cell)
            elif isinstance(cell, int):
                sheet.write_number(row, col, cell, cell_format)
            elif isinstance(cell, Decimal):
                sheet.write_number(row, col, float(cell), cell_format)
            elif isinstance(cell, datetime):
                sheet.write_datetime(row, col, cell, cell_format)
            else:
                sheet.write_datetime(row, col, datetime.combine(cell, time()), cell_format)


class Workbook:
    """The workbook's sheets in the order they are named; `sheet(name).write(cells)` adds a data row.

    Rows of one sheet must come in order; the sheets may be written in any interleaving.
    """

    def __init__(self, path: Path, created: datetime, sheets: Sequence[tuple[str, Sequence[Column]]]) -> None:
        self._book = xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
            "strings_to_urls": False})
        self._book.set_properties({"created": created})
        header = self._book.add_format({"bold": True})
        formats = {kind: self._book.add_format({"num_format": pattern}) for kind, pattern in _NUMBER_FORMAT.items()}
        self._sheets = {name: _Sheet(self._book, name, columns, header, formats) for name, columns in sheets}

    def sheet(self, name: str) -> _Sheet:
        return self._sheets[name]

    @property
    def rows(self) -> int:
        """Data rows of all sheets."""
        return sum(sheet.rows for sheet in self._sheets.values())

    def close(self) -> None:
        self._book.close()

    def __enter__(self) -> Workbook:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

