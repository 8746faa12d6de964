"""The end of `hrsync demo`: the month before today closed, its export run by the demo's worker, and what
it wrote.

The close is refused while the demo's planted exceptions (missing punches, absences) are open; the demo
then closes it with `--force`'s meaning and a reason saying so, as an operator would. The export's
`hrsync.period.closed` event is admitted and launched as the demo launches its nightly (the embedded
transport has no event plane).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text

from pipelines.monthend.period import Period

SUMMARY_ROWS = 3  # rows of summary.csv the demo prints, as written


@dataclass(frozen=True)
class ClosedMonth:
    period: Period
    version: int
    reason: str
    event_id: str
    execution_id: str


def month_to_close(today: dt.date) -> Period:
    """The month before `today`'s: it has ended, and the demo's four weeks reach into it (most days)."""
    first = today.replace(day=1) - dt.timedelta(days=1)
    return Period.of(first)


def close_and_launch(today: dt.date, launch: Callable[[Any], str]) -> ClosedMonth:
    """Close the month (forced over the planted exceptions, with a reason saying so) and launch its export.

    `launch(event)` creates and launches the event's execution as the bridge would, and returns its id.
    """
    from operations.closing import close_month
    from pipelines.monthend.periods import CloseRefused
    from shared.runtime.runner import run_async

    period = month_to_close(today)
    reason = f"demo: month end of {period}"
    try:
        event = run_async(close_month(period, reason, force=False, actor="demo", via="cli"))
    except CloseRefused as refused:  # the planted missing punches and absences are still open
        reason = f"demo: closed over the planted exceptions that remain open — {refused}"
        event = run_async(close_month(period, reason, force=True, actor="demo", via="cli"))
    return ClosedMonth(period, int(event.data["version"]), reason, event.id, launch(event))


def export_report(month: ClosedMonth, status: str) -> Group:
    """Where the export is, and the first rows of its summary.csv."""
    from pipelines.export.version import version_folder

    folder = version_folder(month.period, month.version)
    lines: list[Text] = [
        Text(f"month end: period {month.period} closed (version {month.version}): {month.reason}", style="bold"),
        Text(f"  export {month.execution_id[:8]} {status}; files in {folder}"),
    ]
    summary = folder / "summary.csv"
    if status == "succeeded" and summary.is_file():
        lines.extend(_summary_lines(summary))
        lines.append(Text(f"  (hrsync period show {month.period}; hrsync export {month.period} --to DIR)"))
    return Group(*lines)


def _summary_lines(path: Path) -> list[Text]:
    with path.open(encoding="utf-8", newline="") as file:
        lines = [line.rstrip("\r\n") for _, line in zip(range(SUMMARY_ROWS + 1), file, strict=False)]
    return [Text(f"summary.csv, its header and first {len(lines) - 1} rows:", style="bold"),
            *(Text(f"  {line}", overflow="fold") for line in lines)]
