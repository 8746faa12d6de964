"""The trace as an inline SVG waterfall: one row per step of the trace model (`pipelines.trace`) that groups
several rows (its span, labelled with its name and how many rows), then one bar per stage row (stage, shard,
attempt) on the time axis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.trace import Trace

WIDTH, LABEL, ROW, BAR = 900, 260, 22, 14  # pixels: whole width, label column, row pitch, bar height
INDENT = 14  # pixels: a grouped row's label under its step's
TICKS = 5
MARK = {"failed": "✗", "retrying": "↻"}


@dataclass(frozen=True)
class Bar:
    """One row of the picture, in pixels; text fields are escaped by the template. `kind`: `step` (a group's
    span) or `bar` (a stage row)."""

    y: int
    x: float
    width: float
    label: str
    label_x: int
    status: str
    seconds: float
    mark: str
    title: str
    kind: str = "bar"


def waterfall(trace: Trace) -> dict[str, Any]:
    """Rows and axis ticks for `trace`, ready for `_waterfall.html`."""
    total = max(1, trace.total_ms)
    span = WIDTH - LABEL - 70
    rows: list[Bar] = []

    def row(label: str, offset_ms: int, duration_ms: int, status: str, title: str, kind: str, indent: int) -> Bar:
        return Bar(y=len(rows) * ROW, x=LABEL + offset_ms / total * span, width=max(2.0, duration_ms / total * span),
                   label=label[:40], label_x=4 + indent, status=status, seconds=duration_ms / 1000,
                   mark=MARK.get(status, ""), title=title, kind=kind)

    for step in trace.steps:
        indent = 0
        if not step.single:
            label = f"{step.stage} {step.name} ({len(step.bars)})"
            title = (f"{label}: {step.status}, {step.wall_ms / 1000:.2f} s, busy {step.busy_ms / 1000:.2f} s, "
                     f"at most {step.parallel} at once")
            rows.append(row(label, step.offset_ms, step.wall_ms, step.status, title, "step", 0))
            indent = INDENT
        for b in step.bars:
            label = b.name if indent else b.label
            title = f"{b.label}: {b.status}, {b.duration_ms / 1000:.2f} s" + (f" — {b.error}" if b.error else "")
            rows.append(row(label, b.offset_ms, b.duration_ms, b.status, title, "bar", indent))
    digits = 2 if total < 5_000 else 1 if total < 60_000 else 0  # ticks of a short trace stay distinct
    ticks = [(LABEL + span * i / TICKS, f"{total * i / TICKS / 1000:.{digits}f}s") for i in range(TICKS + 1)]
    return {"bars": rows, "ticks": ticks, "width": WIDTH, "height": len(rows) * ROW + 24, "row": ROW,
            "bar": BAR, "label": LABEL}
