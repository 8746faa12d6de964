"""The one base task: trace context, the `execution_stages` row and the retry policy, for every stage.

A task shell only decodes its arguments and calls `self.run_stage(...)` with the stage's coroutine.
"""

from __future__ import annotations

import random
from collections.abc import Coroutine
from typing import Any

import structlog
from celery import Task

from shared.retry import is_transient
from shared.runner import run_async
from shared.tracing import stage_span
from shared.tracking import StageResult, record_stage_end, record_stage_start, set_execution_status

log = structlog.get_logger(__name__)


class RetryableStageError(Exception):
    """Raised by a stage for a temporary condition outside the database (e.g. SMTP 4xx)."""


class StageTask(Task):  # type: ignore[misc]  # Celery's Task is untyped
    """Base of every stage task. Subclasses set `stage`; shells call `run_stage`."""

    abstract = True
    stage = "stage"
    max_retries = 5
    retry_backoff_base = 2.0  # seconds; doubles per retry, capped, with full jitter
    retry_backoff_max = 120.0

    def retryable(self, exc: BaseException) -> bool:
        """Whether `exc` earns another attempt (transient DB error or a RetryableStageError)."""
        return isinstance(exc, RetryableStageError) or is_transient(exc)

    def run_stage(self, execution_id: str, shard: str, coro: Coroutine[Any, Any, StageResult]) -> dict[str, Any]:
        """Run the stage coroutine through the runner, recorded and traced; retry transient failures."""
        attempt = int(self.request.retries) + 1
        task_id = self.request.id
        with stage_span(self.stage, execution_id=execution_id, shard=shard, task_id=task_id,
                        attempt=attempt) as span:
            try:
                result = run_async(self._tracked(execution_id, shard, attempt, task_id, coro, span))
            except Exception as exc:
                if self.retryable(exc) and self.request.retries < self.max_retries:
                    span.status = "retrying"
                    raise self.retry(exc=exc, countdown=self._backoff()) from exc
                raise
            span.rows_in, span.rows_out = result.rows_in, result.rows_out
            return result.as_json()

    async def _tracked(self, execution_id: str, shard: str, attempt: int, task_id: str | None,
                       coro: Coroutine[Any, Any, StageResult], span: Any) -> StageResult:
        # One hop to the runner's loop for the start row, the stage and the end row.
        try:
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
        return result

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
