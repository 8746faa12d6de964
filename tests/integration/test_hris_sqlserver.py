"""The HRIS path against SQL Server's limits without a SQL Server: every statement it builds (employees,
absences, by window, by employee list, resumed) runs through the real psqlodbc driver with SQL Server's
2,100-parameter limit enforced (`sqlserver_limits`), and parses as T-SQL (sqlglot, dialect `tsql`)."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import pytest
import sqlglot
from sqlalchemy import func, select
from sqlglot import exp
from sqlglot.errors import ErrorLevel

import pipelines.extract.source as hris_source_module
from pipelines.extract.absences import absence_params, extract_absences
from pipelines.extract.employees import extract_employees, plan_extract_shards
from pipelines.extract.params import ALL_KEYS, ExtractParams
from pipelines.extract.query import strip_query
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import absences
from shared.runtime.runner import run_async
from tests.integration.hris_fixtures import T0, PgHris, employees_by_key
from tests.integration.scenarios import DropsConnectionOnce, _source
from tests.integration.sqlserver_limits import SQLSERVER_TOO_MANY, Statement, limited

pytestmark = pytest.mark.integration


PEOPLE = 2_500  # one list of them is more than SQL Server's 2,100 parameters
NUMBERS = [f"S{i:05d}" for i in range(1, PEOPLE + 1)]
MAX_PARAMETERS = 2_000  # what hrsync promises per statement (DESIGN §6: SQL Server refuses over 2,100)


@pytest.fixture
def sqlserver_limit(monkeypatch: pytest.MonkeyPatch) -> list[Statement]:
    """aioodbc's cursors refuse more than 2,100 parameters as SQL Server does; the statements they saw."""
    from aioodbc.cursor import Cursor

    seen: list[Statement] = []
    monkeypatch.setattr(Cursor, "execute", limited(Cursor.execute, seen))
    return seen


def fill(hris: PgHris) -> None:
    """PEOPLE employees S00001… (updated a second apart from T0) and an approved absence for every 10th."""
    hris.execute(
        "INSERT INTO hr_people (employee_no, full_name, email, department, status, hire_date, updated_at) "
        "SELECT 'S' || lpad(g::text, 5, '0'), 'Person ' || g, 's' || g || '@example.com', 'Ops', 'active', "
        "DATE '2020-01-01', CAST(? AS TIMESTAMP) + g * INTERVAL '1 second' "
        "FROM generate_series(1, CAST(? AS INTEGER)) g", T0, PEOPLE)
    hris.execute(
        "INSERT INTO hr_leave (absence_id, employee_no, kind, date_from, date_to, part, status, updated_at) "
        "SELECT 'A' || g, 'S' || lpad(g::text, 5, '0'), 'vacation', DATE '2026-01-12', DATE '2026-01-13', "
        "'full', 'approved', CAST(? AS TIMESTAMP) FROM generate_series(1, CAST(? AS INTEGER), 10) g", T0, PEOPLE)


def check_tsql(statement: Statement) -> None:
    """At most 2,000 parameters, one `?` each; T-SQL that sqlglot reads (errors raised), and hrsync's part of
    it (all but the configured query inside) written back unchanged by sqlglot's T-SQL writer: no LIMIT,
    `||`, TRUE or other construct that T-SQL would need translated."""
    assert len(statement.params) <= MAX_PARAMETERS, statement.sql[:200]
    tree = sqlglot.parse_one(statement.sql, read="tsql", error_level=ErrorLevel.RAISE)
    assert len(list(tree.find_all(exp.Placeholder))) == len(statement.params)
    settings = get_settings()
    outer = statement.sql
    for configured in (settings.hris_query, settings.hris_absences_query):
        outer = outer.replace(f"({strip_query(configured)}) AS src", "(SELECT * FROM configured) AS src")
    assert "FROM configured" in outer, statement.sql[:300]
    assert sqlglot.parse_one(outer, read="tsql", error_level=ErrorLevel.RAISE).sql(dialect="tsql") == outer


def absence_count() -> int:
    async def count() -> int:
        engine = await app_engine()
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(absences))).scalar_one())

    return run_async(count())


def test_a_list_of_employees_over_the_limit_is_read_in_statements_sql_server_takes(
        hris: PgHris, sqlserver_limit: list[Statement]) -> None:
    """A list of 2,501 employees (one unknown): planned, extracted and its absences read, every statement
    at most 2,000 parameters and T-SQL; every employee and absence stored."""
    fill(hris)
    params = ExtractParams(employees=[*NUMBERS, "NOBODY"])
    execution_id = str(uuid.uuid4())
    for key_range in run_async(plan_extract_shards(params, 16, 2000)):
        run_async(extract_employees(params, key_range, execution_id))
    run_async(extract_absences(absence_params(params), execution_id))

    assert sorted(employees_by_key()) == NUMBERS
    assert absence_count() == len(range(1, PEOPLE + 1, 10))
    assert any(" IN (" in s.sql and "absence_id" in s.sql for s in sqlserver_limit)  # absences by list
    assert sum(" IN (" in s.sql for s in sqlserver_limit) >= 6  # keys, employees, absences: parts of each
    for statement in sqlserver_limit:
        check_tsql(statement)


def test_the_stage_plans_each_part_of_a_long_list_apart(hris: PgHris, sqlserver_limit: list[Statement]) -> None:
    """The extract's planner cuts a 2,500-employee list into parts, each a shard read in one statement per
    batch; extracting every shard stores everyone once."""
    from pipelines.extract.stage import employee_shards

    fill(hris)
    shards = run_async(employee_shards(ExtractParams(employees=NUMBERS)))
    assert [len(s.params.employees or ()) for s in shards] == [1000, 1000, 500]
    assert len({s.key for s in shards}) == 3
    for shard in shards:
        assert shard.range is not None
        run_async(extract_employees(shard.params, shard.range, "x" * 36))
    assert sorted(employees_by_key()) == NUMBERS
    for statement in sqlserver_limit:
        check_tsql(statement)


def test_full_windowed_and_resumed_reads_are_tsql(hris: PgHris, sqlserver_limit: list[Statement],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The other statements: a full read (key ranges, NULL keys), a read since a watermark, and a list read
    resumed after a lost connection (key bound and list together) — all T-SQL within the limit."""
    fill(hris)
    for params in (ExtractParams(full=True), ExtractParams(since=T0.replace(tzinfo=UTC) + timedelta(seconds=2000))):
        for key_range in run_async(plan_extract_shards(params, 4, 600)):
            run_async(extract_employees(params, key_range, "f" * 36))
    run_async(extract_absences(absence_params(ExtractParams(full=True)), "f" * 36))
    monkeypatch.setattr(hris_source_module, "BATCH_SIZE", 400)  # read_in_batches reads it there
    flaky = DropsConnectionOnce(run_async(_source()))
    resumed = run_async(extract_employees(ExtractParams(employees=NUMBERS), ALL_KEYS, "r" * 36, source=flaky))

    assert resumed.rows_in == PEOPLE  # the lost batch's rows read again after the resume, none twice
    assert flaky.queries[1][0] == "S00400"  # the resumed statement starts after the last stored key
    assert any("src.updated_at >= ?" in s.sql for s in sqlserver_limit)
    assert any("src.employee_no IS NULL" in s.sql for s in sqlserver_limit)
    assert any("src.employee_no > ?" in s.sql and " IN (" in s.sql for s in sqlserver_limit)
    for statement in sqlserver_limit:
        check_tsql(statement)


def test_the_double_refuses_what_sql_server_refuses(hris: PgHris, sqlserver_limit: list[Statement]) -> None:
    """The test double is SQL Server's limit, not a fake: 2,100 parameters run on the real driver, 2,101 are
    refused with SQL Server's error 8003 before reaching it."""
    import pyodbc

    from shared.database.odbc import odbc_fetch_batches

    async def run(count: int) -> list[list[tuple[object, ...]]]:
        sql = f"SELECT COUNT(*) FROM hr_people WHERE employee_no IN ({', '.join('?' * count)})"
        return [batch async for batch in odbc_fetch_batches(hris.dsn, sql, NUMBERS[:1] * count)]

    fill(hris)
    assert run_async(run(2100)) == [[(1,)]]
    with pytest.raises(pyodbc.ProgrammingError) as refused:
        run_async(run(2101))
    assert refused.value.args == ("42000", SQLSERVER_TOO_MANY)
