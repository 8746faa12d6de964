"""The Celery app (`celery -A workers.app worker -P gevent`), configured as DESIGN §8 requires.

JSON only, late acks with idempotent tasks, prefetch 1, publish confirms, no broker heartbeat on
gevent (it throttled the loop and hung shutdowns), quorum queues on a topic exchange (native delayed
delivery for retries), one queue per stage, time limits below RabbitMQ's consumer timeout.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery._state import task_join_will_block
from celery.backends.redis import RedisBackend
from kombu.entity import Exchange, Queue

from shared.config.settings import Settings, get_settings
from workers.queues import WORKFLOW_QUEUE, stage_queues

TASK_EXCHANGE = "hrsync.tasks"


class WorkerRedisBackend(RedisBackend):  # type: ignore[misc]  # Celery's backends are untyped
    """Celery's Redis result backend, minus the waiting where nothing waits.

    Building a chord builds `GroupResult`s (the header's, in `apply_chord` and in the header group's
    `apply_async`), and a result set registers each member with the backend as a *pending result*: it
    subscribes the member's Redis channel and starts the backend's result drainer (a greenlet on gevent
    that loops until the process ends). Inside a worker nothing ever waits on those results (a chord's
    body is fired by the counter in Redis; `workers.lifecycle` already says that a join would block, so
    sending a task subscribes nothing either), and on the gevent pool every task greenlet had a backend
    of its own: each chord left a backend, its drainer greenlet and two Redis connections behind for the
    life of the worker (~0.12 MB per execution; docs/benchmarks.md, Soak). So while a join would block
    (in a worker), no result is registered: no subscription, no drainer. Elsewhere (the CLI, a test
    waiting on the probe) it behaves as Celery's.
    """

    def add_pending_result(self, result: Any, weak: bool = False, start_drainer: bool = True) -> Any:
        if task_join_will_block():
            return result
        return super().add_pending_result(result, weak=weak, start_drainer=start_drainer)

    def add_pending_results(self, results: Any, weak: bool = False) -> Any:
        if task_join_will_block():
            return list(results)
        return super().add_pending_results(results, weak=weak)


RESULT_BACKENDS = {scheme: f"{__name__}:WorkerRedisBackend" for scheme in ("redis", "rediss")}


def _is_amqp(url: str) -> bool:
    return url.startswith(("amqp://", "amqps://", "pyamqp://"))


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings for `settings`; also what `hrsync check` inspects."""
    broker = settings.broker()
    amqp = _is_amqp(broker)
    exchange = Exchange(TASK_EXCHANGE, type="topic", durable=True)
    queue_args = {"x-queue-type": "quorum"} if amqp else None
    queues = [Queue(name, exchange, routing_key=name, durable=True, queue_arguments=queue_args)
              for name in stage_queues()]
    config: dict[str, Any] = {
        "broker_url": broker,
        "result_backend": settings.backend(),
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": max(settings.task_time_limit - 30, 5),
        "task_queues": queues,
        "task_default_queue": WORKFLOW_QUEUE,
        "task_default_exchange": TASK_EXCHANGE,
        "task_default_exchange_type": "topic",
        "task_default_routing_key": WORKFLOW_QUEUE,
        "task_create_missing_queues": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "result_expires": 24 * 3600,  # abandoned chord keys go
        # One result backend per process, not one per thread: on gevent a thread is a greenlet, and each
        # task greenlet that stored a chord header's result made its own backend and Redis connection pool.
        "result_backend_thread_safe": True,
        "override_backends": RESULT_BACKENDS,  # redis:// → WorkerRedisBackend (above)
        "result_extended": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # Lines printed from the runner's loop thread must not go through Celery's stdout proxy (its
        # gevent locks lost greenlet wake-ups: tasks hung after their stage finished). See LineWriter.
        "worker_redirect_stdouts": False,
        "timezone": "UTC",
        "enable_utc": True,
    }
    if amqp:
        config.update(
            broker_transport_options={"confirm_publish": True},
            broker_heartbeat=0,  # DESIGN §8: heartbeats throttled gevent workers; TCP keepalive instead
            task_default_queue_type="quorum",
            task_create_missing_queue_type="quorum",
        )
    else:
        config.update(_embedded_config(settings))
    return config


def _embedded_config(settings: Settings) -> dict[str, Any]:
    """The demo's transport: kombu's `filesystem://`, one folder of message files under HRSYNC_HOME.

    Every folder is set explicitly (kombu's defaults are relative to the working directory: exchange
    tables would land in `./control`), and the consumer polls every 100 ms (1 s by default: each hop
    of the chain would wait for it). Chords on a database result backend poll
    `celery.chord_unlock`; it retries every 250 ms instead of every second.
    """
    folder = settings.home / "broker"
    for sub in ("in", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {"data_folder_in": str(folder / "in"), "data_folder_out": str(folder / "in"),
               "processed_folder": str(folder / "processed"), "store_processed": False,
               "control_folder": str(folder / "control"), "polling_interval": 0.1}
    return {"broker_transport_options": options, "result_chord_retry_interval": 0.25}


def create_app(settings: Settings | None = None) -> Celery:
    """A configured Celery app with hrsync's tasks and lifecycle hooks registered."""
    celery = Celery("hrsync")
    # config_from_object, not conf.update: Celery's loader reads `override_backends` only from there.
    celery.config_from_object(celery_config(settings or get_settings()))
    celery.conf.include = ["workers.tasks"]
    return celery


app = create_app()

import workers.lifecycle  # noqa: E402  - registers the worker start/stop signal handlers
import workers.watchdog  # noqa: E402, F401  - starts the watchdogs in every worker process
