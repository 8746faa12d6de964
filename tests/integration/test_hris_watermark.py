"""The extract watermark never moves past the end of the window that was read (a future-dated HRIS row)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.extract.employees import (
    ExtractParams,
    commit_watermark,
    extract_employees,
    next_watermark,
    pin_extract_window,
    plan_extract_shards,
    read_watermark,
)
from shared.runtime.runner import run_async
from tests.integration.hris_fixtures import PgHris, employees_by_key, person

pytestmark = pytest.mark.integration


def extract_incrementally(source: str) -> ExtractParams:
    """Pin a window, read every shard, commit the mark (the workflow's extract stage, in one process)."""
    params = run_async(pin_extract_window(ExtractParams(source=source)))
    outputs = [run_async(extract_employees(params, shard, "test-execution")).output
               for shard in run_async(plan_extract_shards(params, 2, 10))]
    mark = next_watermark(params, outputs)
    if mark is not None:
        run_async(commit_watermark(source, mark))
    return params


def test_a_row_dated_2099_does_not_stop_later_extracts(hris: PgHris) -> None:
    """A future updated_at is read, but the mark stops at the window's end, so a row changed later is read too."""
    now = datetime.now(UTC).replace(tzinfo=None)  # the HRIS stores naive UTC
    hris.replace_rows([person("E1", updated_at=now - timedelta(hours=1)),
                       person("FUTURE", updated_at=datetime(2099, 1, 1))])
    first = extract_incrementally("hris-future")
    assert sorted(employees_by_key()) == ["E1", "FUTURE"]
    assert first.until is not None
    assert run_async(read_watermark("hris-future")) == first.until  # not 2099: capped at the window's end

    hris.replace_rows([person("E1", updated_at=now - timedelta(hours=1)),
                       person("FUTURE", updated_at=datetime(2099, 1, 1)),
                       person("LATER", updated_at=datetime.now(UTC).replace(tzinfo=None))])
    extract_incrementally("hris-future")
    assert "LATER" in employees_by_key()
