"""Stage rows in the app database (MariaDB): attempts, and what a lost attempt leaves."""

from __future__ import annotations

import pytest

from shared.runner import run_async
from shared.tracking import create_execution, get_stages, record_stage_start

pytestmark = pytest.mark.integration


def test_a_later_attempt_closes_an_earlier_one_whose_end_was_never_recorded(app_db: str) -> None:
    """Attempt 1 of a shard stayed `running` (the database went away as it failed): attempt 2's start
    closes it as `retrying`; other shards and a redelivery of attempt 2 are left as they are."""
    execution_id = run_async(create_execution("nightly", "event", {"stages": ["merge"]}))
    run_async(record_stage_start(execution_id, "merge", "a", 1, "task-a1"))
    run_async(record_stage_start(execution_id, "merge", "b", 1, "task-b1"))
    run_async(record_stage_start(execution_id, "merge", "a", 2, "task-a2"))
    run_async(record_stage_start(execution_id, "merge", "a", 2, "task-a2"))  # redelivered: same row again

    rows = {(r["shard"], r["attempt"]): r for r in run_async(get_stages(execution_id))}
    assert set(rows) == {("a", 1), ("a", 2), ("b", 1)}
    lost = rows[("a", 1)]
    assert (lost["status"], lost["error_type"]) == ("retrying", "AttemptLost")
    assert lost["finished_at"] is not None
    assert "attempt 2 took over" in lost["error_message"]
    assert rows[("a", 2)]["status"] == "running"
    assert rows[("b", 1)]["status"] == "running"
