"""A reorganisation on the running stack with SQL Server's parameter limit enforced inside the worker: one
coalesced `employee.changed` execution of 5,000 employees runs to `succeeded`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from shared.database.tables import employees, event_inbox, executions
from shared.events.bus import pika_url
from tests.integration.biostar_fixtures import SetEnv
from tests.integration.hris_fixtures import PgHris
from tests.integration.smtp_fixtures import SmtpServer
from tests.integration.sqlserver_limits import SITECUSTOMIZE
from tests.integration.stack_fixtures import Stack, app_rows, count_rows, event_body, running_stack, wait_admitted

pytestmark = [pytest.mark.integration, pytest.mark.slow]


REPO = Path(__file__).resolve().parents[2]
PEOPLE = 5_000  # the most one coalesced execution holds (DESIGN §5)
ENFORCED = "SQL Server's parameter limit enforced"


@pytest.fixture
def stack(app_db: str, pg_hris: PgHris, biostar_db: str, smtp_server: SmtpServer, hrsync_env: SetEnv,
          tmp_path: Path) -> Iterator[Stack]:
    """The running product whose worker refuses HRIS statements over 2,100 parameters (a `sitecustomize`
    first on its PYTHONPATH patches aioodbc's cursor, psqlodbc stays the driver underneath)."""
    hook = tmp_path / "sqlserver-limit"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(f"{SITECUSTOMIZE}import sys\nprint({ENFORCED!r}, file=sys.stderr)\n")
    path = os.pathsep.join(p for p in (str(hook), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    with running_stack(app_db, pg_hris, biostar_db, smtp_server, hrsync_env, worker_env={"PYTHONPATH": path}) as rig:
        yield rig


def publish_all(url: str, bodies: list[dict[str, object]]) -> None:
    """Publish on one channel with confirms, as a system announcing a reorganisation would."""
    connection = pika.BlockingConnection(pika.URLParameters(pika_url(url)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish("hrsync.events", str(body["type"]), json.dumps(body).encode(), pika.BasicProperties(
                content_type="application/cloudevents+json", delivery_mode=2, message_id=str(body["id"])),
                mandatory=True)
    finally:
        connection.close()


def test_a_coalesced_execution_of_5000_employees_succeeds_under_sql_servers_limit(stack: Stack) -> None:
    """5,000 `employee.changed` gathered while no worker runs make one execution of 5,000 employees; with the
    worker back (limit enforced) it succeeds and stores every employee."""
    assert stack.worker is not None
    assert ENFORCED in stack.worker.text()
    prefix = stack.no("R")
    numbers = [f"{prefix}{i:04d}" for i in range(PEOPLE)]
    # inactive: rows for days with punches only, so the merge and notify stay small and the extract is the test
    stack.hris.execute(
        "INSERT INTO hr_people (employee_no, full_name, department, status, hire_date, updated_at) "
        "SELECT ? || lpad(g::text, 4, '0'), 'Person ' || g, 'Reorg', 'inactive', DATE '2020-01-01', "
        "CURRENT_TIMESTAMP FROM generate_series(0, CAST(? AS INTEGER) - 1) g", prefix, PEOPLE)
    stack.worker.stop()  # the execution stays pending, so every event joins it
    ids = [f"{prefix}-{n}" for n in numbers]
    publish_all(stack.amqp_url, [event_body("hrsync.employee.changed", {"employee_no": n}, i)
                                 for n, i in zip(numbers, ids, strict=True)])
    admitted = wait_admitted(ids, timeout=180)
    [execution_id] = {row["execution_id"] for row in admitted}
    stack.worker.start()

    deadline = time.monotonic() + 240
    while (row := app_rows(executions, executions.c.id == execution_id)[0])["status"] in ("pending", "running"):
        assert time.monotonic() < deadline, row
        time.sleep(0.5)
    assert row["status"] == "succeeded", (row["error"], stack.worker.text()[-3000:])
    assert len(row["params"]["extract"]["employees"]) == PEOPLE
    assert count_rows(employees, employees.c.employee_no.like(f"{prefix}%")) == PEOPLE
    assert count_rows(event_inbox, event_inbox.c.execution_id == execution_id) == PEOPLE
