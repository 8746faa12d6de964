"""The Celery app (`celery -A workers.app worker -P gevent`), configured as DESIGN §8 requires.

JSON only, late acks with idempotent tasks, prefetch 1, publish confirms, no broker heartbeat on
gevent (it throttled the loop and hung shutdowns), quorum queues on a topic exchange (native delayed
delivery for retries), one queue per stage, time limits below RabbitMQ's consumer timeout.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from shared.config.settings import Settings, get_settings
from workers.queues import WORKFLOW_QUEUE, stage_queues

TASK_EXCHANGE = "hrsync.tasks"


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
    celery.conf.update(celery_config(settings or get_settings()))
    celery.conf.include = ["workers.tasks"]
    return celery


app = create_app()

import workers.lifecycle  # noqa: E402  - registers the worker start/stop signal handlers
import workers.watchdog  # noqa: E402, F401  - starts the watchdogs in every worker process
