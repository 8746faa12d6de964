"""A CSV file of the export: UTF-8 without BOM, CRLF line ends, RFC 4180 quoting (DESIGN §11)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from pipelines.export.cells import CSV_TEXT, Cell, guarded
from pipelines.export.layout import Column

_BUFFER = 1 << 20
_LINE_END = "\r\n"
_LINES_PER_WRITE = 1000


def csv_field(text: str) -> str:
    """`text` as the files' csv.writer writes it among other fields (quoted only where RFC 4180 needs it)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=_LINE_END).writerow([text, ""])
    return buffer.getvalue()[:-len("," + _LINE_END)]


class CsvFile:
    """Writes a header row, then data rows, counting them; use as a context manager."""

    def __init__(self, path: Path, columns: Sequence[Column]) -> None:
        self._file = path.open("w", encoding="utf-8", newline="", buffering=_BUFFER)
        self._writer = csv.writer(self._file, lineterminator=_LINE_END)
        self._writer.writerow([guarded(column.name) for column in columns])
        self._spell = [CSV_TEXT[column.kind] for column in columns]
        self._pending: list[str] = []
        self.rows = 0

    def write(self, cells: Sequence[Cell]) -> None:
        if self._pending:
            self._flush()
        self._writer.writerow([spell(cell) for spell, cell in zip(self._spell, cells, strict=True)])
        self.rows += 1

    def write_line(self, fields: str) -> None:
        """A data row already spelled: its fields joined by commas, as `write` would (csv_field), no line end."""
        self._pending.append(fields)
        self.rows += 1
        if len(self._pending) >= _LINES_PER_WRITE:
            self._flush()

    def _flush(self) -> None:
        self._pending.append("")  # the last line's end
        self._file.write(_LINE_END.join(self._pending))
        self._pending.clear()

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if self._pending and kind is None:
                self._flush()
        finally:
            self._file.close()
