"""structlog, configured once: JSON lines on stdout in production, a console view on a terminal.

Context (`execution_id`, `stage`, `shard`, `task_id`, `attempt`, `event_id`) travels in contextvars, so
it reaches every line, also lines logged by coroutines on the runner's loop (`run_async` copies the
caller's context). Secrets are masked by a processor before any renderer sees them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

from shared.config.redaction import redact_value
from shared.runtime import realthreads

TRACE_KEYS = ("execution_id", "stage", "shard", "task_id", "attempt", "event_id")

_configured = False


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: mask passwords by key name and credentials inside strings (URLs, ODBC strings)."""
    return {key: redact_value(key, value) for key, value in event_dict.items()}


def configure_logging(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Configure structlog for this process (idempotent unless `fmt`/`level` change is forced)."""
    global _configured
    out = stream or sys.__stdout__ or sys.stdout  # the real stdout, not a worker's redirect proxy
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if console
        else structlog.processors.JSONRenderer(serializer=lambda obj, **kw: json.dumps(obj, default=str))
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=lambda *_: LineWriter(out),
        cache_logger_on_first_use=False,
    )
    _configured = True


def ensure_logging() -> None:
    """Configure from settings if nothing configured logging yet."""
    if not _configured:
        from shared.config.settings import get_settings

        settings = get_settings()
        configure_logging(settings.log_format, settings.log_level)


class LineWriter:
    """structlog's output: one write per line under an *original* (real-thread) lock.

    Lines come from greenlets and from the runner's loop thread. structlog's own PrintLogger and
    Celery's stdout proxy guard writes with `threading` locks, which are gevent locks in a worker: a
    real thread taking one lost the wake-up of waiting greenlets (tasks hung after their stage had
    finished). An original lock is held for one `write`, never across a greenlet switch.
    """

    _locks: dict[int, Any] = {}

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = self._locks.setdefault(id(stream), realthreads.allocate_lock())

    def msg(self, message: str) -> None:
        with self._lock:
            self._stream.write(message + "\n")
            self._stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def real_locks_for_logging() -> None:
    """Give the stdlib logging module and its handlers original locks (see `LineWriter`)."""
    logging._lock = realthreads.RLock()  # type: ignore[attr-defined]
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            handler.lock = realthreads.RLock()


@contextmanager
def bound(**context: Any) -> Iterator[None]:
    """Bind trace context for the block (None values are left out)."""
    with structlog.contextvars.bound_contextvars(**{k: v for k, v in context.items() if v is not None}):
        yield


@dataclass
class StageSpan:
    """What a finished stage reports on its canonical line; the caller fills rows and status."""

    stage: str
    status: str = "succeeded"
    rows_in: int | None = None
    rows_out: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    started: float = field(default_factory=time.monotonic)
    extra: MutableMapping[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)


@contextmanager
def stage_span(stage: str, **context: Any) -> Iterator[StageSpan]:
    """Bind `stage` and `context`, and log one canonical ``stage.finished`` line when the block ends."""
    span = StageSpan(stage)
    log = structlog.get_logger("hrsync.stage")
    with bound(stage=stage, **context):
        try:
            yield span
        except BaseException as exc:
            span.status = "failed" if span.status == "succeeded" else span.status
            span.error_type = span.error_type or type(exc).__name__
            span.error_message = span.error_message or str(exc)[:500]
            raise
        finally:
            method = log.info if span.status == "succeeded" else log.warning
            method(
                "stage.finished",
                status=span.status,
                duration_ms=span.duration_ms,
                rows_in=span.rows_in,
                rows_out=span.rows_out,
                error_type=span.error_type,
                error=span.error_message,
                **span.extra,
            )
