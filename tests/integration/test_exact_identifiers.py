"""Identifiers compare exactly on MariaDB (DESIGN §5): case and trailing spaces make different ids."""

from __future__ import annotations

import pytest
from sqlalchemy import JSON

from shared.database.tables import metadata
from shared.events.inbox import admit_event
from shared.runtime.runner import run_async
from tests.conftest import mariadb_admin

pytestmark = pytest.mark.integration


def test_event_ids_differing_by_case_or_a_trailing_space_are_three_events(app_db: str) -> None:
    """`Payroll-1`, `payroll-1` and `payroll-1 ` each get an execution of their own; a repeat is a duplicate."""
    ids = ["Payroll-1", "payroll-1", "payroll-1 "]
    admissions = [run_async(admit_event(i, "hrsync.sync.requested", "test", b"{}", kind="hris", trigger="event",
                                        params={"stages": []})) for i in ids]
    assert [a.duplicate for a in admissions] == [False, False, False]
    assert len({a.execution_id for a in admissions}) == 3
    again = run_async(admit_event("payroll-1 ", "hrsync.sync.requested", "test", b"{}", kind="hris",
                                  trigger="event", params={"stages": []}))
    assert again.duplicate
    assert again.execution_id == admissions[2].execution_id


def test_every_text_column_of_the_app_tables_compares_exactly(app_db: str) -> None:
    """After the migrations, no text column of an app table keeps a case- or pad-insensitive collation."""
    with mariadb_admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s AND COLLATION_NAME IS NOT NULL", (app_db,))
        columns = cur.fetchall()
    # JSON columns are documents, not identifiers (MariaDB gives them utf8mb4_bin).
    app_columns = [c for c in columns if c[0] in metadata.tables
                   and not isinstance(metadata.tables[c[0]].c[c[1]].type, JSON)]
    assert {c[0] for c in app_columns} >= {"event_inbox", "employees", "notifications", "operator_actions"}
    assert [c for c in app_columns if c[2] != "utf8mb4_nopad_bin"] == []
