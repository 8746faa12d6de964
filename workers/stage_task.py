"""The one base task: trace context, the `execution_stages` row and the retry policy, for every stage.

A task shell only decodes its arguments and calls `self.run_stage(...)` with the stage's coroutine.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Coroutine
from typing import Any

import structlog
from celery import Task, signals
from celery.exceptions import Ignore
from celery.utils import uuid

from pipelines import registry
from pipelines.stage import Stage, StageResult
from shared.config.retry import Backoff, is_transient
from shared.config.settings import get_settings
from shared.events.coalesce import COALESCED
from shared.observability.metrics import serve_metrics, stage_metrics
from shared.observability.tracing import stage_span
from shared.records.executions import (
    ExecutionClosed,
    StepDeferred,
    begin_stage,
    next_start,
    record_stage_end,
    record_task_lost,
)
from shared.records.status import OPEN, ExecutionStatus, StageStatus
from shared.runtime.runner import run_async

log = structlog.get_logger(__name__)


def failure_hooks() -> list[tuple[str, str]]:
    """(task name, queue) of every registered stage's `on_failure` step (the task shells in `workers.tasks`)."""
    return [(stage.task_name(Stage.FAILURE_STEP), stage.queue) for stage in registry.STAGES if stage.on_failure]


def kind_holds() -> tuple[tuple[str, str], ...]:
    """(stage, step) of every registered stage's end of hold on its kind (`Stage.exclusive_until`), in order."""
    return tuple(stage.hold for stage in registry.STAGES if stage.hold is not None)


# Executions whose parked start waits in this process (`StageTask.defer`): set when a copy claims it here.
_WAITS: dict[str, threading.Event] = {}


def claimed_here(execution_id: str) -> None:
    """A start of `execution_id` claimed it in this process: its parked message's wait here ends."""
    waiting = _WAITS.get(execution_id)
    if waiting is not None:
        waiting.set()


RETRY_BACKOFF_CAP = 120.0  # HRSYNC_RETRY_BACKOFF_SECONDS doubles per retry up to this, with full jitter
# A deferred start is woken at once by the step that releases its kind (`wake_next`); its own message
# also waits this long in the worker and is then sent again: the slow safety net for a release no worker
# step saw (a cancel from the CLI or the console, a watchdog's failure, a worker lost before its wake).
DEFER_SECONDS = 10.0
# A retry due within this many seconds waits in the worker (a greenlet on the gevent pool) rather than in
# the broker's delayed-delivery queues; longer backoffs (the later retries) take Celery's countdown.
INLINE_RETRY_SECONDS = 10.0


class StageTask(Task):  # type: ignore[misc]  # Celery's Task is untyped
    """Base of every stage task. Subclasses set `stage`; shells call `run_stage`."""

    abstract = True
    # No result in Redis: an execution's state is in the database, and nothing reads a step's Celery result
    # except a chord (its header tasks, `workers.tasks._worker_task`, keep theirs) and the probe. So a small
    # execution leaves no result keys and no STARTED/SUCCESS writes behind (a long run stays flat).
    ignore_result = True
    stage = "stage"
    runs_when: tuple[str, ...] = OPEN  # execution statuses in which a step runs; others stop it at its start
    opens_execution = True  # a step moves a pending execution to running (the canvas's `start` claims instead)
    reports_failure = True  # a final failure fails the execution and sends the failure notice (not the notice)

    @property
    def max_retries(self) -> int:
        """HRSYNC_TASK_MAX_RETRIES: the one source of the retry limit (Celery reads it in `retry`)."""
        return get_settings().task_max_retries

    def retryable(self, exc: BaseException) -> bool:
        """Whether `exc` earns another attempt (`shared.config.retry.is_transient`)."""
        return is_transient(exc)

    def run_stage(self, execution_id: str, shard: str, coro: Coroutine[Any, Any, StageResult], *,
                  control: bool = False) -> dict[str, Any]:
        """Run the stage coroutine through the runner, recorded and traced; retry transient failures.

        A shard that already succeeded in this execution is not run again: its recorded result is
        returned. For a `control` task (a planner or a stage's final step) such a duplicate comes from
        a chord body fired twice and stops there (`Ignore`), unless `resumes` says it goes on (by
        default: the message is a redelivery of a task that died half-way through its fan-out, which
        must publish again). A step of an execution that is cancelled or finished stops at its start
        (`Ignore`, nothing recorded).
        """
        attempt = int(self.request.retries) + 1
        task_id = self.request.id
        with stage_span(self.stage, execution_id=execution_id, shard=shard, task_id=task_id,
                        attempt=attempt) as span, stage_metrics(span):
            try:
                result, duplicate, frees = run_async(self._tracked(execution_id, shard, attempt, task_id, coro, span))
            except ExecutionClosed as exc:
                span.status = "stopped"
                log.info("stage.stopped", reason=str(exc))
                raise Ignore() from exc
            except StepDeferred as exc:
                span.status = "deferred"
                raise (self.defer() if exc.parked else Ignore()) from exc
            except Exception as exc:
                self.wake_next(execution_id)  # a failure may end the execution (and so its hold on its kind)
                if self.retryable(exc) and self.request.retries < self.max_retries:
                    span.status = StageStatus.RETRYING
                    raise self.retry_later(exc, self._backoff()) from exc
                if self.reports_failure:  # tell operations (sync_failed), once per failure
                    for hook, queue in failure_hooks():
                        self.app.send_task(hook, args=(execution_id,), queue=queue)
                raise
            span.rows_in, span.rows_out = result.rows_in, result.rows_out
            if frees:
                self.wake_next(execution_id)
            if duplicate:
                span.status = "skipped"
                if control and not self.resumes(result):
                    raise Ignore()
            return result.as_json()

    def wake_next(self, execution_id: str) -> None:
        """After a step that may have released its execution's kind (the end of its hold, its finish,
        failure or cancel): send the parked start of the kind's oldest pending execution again at once
        (`next_start`), as a copy with a task id of its own — the parked message's own wait (`defer`) may
        still send it later, and whichever copy comes second stops at its start. Best effort: a failure
        here is logged, and that wait is the safety net."""
        try:
            parked = run_async(next_start(execution_id, COALESCED, kind_holds()))
            if parked is None:
                return
            woken = {**parked, "kwargs": {**(parked.get("kwargs") or {}), "woken": True}}
            copy = uuid()
            self.app.signature(woken).apply_async(task_id=copy)
            log.info("start.woken", execution_id=(parked.get("args") or ["?"])[0], task_id=copy, by=execution_id)
        except Exception:
            log.exception("start.wake_failed", execution_id=execution_id)

    def parked_copy(self) -> dict[str, Any] | None:
        """This message as JSON (its chain included), to park while it waits (`StepDeferred`); None if it
        cannot be (then only its own wait sends it again)."""
        try:
            parked: dict[str, Any] = json.loads(json.dumps(
                self.signature_from_request(self.request, retries=self.request.retries)))
        except (TypeError, ValueError):
            log.warning("start.not_parked", task_id=self.request.id)
            return None
        return parked

    def defer(self) -> Ignore:
        """Wait `DEFER_SECONDS` here, send this very message again (same task id, chain and attempt count:
        waiting is not an attempt) and return the `Ignore` that acks this delivery. The wait is the safety
        net: the step that releases the kind normally sends a copy of the parked message long before.

        Not with a countdown: Celery's native delayed delivery passes the message through the quorum queues
        `celery_delayed_*`, which dead-letter it to the exchange `celery_delayed_delivery` when its TTL ends.
        Right after a broker restart that exchange may not exist yet; the queue's at-least-once dead-letter
        worker (`rabbit_fifo_dlx_worker`) then buffers the message it cannot route and retries it only every
        `dead_letter_worker_publisher_confirm_timeout` (180 s by default), and the deferred start — with
        every event its execution gathers — waited that long. The wait here is a sleep (a greenlet on
        the gevent pool) with the message still unacked, so a lost worker gives it back.

        When a woken copy claims the execution in this process meanwhile (`claimed_here`), the wait ends
        there and nothing is sent again (a resend would only stop at its start): a warm shutdown is not
        held up by waits whose execution already runs.
        """
        execution_id = str((self.request.args or [""])[0])
        claimed = _WAITS.setdefault(execution_id, threading.Event())
        try:
            if claimed.wait(DEFER_SECONDS):
                return Ignore()
        finally:
            if _WAITS.get(execution_id) is claimed:
                del _WAITS[execution_id]
        self.signature_from_request(self.request, retries=self.request.retries).apply_async()
        return Ignore()

    def retry_later(self, exc: Exception, delay: float) -> Exception:
        """The next attempt, `delay` seconds on: a short wait is slept here and the message sent again at
        once (as `defer`, but counting the attempt), so it does not depend on the broker's delayed delivery
        (see `defer`); a longer one is Celery's countdown retry. Returns what to raise."""
        outcome: Exception
        if delay > INLINE_RETRY_SECONDS:
            outcome = self.retry(exc=exc, countdown=delay, max_retries=self.max_retries)
            return outcome
        time.sleep(delay)
        self.signature_from_request(self.request, retries=self.request.retries + 1).apply_async()
        outcome = Ignore()
        return outcome

    def resumes(self, done: StageResult) -> bool:
        """Whether a control step that already succeeded goes on (publishes what follows) when it runs again."""
        return bool((self.request.delivery_info or {}).get("redelivered"))

    async def _tracked(self, execution_id: str, shard: str, attempt: int, task_id: str | None,
                       coro: Coroutine[Any, Any, StageResult], span: Any) -> tuple[StageResult, bool, bool]:
        """(the step's result, whether it was a duplicate, whether its end may have freed its kind)."""
        # One hop to the runner's loop; one transaction for the duplicate check and the start row, one for the end.
        try:
            done, status = await begin_stage(execution_id, self.stage, shard, attempt, task_id,
                                             runs_when=self.runs_when, opens=self.opens_execution)
            if done is not None:
                coro.close()
                return StageResult.from_json(done), True, False
            if status is not None and status not in self.runs_when:
                raise ExecutionClosed(execution_id, status)
        except BaseException:
            coro.close()  # never started: close it so it is not reported as "never awaited"
            raise
        try:
            result = await coro
        except (ExecutionClosed, StepDeferred):
            raise  # another launch claimed the execution (its row is that launch's), or the step waits
        except BaseException as exc:
            # `attempt` comes from the caller: on the runner's thread `self.request` is another (empty) request.
            final = not (self.retryable(exc) and attempt - 1 < self.max_retries)
            await record_stage_end(  # the notice must not hide the stage that failed: it fails nothing
                execution_id, self.stage, shard, attempt, status=StageStatus.FAILED if final else StageStatus.RETRYING,
                duration_ms=span.duration_ms, error_type=type(exc).__name__, error_message=str(exc),
                fails_execution=f"{self.stage}[{shard}]: {type(exc).__name__}: {exc}"
                if final and self.reports_failure else None,
            )
            raise
        status = await record_stage_end(execution_id, self.stage, shard, attempt, status=StageStatus.SUCCEEDED,
                                        duration_ms=span.duration_ms, result=result)
        ended = status is not None and status not in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)
        return result, False, ended or (self.stage, shard) in kind_holds()

    def _backoff(self) -> float:
        # Whole seconds, at least 1: Celery's native delayed delivery (quorum queues) truncates the
        # countdown to an int and rejects the retry ("countdown must be a positive number") below 1 s.
        backoff = Backoff(base=get_settings().retry_backoff_seconds, cap=RETRY_BACKOFF_CAP)
        return float(max(1, math.ceil(backoff.delay(int(self.request.retries)))))

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Failures that never reached `run_stage`'s recording (time limit, lost worker) still count."""
        execution_id = kwargs.get("execution_id") or (args[0] if args else None)
        if not isinstance(execution_id, str) or not self.reports_failure:
            return
        try:
            run_async(record_task_lost(execution_id, task_id, self.stage, f"{self.stage}: {type(exc).__name__}: {exc}"))
        except Exception:
            log.exception("execution.mark_failed_failed", execution_id=execution_id)
        self.wake_next(execution_id)


@signals.worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    """HRSYNC_METRICS_PORT: the worker's Prometheus endpoint (main process; see docs/operations.md)."""
    serve_metrics(get_settings().metrics_port, "worker")
