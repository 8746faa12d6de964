"""A worker started on one stage's queue, as a per-queue deployment starts it (docs/capacity.md), on a broker
where no hrsync queue exists yet: every queue is declared and bound to Celery's delayed-delivery exchange,
and nothing is logged about delayed delivery failing."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from tests.conftest import REDIS_URL, require_service
from tests.integration.stack_fixtures import private_vhost
from tests.integration.worker_process import WorkerProcess
from workers.app import TASK_EXCHANGE
from workers.queues import stage_queues

pytestmark = [pytest.mark.integration, pytest.mark.slow]



def delayed_bindings(vhost: str) -> set[str]:
    """The queues of `vhost` that delayed messages reach: kombu binds each queue to its exchange with the
    routing key `#.<its key>` (the task exchange itself being bound to `celery_delayed_delivery`)."""
    listed = subprocess.run(["rabbitmqctl", "-q", "list_bindings", "-p", vhost, "--no-table-headers",
                             "source_name", "destination_name", "destination_kind", "routing_key"],
                            check=True, capture_output=True, text=True, timeout=60).stdout
    rows = [line.split("\t") for line in listed.splitlines()]
    return {row[1] for row in rows
            if len(row) == 4 and row[0] == TASK_EXCHANGE and row[2] == "queue" and row[3] == f"#.{row[1]}"}


def test_a_worker_on_one_queue_binds_every_queue_for_delayed_delivery(app_db: str) -> None:
    """`-Q hrsync.merge` alone on an empty virtual host: all five queues end up bound to the delayed-delivery
    exchange (the merge worker declared the other four before Celery bound them), the log has no
    "Failed to bind queue" nor "Failed to setup delayed delivery", and the worker stops with code 0."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("Redis", "127.0.0.1", 6379)
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("needs rabbitmqctl for a virtual host of its own")
    vhost = f"hrsync-test-queues-{uuid.uuid4().hex[:6]}"
    with private_vhost(vhost) as amqp_url:
        env = {"HRSYNC_BROKER_URL": amqp_url, "HRSYNC_RESULT_BACKEND": REDIS_URL,
               "HRSYNC_DATABASE_URL": f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}"}
        worker = WorkerProcess(env, ["hrsync.merge"]).start()
        try:
            bound = delayed_bindings(vhost)
        finally:
            code = worker.stop()
    assert code == 0, worker.text()[-3000:]
    # stage_queues(): extract, merge, notify, export and the workflow's; each was bound, none only declared.
    assert bound == set(stage_queues()), worker.text()[-3000:]
    assert "Failed to bind queue" not in worker.text(), worker.text()[-3000:]
    assert "Failed to setup delayed delivery" not in worker.text(), worker.text()[-3000:]
