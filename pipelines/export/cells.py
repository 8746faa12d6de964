"""Cell values and how the CSV files spell them (DESIGN §11).

A cell is a Python value of one of the `Cell` types; the CSV text and the xlsx cell are both made from
it, so the two files say the same. Text cells pass through `guarded` first.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

Cell = str | int | Decimal | bool | date | datetime | None

# A spreadsheet reads a cell starting with one of these as a formula (names come from other systems).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LOCAL_MINUTE = "%Y-%m-%d %H:%M"


def guarded(text: str) -> str:
    """`text` with a leading `'` when a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(value: Cell) -> str:
    """How a cell is spelled in the CSV files: null empty, booleans `true`/`false`, local minutes."""
    if value is None:
        return ""
    if isinstance(value, str):
        return guarded(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.strftime(LOCAL_MINUTE)
    return value.isoformat()
