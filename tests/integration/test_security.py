"""Security properties against a real worker: JSON only, and no secret in what it prints or records."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery

from shared.config.settings import load_settings
from shared.records.queries import get_stages
from shared.runtime.runner import run_async
from tests.conftest import RABBITMQ_URL, REDIS_URL, mariadb_admin, require_service
from tests.integration.records_fixtures import create_execution
from tests.integration.worker_process import WorkerProcess
from workers.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = f"pw-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def secret_user(app_db: str) -> Iterator[str]:
    """A MariaDB user with a password, allowed on the test's app database; its async URL is yielded."""
    user = f"u{uuid.uuid4().hex[:8]}"
    with mariadb_admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
        cur.execute(f"GRANT ALL ON `{app_db}`.* TO '{user}'@'127.0.0.1'")
    try:
        yield f"mysql+aiomysql://{user}:{PASSWORD}@127.0.0.1:3306/{app_db}"
    finally:
        with mariadb_admin() as conn, conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'127.0.0.1'")


@pytest.fixture
def worker_env(secret_user: str) -> dict[str, str]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("Redis", "127.0.0.1", 6379)
    return {"HRSYNC_BROKER_URL": RABBITMQ_URL, "HRSYNC_RESULT_BACKEND": REDIS_URL,
            "HRSYNC_DATABASE_URL": secret_user, "HRSYNC_LOG_FORMAT": "json", "HRSYNC_LOG_LEVEL": "DEBUG"}


def client(env: dict[str, str]) -> Celery:
    app = create_app(load_settings(broker_url=env["HRSYNC_BROKER_URL"], result_backend=env["HRSYNC_RESULT_BACKEND"]))
    with app.connection_for_write() as conn:
        for queue in app.conf.task_queues:
            queue.bind(conn.default_channel).declare()
            queue.bind(conn.default_channel).purge()
    return app


def test_a_pickle_message_is_refused_and_json_still_flows(worker_env: dict[str, str]) -> None:
    """A task message in pickle is refused unexecuted; the worker keeps running JSON tasks."""
    app = client(worker_env)
    execution_id = run_async(create_execution("probe", "manual", {}))
    worker = WorkerProcess(worker_env, ["hrsync.workflow"]).start()
    try:
        app.send_task("hrsync.probe", args=(execution_id, "pickled"), serializer="pickle",
                      queue="hrsync.workflow")
        ok = app.send_task("hrsync.probe", args=(execution_id, "json"), queue="hrsync.workflow")
        assert ok.get(timeout=60)["rows_in"] >= 1
        deadline = time.monotonic() + 10
        while "pickle" not in worker.text() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        assert worker.stop() == 0
    shards = {s["shard"] for s in run_async(get_stages(execution_id))}
    assert shards == {"json"}  # the pickled task never ran
    assert "Refusing to deserialize untrusted content of type pickle" in worker.text()


def test_secrets_stay_out_of_worker_output_and_records(worker_env: dict[str, str]) -> None:
    """With a password in HRSYNC_DATABASE_URL, nothing the worker prints or records contains it."""
    app = client(worker_env)
    execution_id = run_async(create_execution("probe", "manual", {"url": worker_env["HRSYNC_DATABASE_URL"]
                                                                           .replace(PASSWORD, "***")}))
    worker = WorkerProcess(worker_env, ["hrsync.workflow"]).start()
    try:
        results = [app.send_task("hrsync.probe", args=(execution_id, str(i)), queue="hrsync.workflow")
                   for i in range(5)]
        assert all(r.get(timeout=60)["rows_in"] >= 1 for r in results)
    finally:
        assert worker.stop() == 0
    output = worker.text()
    assert "worker.ready" in output
    assert PASSWORD not in output
    records = json.dumps(run_async(get_stages(execution_id)), default=str)
    assert PASSWORD not in records
