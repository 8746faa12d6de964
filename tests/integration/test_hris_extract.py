"""The HRIS extract stage against real services: a PostgreSQL HRIS over ODBC (psqlodbc), the MariaDB
app database, and the embedded SQLite demo HRIS through the same stage code."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

import pipelines.extract.source as hris_source_module
from pipelines.extract.employees import (
    WATERMARK_OVERLAP,
    ExtractParams,
    HrisSourceError,
    KeyRange,
    commit_watermark,
    create_demo_hris,
    extract_employees,
    list_changed_keys,
    next_watermark,
    pin_extract_window,
    plan_extract_shards,
    read_watermark,
)
from pipelines.extract.source import demo_hris_path
from pipelines.stage import StageResult
from shared.config.errors import ConfigError
from shared.database.db import app_engine
from shared.runtime.runner import run_async
from tests.conftest import set_env
from tests.integration.hris_fixtures import (
    T0,
    PgHris,
    demo_hris,
    dump_employees,
    employees_by_key,
    hris,
    person,
    pg_hris,
)
from tests.integration.scenarios import DropsConnectionOnce, _source

pytestmark = pytest.mark.integration
__all__ = ["demo_hris", "hris", "pg_hris"]  # fixtures used by name

INJECTION = "1'; DROP TABLE employees;--"
UTC_T0 = T0.replace(tzinfo=UTC)


def run_extract(params: ExtractParams, max_shards: int = 4, target: int = 10) -> list[StageResult]:
    """Plan, then extract every shard in turn (what the workflow's chord does in parallel)."""
    shards = run_async(plan_extract_shards(params, max_shards, target))
    execution_id = str(uuid.uuid4())
    return [run_async(extract_employees(params, shard, execution_id)) for shard in shards]


def total(results: Sequence[StageResult], key: str) -> int:
    return sum(int(r.output[key]) for r in results)


def test_full_extract_stores_every_row_normalised(hris: PgHris) -> None:
    """A full extract stores every HRIS row with dates, ids and times normalised from the ODBC types."""
    rows = [person(f"E{i:03d}", biostar_user_id=1000 + i, manager_no="E000" if i else None,
                   termination_date=" 2027-06-30 " if i == 7 else None, full_name=f"  Name {i} ")
            for i in range(30)]
    hris.replace_rows(rows)
    results = run_extract(ExtractParams(full=True))
    assert len(results) == 3
    assert total(results, "inserted") == 30
    assert total(results, "rejected_count") == 0
    stored = employees_by_key()
    assert sorted(stored) == [f"E{i:03d}" for i in range(30)]
    e7 = stored["E007"]
    assert e7["full_name"] == "Name 7"
    assert e7["biostar_user_id"] == "1007"
    assert e7["manager_no"] == "E000"
    assert e7["termination_date"] == date(2027, 6, 30)
    assert e7["hire_date"] == date(2020, 1, 1)
    assert e7["updated_at"] == UTC_T0
    assert e7["status"] == "active"
    assert len({r["execution_id"] for r in stored.values()}) == 1
    assert {r.output["max_updated_at"] for r in results} == {UTC_T0.isoformat()}


@pytest.mark.parametrize(("max_shards", "target"), [(1, 1000), (3, 10), (4, 7), (10, 1), (100, 3), (7, 57)])
def test_planner_shards_cover_the_key_space_exactly_once(hris: PgHris, max_shards: int, target: int) -> None:
    """Shards are contiguous, at most max_shards, and every key falls in exactly one of them."""
    rng = random.Random(max_shards * 1000 + target)
    alphabet = "AZaz09-_ .'é"
    keys = {f"{rng.choice('EKX')}{rng.randrange(1000)}{''.join(rng.choices(alphabet, k=rng.randrange(3)))}"
            for _ in range(57)} | {INJECTION}
    hris.replace_rows([person(k, email=None) for k in keys])
    params = ExtractParams(full=True)
    shards = run_async(plan_extract_shards(params, max_shards, target))
    assert 1 <= len(shards) <= max_shards
    assert shards[0].lo is None
    assert shards[-1].hi is None
    assert all(a.hi == b.lo for a, b in itertools.pairwise(shards))
    every = run_async(list_changed_keys(params))
    per_shard = [run_async(list_changed_keys(params, shard)) for shard in shards]
    assert [k for part in per_shard for k in part] == every
    assert sorted(every) == sorted(keys)
    execution_id = str(uuid.uuid4())
    stored = sum(run_async(extract_employees(params, s, execution_id)).rows_out for s in shards)
    assert stored == len(keys) == len(dump_employees())


def test_planner_reads_only_changed_keys(hris: PgHris) -> None:
    """With a window, the planner cuts shards over the changed rows only."""
    hris.replace_rows([person(f"E{i:03d}", updated_at=T0 + timedelta(hours=i % 2)) for i in range(40)])
    params = ExtractParams(since=UTC_T0 + timedelta(minutes=30))
    assert len(run_async(list_changed_keys(params))) == 20
    assert len(run_async(plan_extract_shards(params, 100, 5))) == 4


def test_incremental_reads_rows_changed_since_watermark_minus_overlap(hris: PgHris) -> None:
    """After a committed mark, only rows with updated_at >= mark - overlap are read and applied."""
    mark = T0 + timedelta(days=1)
    hris.replace_rows([
        person("OLD", updated_at=mark - WATERMARK_OVERLAP - timedelta(seconds=1)),
        person("EDGE", updated_at=mark - WATERMARK_OVERLAP),
        person("LAG", updated_at=mark - timedelta(minutes=5)),
        person("NEW", updated_at=mark + timedelta(hours=1)),
    ])
    run_async(commit_watermark("hris", mark.replace(tzinfo=UTC)))
    params = run_async(pin_extract_window(ExtractParams()))
    assert params.since == mark.replace(tzinfo=UTC) - WATERMARK_OVERLAP
    assert not params.full
    results = run_extract(params)
    assert sorted(employees_by_key()) == ["EDGE", "LAG", "NEW"]
    assert total(results, "read") == 3
    assert next_watermark(params, [r.output for r in results]) == (mark + timedelta(hours=1)).replace(tzinfo=UTC)


def test_first_incremental_extract_without_a_mark_is_a_full_read(hris: PgHris) -> None:
    """With no stored mark, pinning turns an incremental extract into a full read."""
    hris.replace_rows([person("E1", updated_at=None), person("E2")])
    params = run_async(pin_extract_window(ExtractParams(source="hris-first")))
    assert params.full
    assert params.since is None
    run_extract(params)
    assert sorted(employees_by_key()) == ["E1", "E2"]


def test_watermark_never_moves_backwards(app_db: str) -> None:
    """commit_watermark keeps the larger of the stored and the offered value."""
    source = f"wm-{uuid.uuid4().hex[:8]}"
    later, earlier = UTC_T0 + timedelta(hours=2), UTC_T0
    assert run_async(read_watermark(source)) is None
    run_async(commit_watermark(source, later))
    run_async(commit_watermark(source, earlier))
    assert run_async(read_watermark(source)) == later
    run_async(commit_watermark(source, later + timedelta(microseconds=1)))
    assert run_async(read_watermark(source)) == later + timedelta(microseconds=1)


def test_extract_never_moves_the_watermark_and_a_failed_one_leaves_it(
    hris: PgHris, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards leave the mark alone; it moves only by commit_watermark, and a failing read changes nothing."""
    hris.replace_rows([person("E1", updated_at=T0 + timedelta(hours=3))])
    results = run_extract(ExtractParams(full=True))
    assert run_async(read_watermark("hris")) is None
    run_async(commit_watermark("hris", next_watermark(ExtractParams(full=True), [r.output for r in results])))
    assert run_async(read_watermark("hris")) == UTC_T0 + timedelta(hours=3)
    hris.update("E1", updated_at=T0 + timedelta(hours=9))
    set_env(monkeypatch, hris_query="SELECT * FROM no_such_view")
    with pytest.raises(HrisSourceError, match="no_such_view"):
        run_extract(ExtractParams())
    assert run_async(read_watermark("hris")) == UTC_T0 + timedelta(hours=3)


def test_running_twice_leaves_the_same_rows(hris: PgHris) -> None:
    """A second full extract (another execution) changes nothing: the table dumps are identical."""
    hris.replace_rows([person(f"E{i:02d}", status="inactive" if i % 5 == 0 else "active") for i in range(25)])
    run_extract(ExtractParams(full=True))
    first = dump_employees()
    again = run_extract(ExtractParams(full=True))
    assert dump_employees() == first
    assert total(again, "unchanged") == 25
    assert sum(r.rows_out for r in again) == 0


def test_status_changes_are_applied_and_nothing_is_deleted(hris: PgHris) -> None:
    """Terminated (with its date) and inactive statuses land; a row gone from the HRIS stays stored."""
    hris.replace_rows([person("E1"), person("E2"), person("E3")])
    run_extract(ExtractParams(full=True))
    later = T0 + timedelta(days=2)
    hris.update("E1", status="terminated", termination_date="2026-01-06", updated_at=later)
    hris.update("E2", status="Inactive", updated_at=later)
    hris.execute("DELETE FROM hr_people WHERE employee_no = ?", "E3")
    results = run_extract(ExtractParams(since=UTC_T0 + timedelta(days=1)))
    assert total(results, "updated") == 2
    stored = employees_by_key()
    assert (stored["E1"]["status"], stored["E1"]["termination_date"]) == ("terminated", date(2026, 1, 6))
    assert stored["E2"]["status"] == "inactive"
    assert stored["E3"]["status"] == "active"


def test_bad_rows_are_reported_with_reasons_and_the_rest_is_stored(hris: PgHris) -> None:
    """Missing keys, bad dates, invalid emails and unknown statuses are rejected; good rows are stored."""
    hris.replace_rows([
        person("GOOD1"), person("GOOD2"),
        person(None), person("   "),
        person("BADDATE", termination_date="31/12/2026"),
        person("BADMAIL", email="someone@@example"),
        person("BADSTATUS", status="on_leave"),
        person("NONAME", full_name=" "),
    ])
    results = run_extract(ExtractParams(full=True), max_shards=3, target=2)
    rejected = sorted((r["employee_no"] or "", r["reason"]) for res in results for r in res.output["rejected"])
    assert rejected == [
        ("", "employee_no is missing"),
        ("", "employee_no is missing"),
        ("BADDATE", "termination_date is not a date: '31/12/2026'"),
        ("BADMAIL", "email is not a valid address: 'someone@@example'"),
        ("BADSTATUS", "unknown status 'on_leave' (expected active, inactive or terminated)"),
        ("NONAME", "full_name is missing"),
    ]
    assert total(results, "rejected_count") == 6
    assert sorted(employees_by_key()) == ["GOOD1", "GOOD2"]


def test_rejected_rows_are_capped_in_the_output(hris: PgHris) -> None:
    """A shard lists at most 100 rejected rows but counts all of them."""
    hris.replace_rows([person(f"B{i:03d}", status="?") for i in range(130)])
    result = run_async(extract_employees(ExtractParams(full=True), KeyRange(), "x" * 36))
    assert result.output["rejected_count"] == 130
    assert len(result.output["rejected"]) == 100
    assert result.rows_in == 130
    assert result.rows_out == 0


def test_sql_injection_shaped_key_is_stored_as_data(hris: PgHris) -> None:
    """An employee_no with quotes and a DROP TABLE is only data: as a row, a shard bound and a filter."""
    hris.replace_rows([person(INJECTION, email=None), person("0"), person("9")])
    shards = run_async(plan_extract_shards(ExtractParams(full=True), 3, 1))
    assert INJECTION in {s.hi for s in shards}
    run_extract(ExtractParams(full=True), max_shards=3, target=1)
    run_extract(ExtractParams(employees=[INJECTION]))
    assert INJECTION in employees_by_key()

    async def count() -> int:
        engine = await app_engine()
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT COUNT(*) FROM employees"))).scalar_one())

    assert run_async(count()) == 3


def test_employees_filter_extracts_only_those_and_ignores_the_mark(hris: PgHris) -> None:
    """An `employees` extract reads just those rows, whatever the mark, and never advances it."""
    hris.replace_rows([person(f"E{i}") for i in range(6)])
    run_async(commit_watermark("hris", UTC_T0 + timedelta(days=30)))
    params = ExtractParams(employees=["E2", "E5", "NOPE"])
    results = run_extract(params)
    assert sorted(employees_by_key()) == ["E2", "E5"]
    assert all(r.output["advances_watermark"] is False for r in results)
    assert next_watermark(params, [r.output for r in results]) is None
    assert run_async(extract_employees(ExtractParams(employees=[]), KeyRange(), "e")).rows_in == 0


def test_a_read_lost_half_way_resumes_after_the_last_stored_key(
    hris: PgHris, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient failure mid-shard restarts the keyset read after the last committed batch."""
    monkeypatch.setattr(hris_source_module, "BATCH_SIZE", 4)  # read_in_batches reads it there
    hris.replace_rows([person(f"E{i:02d}") for i in range(10)])
    flaky = DropsConnectionOnce(run_async(_source()))
    result = run_async(extract_employees(ExtractParams(full=True), KeyRange(), "r" * 36, source=flaky))
    assert flaky.queries == [[], ["E03"]]
    assert result.output["inserted"] == 10
    assert result.rows_in == 10
    assert len(dump_employees()) == 10


def test_the_demo_sqlite_source_runs_through_the_same_stage(
    demo_hris: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without HRSYNC_HRIS_ODBC the same stage reads the SQLite demo HRIS, incrementally too."""
    rows = [person(f"D{i:02d}", updated_at=T0 + timedelta(minutes=i), biostar_user_id=str(i),
                   hire_date=date(2021, 3, i + 1)) for i in range(12)]
    run_async(create_demo_hris(demo_hris_path(), rows))
    results = run_extract(ExtractParams(full=True), max_shards=3, target=5)
    assert len(results) == 3
    assert total(results, "inserted") == 12
    stored = employees_by_key()
    assert stored["D03"]["hire_date"] == date(2021, 3, 4)
    assert stored["D03"]["updated_at"] == UTC_T0 + timedelta(minutes=3)
    run_async(commit_watermark("hris", next_watermark(ExtractParams(full=True), [r.output for r in results])))
    params = run_async(pin_extract_window(ExtractParams(), overlap=timedelta(minutes=2)))
    assert run_async(list_changed_keys(params)) == ["D09", "D10", "D11"]
    set_env(monkeypatch, hris_query="SELECT * FROM no_such_view")
    with pytest.raises(HrisSourceError, match="no_such_view"):
        run_async(extract_employees(params, KeyRange(), "d" * 36))


def test_a_missing_demo_file_is_a_config_error(
    demo_hris: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With neither HRSYNC_HRIS_ODBC nor a demo file, the stage names the variable to set."""
    set_env(monkeypatch, home=str(tmp_path))
    with pytest.raises(ConfigError, match="HRSYNC_HRIS_ODBC"):
        run_async(plan_extract_shards(ExtractParams(full=True), 2, 2))
