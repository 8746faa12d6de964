"""Prometheus metrics of the worker and the bridge, in one place (`HRSYNC_METRICS_PORT`, off by default).

- `hrsync_stage_duration_seconds{stage,status}` (histogram) and `hrsync_stage_runs_total{stage,status}`:
  one observation per stage task run (status succeeded / failed / retrying / skipped);
- `hrsync_events_consumed_total{type,outcome}` (outcome launched / duplicate) and
  `hrsync_events_dead_lettered_total`: the bridge;
- `hrsync_executions_in_flight{status}` (pending / running) and `hrsync_watchdog_alerts{alert}` (open
  alerts: pending_wait / stuck_running / nightly_deadline): read from the app database at scrape time, so
  every process reports the same truth.

Metrics live in the process's default registry. A prefork worker's children each have their own, and the
endpoint (served by the main process) does not see them: use the gevent pool (the default), or run
Prometheus's multiprocess mode yourself.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import structlog
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.observability.tracing import StageSpan
from shared.records.status import OPEN

log = structlog.get_logger(__name__)

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1500)
IN_FLIGHT_TIMEOUT = 5.0  # seconds a scrape waits for the database

STAGE_SECONDS = Histogram("hrsync_stage_duration_seconds", "Duration of stage task runs", ["stage", "status"],
                          buckets=STAGE_BUCKETS)
STAGE_RUNS = Counter("hrsync_stage_runs", "Stage task runs by outcome", ["stage", "status"])
EVENTS_CONSUMED = Counter("hrsync_events_consumed", "Valid events handled by the bridge", ["type", "outcome"])
EVENTS_DEAD = Counter("hrsync_events_dead_lettered", "Invalid events the bridge dead-lettered")

WATCHDOG_ALERTS = ("pending_wait", "stuck_running", "nightly_deadline")  # `pipelines.watchdogs.ALERTS`
_serving: list[int] = []  # the port this process serves on, once started


@contextmanager
def stage_metrics(span: StageSpan) -> Iterator[None]:
    """Observe the stage run of `span` when the block ends (a failure counts as `failed`)."""
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        status = "failed" if failed and span.status == "succeeded" else span.status
        STAGE_SECONDS.labels(span.stage, status).observe(span.duration_ms / 1000)
        STAGE_RUNS.labels(span.stage, status).inc()


def event_consumed(event_type: str, outcome: str) -> None:
    """The bridge handled a valid event: `launched` a workflow, or recognised a `duplicate`."""
    EVENTS_CONSUMED.labels(event_type, outcome).inc()


def event_dead_lettered() -> None:
    """The bridge sent an invalid event to the dead-letter queue."""
    EVENTS_DEAD.inc()


class InFlightCollector(Collector):
    """`hrsync_executions_in_flight{status}` and `hrsync_watchdog_alerts{alert}` from the app database, at
    scrape time."""

    def collect(self) -> Iterator[Any]:
        from shared.records.queries import count_in_flight, count_open_alerts

        yield from _gauge("hrsync_executions_in_flight", "Executions pending or running", "status", OPEN,
                          count_in_flight)
        yield from _gauge("hrsync_watchdog_alerts", "Open watchdog alerts (executions --late)", "alert",
                          WATCHDOG_ALERTS, count_open_alerts)


def _gauge(name: str, documentation: str, label: str, values: Sequence[str],
           read: Callable[[], Coroutine[Any, Any, dict[str, int]]]) -> Iterator[Any]:
    """One gauge family with a sample per value of `label` (0 when `read` has none); nothing when the
    database cannot answer in time (a scrape must not fail because the database is away)."""
    from shared.runtime.runner import run_async

    try:
        counts = run_async(read(), timeout=IN_FLIGHT_TIMEOUT)
    except Exception as exc:
        log.warning("metrics.read_failed", metric=name, error=f"{type(exc).__name__}: {exc}"[:300])
        return
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value in values:
        family.add_metric([value], counts.get(value, 0))
    yield family


def serve_metrics(port: int | None, process: str) -> bool:
    """Serve /metrics on `port` (all interfaces) once per process; False when `port` is None (off)."""
    if port is None:
        return False
    if not _serving:
        REGISTRY.register(InFlightCollector())
        start_http_server(port)
        _serving.append(port)
        log.info("metrics.serving", port=port, process=process)
    return True
