"""Pure parts of the attendance I/O: HRIS absence rows, the days a changed absence marks, CLI punch times."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cli.punches import parse_local_time
from pipelines.extract.absences import AbsenceRow, normalise_absence, recompute_span
from shared.config.errors import ConfigError

D = dt.date(2026, 6, 1)
RAW = {"absence_id": " A1 ", "employee_no": "E1", "kind": "vacation", "date_from": "2026-06-01",
       "date_to": "2026-06-03", "part": "AM", "status": "Approved", "updated_at": "2026-05-20 08:00:00"}


def row(**changes: Any) -> AbsenceRow:
    return normalise_absence({**RAW, **changes})


def stored(**changes: Any) -> dict[str, Any]:
    return {**row().as_record(), "recompute_from": None, "recompute_to": None, **changes}


def test_a_row_is_normalised() -> None:
    """Text is stripped, part and status lower-cased, dates parsed, a naive updated_at read as UTC."""
    assert row() == AbsenceRow("A1", "E1", "vacation", D, dt.date(2026, 6, 3), "am", "approved",
                               dt.datetime(2026, 5, 20, 8, tzinfo=dt.UTC))
    assert row(part=None).part == "full"  # a missing part is a full day


@pytest.mark.parametrize(("changes", "reason"), [
    ({"status": "maybe"}, "status must be one of"),
    ({"part": "noon"}, "part must be one of"),
    ({"date_to": "2026-05-31"}, "before date_from"),
    ({"date_from": None}, "date_from is missing"),
    ({"kind": " "}, "kind is missing"),
])
def test_bad_rows_are_refused_with_a_reason(changes: dict[str, Any], reason: str) -> None:
    """Each bad value raises ValueError naming the column."""
    with pytest.raises(ValueError, match=reason):
        row(**changes)


@pytest.mark.parametrize(("before", "after", "span"), [
    (None, {}, (D, dt.date(2026, 6, 3))),  # new and approved: its own days
    (None, {"status": "pending"}, None),  # new but not approved: counts for nothing
    ({}, {"status": "cancelled"}, (D, dt.date(2026, 6, 3))),  # approved → cancelled: the old days
    ({}, {"date_from": "2026-06-02", "date_to": "2026-06-09"}, (D, dt.date(2026, 6, 9))),  # the union of old and new
    ({}, {"updated_at": "2026-05-21 08:00:00"}, None),  # bookkeeping only
    ({"status": "rejected"}, {"status": "pending"}, None),  # neither version approved
    ({"recompute_from": dt.date(2026, 5, 1), "recompute_to": dt.date(2026, 5, 2)}, {"status": "pending"},
     (dt.date(2026, 5, 1), dt.date(2026, 6, 3))),  # a pending mark is kept and merged
])
def test_the_days_a_change_marks(before: dict[str, Any] | None, after: dict[str, Any],
                                 span: tuple[dt.date, dt.date] | None) -> None:
    """The mark is the union of old and new ranges when a version is approved and something that counts changed."""
    assert recompute_span(None if before is None else stored(**before), row(**after)) == span


def test_a_cli_time_without_offset_is_local() -> None:
    """TIME without an offset is a wall-clock time in HRSYNC_TIMEZONE; with one it is kept; junk exits 2."""
    berlin = ZoneInfo("Europe/Berlin")
    summer = parse_local_time("2026-06-01T17:02", berlin)
    assert summer.astimezone(dt.UTC) == dt.datetime(2026, 6, 1, 15, 2, tzinfo=dt.UTC)  # CEST is UTC+2
    assert parse_local_time("2026-06-01T17:02+00:00", berlin).utcoffset() == dt.timedelta(0)
    with pytest.raises(ConfigError, match="TIME"):
        parse_local_time("yesterday", berlin)
