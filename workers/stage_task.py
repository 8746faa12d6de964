"""The one base task: trace context, the `execution_stages` row and the retry policy, for every stage.

A task shell only decodes its arguments and calls `self.run_stage(...)` with the stage's coroutine.
"""

from __future__ import annotations

import random
from collections.abc import Coroutine
from typing import Any

import structlog
from celery import Task
from celery.exceptions import Ignore

from shared.retry import is_transient
from shared.runner import run_async
from shared.tracing import stage_span
from shared.tracking import (
    StageResult,
    record_stage_end,
    record_stage_start,
    set_execution_status,
    succeeded_result,
)

log = structlog.get_logger(__name__)
FAILURE_NOTICE_TASK = "hrsync.notify.failure"


class RetryableStageError(Exception):
    """Raised by a stage for a temporary condition outside the database."""


class StageTask(Task):  # type: ignore[misc]  # Celery's Task is untyped
    """Base of every stage task. Subclasses set `stage`; shells call `run_stage`."""

    abstract = True
    stage = "stage"
    max_retries = 5
    retry_backoff_base = 2.0  # seconds; doubles per retry, capped, with full jitter
    retry_backoff_max = 120.0
    retry_for: tuple[type[BaseException], ...] = (RetryableStageError,)

    def retryable(self, exc: BaseException) -> bool:
        """Whether `exc` earns another attempt: a transient DB error, or one of the task's `retry_for`."""
        return isinstance(exc, self.retry_for) or is_transient(exc)

    def run_stage(self, execution_id: str, shard: str, coro: Coroutine[Any, Any, StageResult], *,
                  control: bool = False) -> dict[str, Any]:
        """Run the stage coroutine through the runner, recorded and traced; retry transient failures.

        A shard that already succeeded in this execution is not run again: its recorded result is
        returned. For a `control` task (a planner or a stage's final step) such a duplicate comes from
        a chord body fired twice and stops there (`Ignore`), unless the message is a redelivery of a
        task that died half-way through its fan-out, which must publish again.
        """
        attempt = int(self.request.retries) + 1
        task_id = self.request.id
        with stage_span(self.stage, execution_id=execution_id, shard=shard, task_id=task_id,
                        attempt=attempt) as span:
            try:
                result, duplicate = run_async(self._tracked(execution_id, shard, attempt, task_id, coro, span))
            except Exception as exc:
                if self.retryable(exc) and self.request.retries < self.max_retries:
                    span.status = "retrying"
                    raise self.retry(exc=exc, countdown=self._backoff()) from exc
                if self.name != FAILURE_NOTICE_TASK:  # tell operations (sync_failed), once per failure
                    self.app.send_task(FAILURE_NOTICE_TASK, args=(execution_id,), queue="hrsync.notify")
                raise
            span.rows_in, span.rows_out = result.rows_in, result.rows_out
            if duplicate:
                span.status = "skipped"
                if control and not (self.request.delivery_info or {}).get("redelivered"):
                    raise Ignore()
            return result.as_json()

    async def _tracked(self, execution_id: str, shard: str, attempt: int, task_id: str | None,
                       coro: Coroutine[Any, Any, StageResult], span: Any) -> tuple[StageResult, bool]:
        # One hop to the runner's loop for the duplicate check, the start row, the stage and the end row.
        try:
            done = await succeeded_result(execution_id, self.stage, shard)
            if done is not None:
                coro.close()
                return done, True
            await record_stage_start(execution_id, self.stage, shard, attempt, task_id)
        except BaseException:
            coro.close()  # never started: close it so it is not reported as "never awaited"
            raise
        try:
            result = await coro
        except BaseException as exc:
            final = not (self.retryable(exc) and self.request.retries < self.max_retries)
            await record_stage_end(
                execution_id, self.stage, shard, attempt, status="failed" if final else "retrying",
                duration_ms=span.duration_ms, error_type=type(exc).__name__, error_message=str(exc),
            )
            if final:
                await set_execution_status(execution_id, "failed", failed_stage=self.stage,
                                           error=f"{self.stage}[{shard}]: {type(exc).__name__}: {exc}")
            raise
        await record_stage_end(execution_id, self.stage, shard, attempt, status="succeeded",
                               duration_ms=span.duration_ms, result=result)
        return result, False

    def _backoff(self) -> float:
        cap = min(self.retry_backoff_max, self.retry_backoff_base * 2 ** int(self.request.retries))
        return random.uniform(0, cap)

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Failures that never reached `run_stage`'s recording (time limit, lost worker) still count."""
        execution_id = kwargs.get("execution_id") or (args[0] if args else None)
        if not isinstance(execution_id, str):
            return
        try:
            run_async(set_execution_status(execution_id, "failed", failed_stage=self.stage,
                                           error=f"{self.stage}: {type(exc).__name__}: {exc}"))
        except Exception:
            log.exception("execution.mark_failed_failed", execution_id=execution_id)
