"""A real `celery worker -P gevent -c 50` running hrsync's base task against RabbitMQ, Redis, MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery, group

from shared.config.settings import load_settings
from shared.records.queries import get_execution, get_stages
from shared.runtime import runner
from shared.runtime.runner import run_async
from tests.conftest import RABBITMQ_URL, REDIS_URL, mariadb_admin, mariadb_connections, require_service
from tests.integration.records_fixtures import create_execution
from tests.integration.worker_process import WorkerProcess
from workers.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def broker_env(app_db: str) -> Iterator[dict[str, str]]:
    """Settings of a worker on the real broker and backend, with the test's app database."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("Redis", "127.0.0.1", 6379)
    env = {"HRSYNC_BROKER_URL": RABBITMQ_URL, "HRSYNC_RESULT_BACKEND": REDIS_URL,
           "HRSYNC_DATABASE_URL": f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}",
           "HRSYNC_DB_POOL_SIZE": "20", "HRSYNC_DB_MAX_OVERFLOW": "30", "HRSYNC_LOG_FORMAT": "json"}
    return env


def client_app(env: dict[str, str]) -> Celery:
    """A Celery client configured like the worker; stale messages of earlier runs are purged."""
    settings = load_settings(broker_url=env["HRSYNC_BROKER_URL"], result_backend=env["HRSYNC_RESULT_BACKEND"])
    client = create_app(settings)
    with client.connection_for_write() as conn:
        for queue in client.conf.task_queues:
            queue.bind(conn.default_channel).declare()
            queue.bind(conn.default_channel).purge()
    return client


def aborted_clients() -> int:
    with mariadb_admin() as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Aborted_clients'")
        return int(cur.fetchone()[1])  # type: ignore[index]


def max_overlap(stages: list[dict[str, object]]) -> int:
    """The largest number of stage rows running at the same instant."""
    edges = sorted([(s["started_at"], 1) for s in stages] + [(s["finished_at"], -1) for s in stages])
    best = running = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


@pytest.mark.alone  # MariaDB's Aborted_clients counts every client of the server
def test_500_overlapping_stage_tasks_succeed_and_connections_close(broker_env: dict[str, str], app_db: str,
                                                                   tmp_path: object) -> None:
    """500 overlapping DB tasks all succeed, overlap in time, and the worker closes its connections."""
    client = client_app(broker_env)
    execution_id = run_async(create_execution("probe", "manual", {"tasks": 500}))
    runner.shutdown()  # from here on, every connection to the test database is the worker's
    aborted_before = aborted_clients()
    worker = WorkerProcess(broker_env, ["hrsync.workflow"], via_cli=True).start()  # `hrsync worker`: gevent
    try:
        job = group(client.signature("hrsync.probe", args=(execution_id,),
                                     kwargs={"shard": str(i), "sleep_seconds": 0.05}) for i in range(500))
        results = job.apply_async().get(timeout=180)
        assert len(results) == 500
        assert all(r["output"]["executions"] >= 1 for r in results)
        assert mariadb_connections(app_db) > 0  # the worker's pool is alive while it runs
    finally:
        code = worker.stop()
    assert code == 0, worker.text()[-3000:]
    assert "gevent" in worker.text()  # the pool `hrsync worker` chose
    assert "worker.runner_stopped" in worker.text()
    assert mariadb_connections(app_db) == 0
    assert aborted_clients() == aborted_before, "connections were dropped, not closed on their loop"

    stages = run_async(get_stages(execution_id))
    assert len(stages) == 500
    assert {s["status"] for s in stages} == {"succeeded"}
    assert {s["attempt"] for s in stages} == {1}
    assert all(s["task_id"] and s["duration_ms"] is not None for s in stages)
    assert max_overlap(stages) >= 10, "stage rows show no real parallelism on the gevent pool"
    execution = run_async(get_execution(execution_id))
    assert execution is not None
    assert execution["status"] == "running"
