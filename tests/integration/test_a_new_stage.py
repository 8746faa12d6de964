"""The proof that a stage is one declaration: a throwaway stage, declared here and registered in the worker and
the command-line processes (`python -m celery -A tests.integration.test_a_new_stage`), runs on the real broker,
backend and database with no product file changed — its queue exists, its tasks run, its rows show in the
trace, and a failure in it is replayed.

The stage is registered only in the processes started here: this test process keeps the product's four
(other tests compare the registry with them).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest

from pipelines import registry
from pipelines.stage import Phase, Stage, StageResult, WorkKind, plan_of, stage_params, sum_outputs
from shared.records.queries import get_execution, get_stages, succeeded_outputs
from shared.records.shards import ShardKind
from shared.runtime.runner import run_async
from tests.conftest import REDIS_URL, require_service
from tests.integration.records_fixtures import create_execution
from tests.integration.stack_fixtures import private_vhost, replays_of
from tests.integration.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "scratch"
QUEUE = "hrsync.scratch"
MODULE = __name__
PIECE = WorkKind("pieces", prefix="piece:")  # the stage's own kind of shard, declared here


@dataclass(frozen=True)
class PieceShard:
    """One piece of the scratch stage's work: its number."""

    key: str
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "n": self.n}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PieceShard:
        return cls(str(data["key"]), int(data["n"]))


async def plan_scratch(execution_id: str) -> StageResult:
    inputs = await stage_params(execution_id, NAME)
    shards = [PieceShard(PIECE.of(f"{n}"), n) for n in range(int(inputs["pieces"]))]
    return plan_of(shards, await succeeded_outputs(execution_id, NAME))


async def work_piece(execution_id: str, shard: dict[str, Any]) -> StageResult:
    """A piece fails (not transient) while the file its inputs name exists: the failure a replay repairs."""
    piece = PieceShard.from_json(shard)
    failure_file = Path((await stage_params(execution_id, NAME))["fail_while"])
    if piece.n == 1 and await asyncio.to_thread(failure_file.exists):
        raise ValueError("piece 1 refused: the failure file exists")
    return StageResult(rows_in=1, rows_out=1, output={"squares": piece.n * piece.n})


async def finish_scratch(execution_id: str) -> StageResult:
    outputs = await succeeded_outputs(execution_id, NAME)
    totals = sum_outputs(STAGE.outputs_of(outputs, PIECE), ("squares",))
    return StageResult(rows_out=totals["squares"], output=totals)


STAGE = Stage(NAME, QUEUE, phases=(Phase("plan", ShardKind.PLAN, plan_scratch, "piece", work_piece),),
              finish=finish_scratch, shard_kinds=(PIECE,))


def register() -> None:
    """Register the scratch stage in this process (before `workers` is imported)."""
    if NAME not in registry.BY_NAME:
        registry.register(STAGE)


def __getattr__(name: str) -> Any:
    """`celery -A tests.integration.test_a_new_stage worker`: the product's app, with the scratch stage."""
    if name != "app":
        raise AttributeError(name)
    register()
    from workers.app import app

    return app


def in_a_registered_process(env: dict[str, str], code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a Python process that registered the scratch stage first (as a deployment's own module
    would), with `argv` as its arguments."""
    script = f"import sys; import {MODULE} as scratch; scratch.register(); sys.argv = ['hrsync', *sys.argv[1:]]; {code}"
    return subprocess.run([sys.executable, "-c", script, *argv], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=240, check=False)


def hrsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return in_a_registered_process(env, "from cli.main import main; main()", *args)


def wait_for(execution_id: str, status: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = run_async(get_execution(execution_id))
        if execution is not None and execution["status"] == status:
            return dict(execution)
        time.sleep(0.3)
    raise AssertionError(f"{execution_id} not {status}: {run_async(get_execution(execution_id))}")


@pytest.fixture
def scratch_env(app_db: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings of a worker of every queue on a fresh virtual host, the test's app database and HOME."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    require_service("Redis", "127.0.0.1", 6379)
    with private_vhost(f"hrsync-test-scratch-{uuid.uuid4().hex[:6]}") as amqp_url:
        yield {"HRSYNC_BROKER_URL": amqp_url, "HRSYNC_RESULT_BACKEND": REDIS_URL, "HRSYNC_EVENTS_URL": amqp_url,
               "HRSYNC_DATABASE_URL": f"mysql+aiomysql://root@127.0.0.1:3306/{app_db}",
               "HRSYNC_HOME": str(tmp_path / "home"), "HRSYNC_LOG_FORMAT": "json"}


def test_a_stage_declared_outside_the_product_runs_shows_and_replays(scratch_env: dict[str, str],
                                                                     tmp_path: Path) -> None:
    assert NAME not in registry.BY_NAME  # this process keeps the product's stages
    failure_file = tmp_path / "fail"
    failure_file.touch()
    params = {"scope": NAME, "stages": [NAME], NAME: {"pieces": 3, "fail_while": str(failure_file)}}
    execution_id = run_async(create_execution(NAME, "manual", params))
    # every stage's queue and the workflow's: derived from the registry in the worker's process
    queues = [*(stage.queue for stage in registry.STAGES), QUEUE, "hrsync.workflow"]
    worker = WorkerProcess(scratch_env, queues, concurrency=8, app=MODULE).start()
    try:
        with pika.BlockingConnection(pika.URLParameters(scratch_env["HRSYNC_BROKER_URL"])) as connection:
            connection.channel().queue_declare(QUEUE, passive=True)  # raises unless the worker declared it
        launched = in_a_registered_process(
            scratch_env, f"from workers.canvas import launch; launch({execution_id!r}, [{NAME!r}])")
        assert launched.returncode == 0, launched.stderr[-2000:]
        failed = wait_for(execution_id, "failed")
        assert (failed["failed_stage"], "piece 1 refused" in (failed["error"] or "")) == (NAME, True)

        failure_file.unlink()
        replayed = hrsync(scratch_env, "replay", execution_id, "--reason", "the failure file is gone", "--wait",
                          "--timeout", "120")
        assert replayed.returncode == 0, replayed.stderr[-2000:] + replayed.stdout[-2000:]
        traced = hrsync(scratch_env, "trace", execution_id)
        assert traced.returncode == 0, traced.stderr[-2000:]
    finally:
        code = worker.stop()
    assert code == 0, worker.text()[-3000:]

    first = {(r["shard"], r["status"]) for r in run_async(get_stages(execution_id)) if r["stage"] == NAME}
    # piece 1 failed for good (a ValueError is not transient); pieces 0 and 2 ran, or stopped at their start once
    # the execution had failed
    assert {("@plan", "succeeded"), ("piece:1", "failed")} <= first
    done_before = {shard for shard, status in first if status == "succeeded" and shard != "@plan"}
    [replay] = replays_of(execution_id)
    again = {(r["shard"], r["status"]) for r in run_async(get_stages(replay["id"])) if r["stage"] == NAME}
    # the replay reruns what did not succeed (piece 1 at least) and the end; the done sums 0 + 1 + 4
    assert {s for s, _ in again} == {"@plan", "@done"} | ({"piece:0", "piece:1", "piece:2"}
                                                          - done_before)
    assert all(status == "succeeded" for _, status in again)
    assert run_async(get_execution(replay["id"]))["summary"][NAME] == {"squares": 5}
    assert NAME in traced.stdout
    assert "piece:1" in traced.stdout
