"""Cell values and how the CSV files spell them (DESIGN §11).

A cell is a Python value of one of the `Cell` types; the CSV text and the xlsx cell are both made from
it, so the two files say the same. Text cells pass through `guarded` first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

Cell = str | int | Decimal | bool | date | datetime | None

# A spreadsheet reads a cell starting with one of these as a formula (names come from other systems).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LOCAL_MINUTE = "%Y-%m-%d %H:%M"


def guarded(text: str) -> str:
    """`text` with a leading `'` when a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _text(value: Cell) -> str:
    return "" if value is None else guarded(str(value))


def _plain(value: Cell) -> str:
    return "" if value is None else str(value)


def _decimal(value: Cell) -> str:
    return "" if value is None else format(value, "f")


def _day(value: Cell) -> str:
    return "" if value is None else value.isoformat()  # type: ignore[union-attr]


def _minute(value: Cell) -> str:
    return "" if value is None else value.strftime(LOCAL_MINUTE)  # type: ignore[union-attr]


def _boolean(value: Cell) -> str:
    return "" if value is None else "true" if value else "false"


# How the CSV files spell a column's cells, by the kind of cell it holds: null empty, booleans
# `true`/`false`, local times to the minute, day counts and quantities as decimals (`0.5`, `3.00`).
CSV_TEXT: dict[str, Callable[[Cell], str]] = {
    "text": _text, "name": _text, "date": _day, "minute": _minute, "count": _plain, "days": _decimal,
    "quantity": _decimal, "bool": _boolean,
}
