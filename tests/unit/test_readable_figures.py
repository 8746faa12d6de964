"""An execution's inputs and per-stage figures as people read them (`shared.records.readable`); expectations
worked out by hand from the summary shapes the stages leave."""

from __future__ import annotations

from typing import Any

import pytest

from shared.records.readable import input_rows, stage_rows


@pytest.mark.parametrize(("figures", "expected"), [
    # extract: read, written = inserted + updated, failed = rejected_count
    ({"read": 10, "inserted": 3, "updated": 4, "unchanged": 3, "rejected_count": 1}, (10, 7, None, 1)),
    # merge: read = the BioStar logs imported, written = its days counted by status (5 + 2)
    ({"imported": {"logs": 40, "punches": 38}, "by_status": {"present": 5, "absent": 2}}, (40, 7, None, None)),
    # notify: sent and failed as they are
    ({"sent": 12, "failed": 0, "deferred": 1}, (None, None, 12, 0)),
    # a stage that did not run in this execution
    (None, (None, None, None, None)),
])
def test_stage_figures_from_a_summary(figures: Any, expected: tuple[Any, ...]) -> None:
    """Each stage's read/written/sent/failed; what is not one of them stays in the details."""
    [row] = stage_rows({"stage": figures}, [])
    assert (row["read"], row["written"], row["sent"], row["failed"]) == expected


def test_stage_figures_without_a_summary_add_up_the_last_attempt_of_each_shard() -> None:
    """Planning and folding steps and earlier attempts are left out: 7 + 5 read, 6 + 5 written, 1 failed."""
    rows = [{"stage": "merge", "shard": "@plan", "attempt": 1, "rows_in": 2, "rows_out": 2, "status": "succeeded"},
            {"stage": "merge", "shard": "a", "attempt": 1, "rows_in": 9, "rows_out": 0, "status": "failed"},
            {"stage": "merge", "shard": "a", "attempt": 2, "rows_in": 7, "rows_out": 6, "status": "succeeded"},
            {"stage": "merge", "shard": "b", "attempt": 1, "rows_in": 5, "rows_out": 5, "status": "failed"},
            {"stage": "workflow", "shard": "@start", "attempt": 1, "rows_in": 0, "rows_out": 0, "status": "succeeded"}]
    [row] = stage_rows(None, rows)
    assert (row["stage"], row["read"], row["written"], row["failed"]) == ("merge", 12, 11, 1)


def test_inputs_read_as_labelled_lines() -> None:
    """Scope, the stages in order, each stage's own inputs, the event; no employees named means all."""
    params = {"scope": "attendance", "stages": ["merge", "notify"], "event": {"id": "e1", "type": "t"},
              "merge": {"from": "2026-01-01", "to": "2026-01-31", "employees": ["E1", "E2"]}}
    assert input_rows(params) == [("scope", "attendance"), ("stages", "merge → notify"),
                                  ("merge", "dates 2026-01-01 to 2026-01-31, employees: 2 (E1, E2)"),
                                  ("event", "e1 (t)")]
