"""Worker start and stop: self-check and start the runner with the worker; dispose engines at stop."""

from __future__ import annotations

from typing import Any

import structlog
from celery import signals
from celery._state import _set_task_join_will_block
from celery.worker.control import inspect_command

from shared.check import run_checks
from shared.config.errors import CheckFailed
from shared.config.settings import get_settings
from shared.observability.tracing import ensure_logging, real_locks_for_logging
from shared.runtime import runner

log = structlog.get_logger(__name__)


@signals.worker_init.connect
def _check_and_start(sender: Any = None, **_: Any) -> None:
    ensure_logging()
    results = run_checks(get_settings(), sender.app.conf if sender is not None else {})
    failed = [r for r in results if not r.ok]
    if failed:
        raise CheckFailed("; ".join(f"{r.name}: {r.detail}" for r in failed))
    runner.get_runner()  # the loop thread starts with the worker, not with the first task
    log.info("worker.ready", checks=len(results))


@signals.worker_init.connect
def _declare_every_queue(sender: Any = None, **_: Any) -> None:
    """Declare all of hrsync's queues, not only those this worker consumes.

    At the consumer's start Celery binds every configured queue to its native delayed-delivery exchange
    (quorum queues); a queue nobody has declared yet answers 404, and Celery logs CRITICAL "Failed to setup
    delayed delivery" — e.g. the first `hrsync worker -Q hrsync.merge` of a per-queue deployment
    (docs/capacity.md) on a fresh broker. Declaring them first makes every binding succeed. A broker that
    refuses is left to Celery's own connection retries: logged, not raised.
    """
    if sender is None:
        return
    app = sender.app
    try:
        with app.connection_for_write() as conn:
            if conn.transport.driver_type != "amqp":
                return  # the embedded filesystem transport has no delayed delivery
            for queue in app.amqp.queues.values():
                queue.bind(conn.default_channel).declare()
    except Exception as exc:  # the worker still starts: its consumer retries the broker itself
        log.warning("worker.queues_not_declared", error_type=type(exc).__name__, error=str(exc))


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
@signals.worker_ready.connect
def _logging_on_real_locks(**_: Any) -> None:
    real_locks_for_logging()  # the runner's thread logs too; see shared.observability.tracing.LineWriter


@signals.worker_ready.connect
def _send_without_result_subscriptions(**_: Any) -> None:
    # Nothing in a worker waits on a result it sent, but on the gevent pool Celery subscribes the Redis
    # result channel of every task sent and keeps it (one channel per task, for good). Saying that a join
    # would block (what the prefork pool says) turns the subscription off.
    _set_task_join_will_block(True)


@signals.worker_init.connect
def _quiet_result_drops(**_: Any) -> None:
    """`AsyncResult.__del__` always asks the Redis result consumer to unsubscribe, which first reads a
    gevent-local lock depth; for a result dropped while its greenlet is finalized (a warm shutdown) that read
    raises, and the interpreter printed an "Exception ignored … greenlet is being finalized" traceback per
    result. Such a result has nothing to unsubscribe (see above): that one error is dropped. The backend is
    per thread (per greenlet here), so the consumer class is wrapped, once."""
    from celery.backends.redis import ResultConsumer

    cancel_for = ResultConsumer.cancel_for
    if getattr(cancel_for, "quiet_when_finalizing", False):
        return

    def cancel_unless_finalizing(self: Any, task_id: str) -> None:
        try:
            cancel_for(self, task_id)
        except RuntimeError as exc:
            if "finalized" not in str(exc):
                raise

    cancel_unless_finalizing.quiet_when_finalizing = True  # type: ignore[attr-defined]
    ResultConsumer.cancel_for = cancel_unless_finalizing


@signals.worker_process_init.connect
def _child_started(**_: Any) -> None:
    ensure_logging()  # prefork child: the runner starts lazily on its first task


@signals.worker_shutdown.connect
@signals.worker_process_shutdown.connect
def _dispose(**_: Any) -> None:
    runner.shutdown()
    log.info("worker.runner_stopped")


# -- memory diagnostics ----------------------------------------------------------------------------------

_MARKED: dict[str, int] = {}  # object counts by type when `memory_report(mark=True)` last ran


def memory_report(top: int = 15, mark: bool = False) -> dict[str, Any]:
    """What a worker process holds: RSS, gc object counts by type (the `top` most numerous), live greenlets,
    and every Celery Redis result backend alive with its pending results, subscriptions and drainer; `grown`:
    the `top` types that grew most since the last call with `mark` (which then marks anew)."""
    import collections
    import gc
    from pathlib import Path

    from celery.backends.redis import RedisBackend

    gc.collect()
    objects = gc.get_objects()
    counts = collections.Counter(type(o).__name__ for o in objects)
    backends = [o for o in objects if isinstance(o, RedisBackend)]
    greenlets = sum(1 for o in objects if type(o).__name__ in ("Greenlet", "greenlet"))

    def pending(backend: Any) -> int:
        return sum(len(mapping) for mapping in backend._pending_results)

    def consumer(backend: Any) -> Any:
        return backend.__dict__.get("result_consumer")  # a cached_property: only if ever made

    status = Path("/proc/self/status").read_text()
    rss = next((int(line.split()[1]) // 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    del objects
    grown = collections.Counter({name: n - _MARKED.get(name, 0) for name, n in counts.items()}) if _MARKED else None
    if mark:
        _MARKED.clear()
        _MARKED.update(counts)
    return {"rss_mb": rss, "objects": sum(counts.values()), "greenlets": greenlets,
            "backends": len(backends),
            "pending_results": sum(pending(b) for b in backends),
            "subscribed": sum(len(c.subscribed_to) for b in backends if (c := consumer(b)) is not None),
            "drainers": sum(1 for b in backends if (c := consumer(b)) is not None and c.drainer._g is not None),
            "top": dict(counts.most_common(top)),
            "grown": dict(grown.most_common(top)) if grown is not None else None}


@inspect_command(name="hrsync_memory")
def _memory_command(state: Any, top: int = 15, mark: bool = False, **_: Any) -> dict[str, Any]:
    """`celery inspect hrsync_memory`: the worker's memory_report (bench/soak.py samples it)."""
    return memory_report(int(top), bool(mark))
