"""The trace as an inline SVG waterfall: one bar per stage row (stage, shard, attempt) on a time axis."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WIDTH, LABEL, ROW, BAR = 900, 260, 22, 14  # pixels: whole width, label column, row pitch, bar height
TICKS = 5
MARK = {"failed": "✗", "retrying": "↻"}


@dataclass(frozen=True)
class Bar:
    """One row of the picture, in pixels; text fields are escaped by the template."""

    y: int
    x: float
    width: float
    label: str
    status: str
    seconds: float
    mark: str
    title: str


def waterfall(trace: Mapping[str, Any]) -> dict[str, Any]:
    """Bars and axis ticks for `trace` (the `hrsync trace --json` shape), ready for `_waterfall.html`."""
    total = max(1, int(trace["total_ms"]))
    span = WIDTH - LABEL - 70
    bars = []
    for n, b in enumerate(trace["bars"]):
        label = f"{b['stage']} {b['shard']}" + (f" #{b['attempt']}" if b["attempt"] > 1 else "")
        title = f"{label}: {b['status']}, {b['duration_ms'] / 1000:.2f} s" + (f" — {b['error']}" if b["error"] else "")
        bars.append(Bar(y=n * ROW, x=LABEL + b["offset_ms"] / total * span,
                        width=max(2.0, b["duration_ms"] / total * span), label=label[:40], status=b["status"],
                        seconds=b["duration_ms"] / 1000, mark=MARK.get(b["status"], ""), title=title))
    digits = 2 if total < 5_000 else 1 if total < 60_000 else 0  # ticks of a short trace stay distinct
    ticks = [(LABEL + span * i / TICKS, f"{total * i / TICKS / 1000:.{digits}f}s") for i in range(TICKS + 1)]
    return {"bars": bars, "ticks": ticks, "width": WIDTH, "height": len(bars) * ROW + 24, "row": ROW,
            "bar": BAR, "label": LABEL}
