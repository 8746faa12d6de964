"""HRIS absences (DESIGN §6): the `hrsync_absences` rows into `absences`, with their own watermark.

Read by the extract stage as one more shard (`extract_absences`), incremental by `updated_at` under the
watermark source `hris_absences` (the same watermark functions as the employees, so the same window
rules), ordered and resumed by `absence_id`. Rows are upserted, never deleted: a cancellation is a
status. A change that can alter attendance (status, dates, part, kind or employee, while the old or the
new version is approved) marks the union of the old and new date ranges in `recompute_from`/
`recompute_to`; the next date-range merge recomputes those days and clears the mark
(`pipelines.outputs.ABSENCE_RECOMPUTES`, what the merge reads of this stage), so a change extracted by
an `hris`-only sync is not lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog
from sqlalchemy import select

from pipelines.extract.params import ALL_KEYS, ExtractParams, ReadTally
from pipelines.extract.query import Window
from pipelines.extract.rows import ABSENCE_COLUMNS, date_value, instant_value, text_value
from pipelines.extract.source import HrisSource, HrisSourceError, hris_source, read_in_batches
from pipelines.extract.watermark import extract_since
from pipelines.stage import StageResult
from shared.config.retry import retry_transient
from shared.config.settings import get_settings
from shared.database.db import app_engine, upsert
from shared.database.tables import absences

log = structlog.get_logger(__name__)

PARTS = ("full", "am", "pm")
ABSENCE_STATUSES = ("approved", "pending", "rejected", "cancelled")
WATERMARK_SOURCE = "hris_absences"
SETTING = "HRSYNC_HRIS_ABSENCES_QUERY"
# What can change a day's result: the rest (updated_at) is bookkeeping.
_ATTENDANCE_FIELDS = ("employee_no", "kind", "date_from", "date_to", "part", "status")
_UPDATED = [c for c in ABSENCE_COLUMNS if c != "absence_id"] + [
    "synced_at", "execution_id", "recompute_from", "recompute_to"]


def absences_enabled() -> bool:
    """Whether the HRIS absences are read (`HRSYNC_HRIS_ABSENCES_QUERY` is not `off`)."""
    return get_settings().hris_absences_query.strip().lower() != "off"


def absence_params(employee_params: ExtractParams) -> ExtractParams:
    """The absences read matching an employees read: same full/employees choice, its own watermark."""
    return ExtractParams(full=employee_params.full, employees=employee_params.employees, source=WATERMARK_SOURCE)


@dataclass(frozen=True)
class AbsenceRow:
    """One valid absence, ready for `absences` (without synced_at/execution_id/recompute marks)."""

    absence_id: str
    employee_no: str
    kind: str
    date_from: date
    date_to: date
    part: str
    status: str
    updated_at: datetime | None

    def as_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ABSENCE_COLUMNS}


def _choice(value: Any, column: str, choices: Sequence[str]) -> str:
    text = text_value(value, column, absences)
    if text is None or text.lower() not in choices:
        raise ValueError(f"{column} must be one of {', '.join(choices)}, got {str(text)[:40]!r}")
    return text.lower()


def _required(value: Any, column: str) -> Any:
    if value is None:
        raise ValueError(f"{column} is missing")
    return value


def normalise_absence(raw: Mapping[str, Any]) -> AbsenceRow:
    """Validate one HRIS absence row (a mapping of `ABSENCE_COLUMNS`); `ValueError` with a one-line reason."""
    date_from = _required(date_value(raw.get("date_from"), "date_from"), "date_from")
    date_to = _required(date_value(raw.get("date_to"), "date_to"), "date_to")
    if date_to < date_from:
        raise ValueError(f"date_to {date_to} is before date_from {date_from}")
    return AbsenceRow(
        absence_id=_required(text_value(raw.get("absence_id"), "absence_id", absences), "absence_id"),
        employee_no=_required(text_value(raw.get("employee_no"), "employee_no", absences), "employee_no"),
        kind=_required(text_value(raw.get("kind"), "kind", absences), "kind"),
        date_from=date_from,
        date_to=date_to,
        part=_choice(raw.get("part") or "full", "part", PARTS),
        status=_choice(raw.get("status"), "status", ABSENCE_STATUSES),
        updated_at=instant_value(raw.get("updated_at"), "updated_at"),
    )


def recompute_span(stored: Mapping[str, Any] | None, row: AbsenceRow) -> tuple[date, date] | None:
    """The dates whose attendance the new version `row` may change, with the stored version (or None).

    The union of the old and new ranges, merged with a mark not yet recomputed; None when nothing that
    counts changed (or neither version is approved) and no mark is pending.
    """
    spans: list[tuple[date, date]] = []
    if stored is not None and stored.get("recompute_from") is not None:
        spans.append((stored["recompute_from"], stored["recompute_to"]))
    before = None if stored is None else {f: stored[f] for f in _ATTENDANCE_FIELDS}
    after = {f: getattr(row, f) for f in _ATTENDANCE_FIELDS}
    if before != after and "approved" in (after["status"], None if before is None else before["status"]):
        spans.append((row.date_from, row.date_to))
        if before is not None:
            spans.append((before["date_from"], before["date_to"]))
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


async def extract_absences(
    params: ExtractParams, execution_id: str, *, source: HrisSource | None = None
) -> StageResult:
    """Upsert the HRIS absences `params` selects; bad rows are reported in `output["rejected"]`.

    `output["max_updated_at"]` feeds `next_watermark` (for `params.source`); this never moves the mark.
    A query the HRIS refuses (no view `hrsync_absences`) fails with a message naming the setting.
    """
    tally = ReadTally()
    since = await extract_since(params)
    if absences_enabled() and params.employees != []:
        source = source or hris_source()
        window = Window(since, ALL_KEYS, params.employees)
        synced_at = datetime.now(UTC)

        async def store(batch: Sequence[tuple[Any, ...]]) -> None:
            await _store_batch(batch, tally, synced_at, execution_id)

        try:
            await read_in_batches(source, get_settings().hris_absences_query, ABSENCE_COLUMNS, window, store,
                                  key="absence_id")
        except HrisSourceError as exc:
            raise HrisSourceError(f"{SETTING}: {exc} (set {SETTING}=off if the HRIS has no absences)") from exc
    if tally.rejected:
        log.warning("hris.absences_rejected", count=len(tally.rejected), first=tally.rejected[:5])
    output = {"enabled": absences_enabled(), **tally.output(params, since), "recompute_marked": tally.marked}
    return StageResult(rows_in=tally.read, rows_out=tally.inserted + tally.updated, output=output)


@retry_transient
async def _store_batch(batch: Sequence[tuple[Any, ...]], tally: ReadTally, synced_at: datetime,
                       execution_id: str) -> None:
    """Validate a batch and upsert its changed rows in one transaction; count only once committed."""
    valid: dict[str, AbsenceRow] = {}
    rejected: list[dict[str, Any]] = []
    for values in batch:
        raw = dict(zip(ABSENCE_COLUMNS, values, strict=True))
        try:
            row = normalise_absence(raw)
        except ValueError as exc:
            rejected.append({"absence_id": None if raw["absence_id"] is None else str(raw["absence_id"])[:64],
                             "reason": str(exc)})
            continue
        valid[row.absence_id] = row  # an id repeated in the HRIS: the later row wins
    engine = await app_engine()
    marked = 0
    async with engine.begin() as conn:
        stored = {r.absence_id: dict(r._mapping) for r in await conn.execute(
            select(absences).where(absences.c.absence_id.in_(list(valid)))
        )} if valid else {}
        changed: list[dict[str, Any]] = []
        for key, row in valid.items():
            old = stored.get(key)
            if old is not None and all(old[c] == v for c, v in row.as_record().items()):
                continue
            span = recompute_span(old, row)
            marked += span is not None and (old is None or old["recompute_from"] is None)
            changed.append({**row.as_record(), "synced_at": synced_at, "execution_id": execution_id,
                            "recompute_from": span[0] if span else None, "recompute_to": span[1] if span else None})
        if changed:
            await conn.execute(upsert(conn, absences, _UPDATED), changed)
    inserted = sum(1 for row in changed if row["absence_id"] not in stored)
    tally.count_batch(len(batch), len(valid), len(changed), inserted, rejected,
                      [row.updated_at for row in valid.values() if row.updated_at is not None])
    tally.marked += marked
