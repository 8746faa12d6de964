"""What every command prints with: the console, `--json`, and the small cell formatters of the tables.

One console (`out`) for every command; `print_json` is the one JSON printer (dates as ISO strings, through
`shared.records.views.jsonable`, the shapes the console's `/api/` returns too).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared.config.errors import ConfigError
from shared.config.settings import get_settings
from shared.records.views import jsonable

out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
STATUS_STYLE = {"succeeded": "green", "failed": "red", "running": "blue", "retrying": "yellow", "pending": "dim",
                "cancelled": "magenta"}


def print_json(value: Any) -> None:
    """Print `value` as JSON on stdout (dates as ISO strings, bytes as text)."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2, default=str) + "\n")


def age(option: str, text: str) -> dt.timedelta:
    """`--since 24h` as a timedelta; a bad value is a `ConfigError` naming `option` (exit 2)."""
    from shared.records.queries import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def choice(option: str, value: str | None, allowed: Sequence[str]) -> str | None:
    """`value` if it is one of `allowed` (or None); else a `ConfigError` naming `option`."""
    if value is not None and value not in allowed:
        raise ConfigError(f"{option}: {value!r} is not one of {', '.join(allowed)}")
    return value


def when(value: dt.datetime | None) -> str:
    """A time in the company's zone, to the second (`-` for none)."""
    return value.astimezone(get_settings().zone).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def short_when(value: dt.datetime | None) -> str:
    """A time in the company's zone, to the minute, without the year (`-` for none): for narrow tables."""
    return value.astimezone(get_settings().zone).strftime("%m-%d %H:%M") if value else "-"


def clock(value: dt.datetime | None) -> str:
    """The time of day in the company's zone, to the second (`-` for none): beside a date shown once."""
    return value.astimezone(get_settings().zone).strftime("%H:%M:%S") if value else "-"


def seconds(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """A duration from `start` to `end` (or now) as `12.3s` or `4.5m` (`-` before a start)."""
    if start is None:
        return "-"
    took = ((end or dt.datetime.now(dt.UTC)) - start).total_seconds()
    return f"{took:.1f}s" if took < 120 else f"{took / 60:.1f}m"


def status_text(status: str | None) -> Text:
    """A status in its colour."""
    return Text(status or "-", style=STATUS_STYLE.get(status or "", ""))


def add_row(table: Table, *cells: str | Text) -> None:
    """Add a row of data: strings are shown as they are (an error's `[x]` is not Rich markup)."""
    table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in cells))

