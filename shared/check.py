"""The start-up self-check (DESIGN §9): refuse to start on a configuration that cannot work.

`hrsync check` prints these results; the worker, bridge and scheduler run them before starting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shared.config.errors import ConfigError
from shared.config.redaction import redact_url
from shared.config.settings import Settings
from shared.database.db import engine_for
from shared.events.intake_sources import load_sources
from shared.runtime.runner import get_runner, run_async


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One check: its name, whether it passed, and a one-line detail (never a secret)."""

    name: str
    ok: bool
    detail: str


def check_celery_config(conf: Mapping[str, Any]) -> list[CheckResult]:
    """Static checks of a Celery configuration mapping."""
    backend = str(conf.get("result_backend") or "")
    serializers = {conf.get("task_serializer"), conf.get("result_serializer"),
                   *(conf.get("accept_content") or ()), *(conf.get("result_accept_content") or ())}
    time_limit = conf.get("task_time_limit")
    consumer_timeout = conf.get("hrsync_consumer_timeout")
    return [
        CheckResult("result backend", bool(backend) and not backend.startswith("rpc://"),
                    "chords need a real result backend (redis://), not rpc://" if backend.startswith("rpc://")
                    else redact_url(backend) or "no result backend set"),
        CheckResult("serializer", not any("pickle" in str(s) for s in serializers if s),
                    "JSON only" if "pickle" not in str(serializers) else "pickle is refused: JSON only"),
        CheckResult("acks_late", bool(conf.get("task_acks_late")),
                    "task_acks_late on" if conf.get("task_acks_late") else "task_acks_late must be on"),
        CheckResult(
            "time limit",
            time_limit is not None and (consumer_timeout is None or time_limit < consumer_timeout),
            f"task_time_limit {time_limit}s < consumer_timeout {consumer_timeout}s"
            if time_limit is not None and (consumer_timeout is None or time_limit < consumer_timeout)
            else f"task_time_limit {time_limit}s must be set and below the broker's consumer_timeout "
                 f"{consumer_timeout}s",
        ),
    ]


def check_runner_selector() -> CheckResult:
    """The runner's loop must use the original selector: gevent's would die with LoopExit."""
    selector = type(get_runner().loop._selector).__module__  # type: ignore[attr-defined]
    ok = not selector.startswith("gevent")
    return CheckResult("runner selector", ok, selector if ok else f"patched selector {selector}")


def check_database(name: str, url: str) -> CheckResult:
    """A database answers `SELECT 1` within 10 s."""

    async def ping() -> None:
        engine = await engine_for(url)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return _probe(name, redact_url(url), lambda: run_async(ping(), timeout=10))


def check_broker(url: str) -> CheckResult:
    """The Celery broker accepts a connection within 10 s."""
    from kombu.connection import Connection

    def connect() -> None:
        with Connection(url, connect_timeout=10) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1, timeout=10)

    return _probe("broker", redact_url(url), connect)


def _probe(name: str, shown: str, action: Callable[[], None]) -> CheckResult:
    try:
        action()
    except Exception as exc:
        return CheckResult(name, False, f"{shown} unreachable: {type(exc).__name__}: {str(exc)[:200]}")
    return CheckResult(name, True, f"{shown} reachable")


def check_intake_sources(path: Path | None) -> CheckResult:
    """The intake's sources file is set and valid (DESIGN §12: without one the intake refuses to start)."""
    if path is None:
        return CheckResult("intake sources", False, "HRSYNC_INTAKE_SOURCES_FILE: not set (who may send events?)")
    try:
        sources = load_sources(path)
    except ConfigError as exc:
        return CheckResult("intake sources", False, str(exc))
    return CheckResult("intake sources", True, f"{path}: {', '.join(sorted(sources.by_name))}")


def check_intake_listening(host: str, loopback: bool, tls: bool, behind_proxy: bool) -> CheckResult:
    """Beyond loopback the intake needs TLS (`--certfile`/`--keyfile`) or `--behind-proxy`, like the console."""
    ok = loopback or tls or behind_proxy
    how = "loopback" if loopback else "TLS" if tls else "behind a TLS proxy" if behind_proxy else ""
    return CheckResult("intake listening", ok, f"{host}: {how}" if ok else
                       f"--host {host}: beyond loopback the intake needs TLS (--certfile/--keyfile) or --behind-proxy")


def run_checks(settings: Settings, celery_conf: Mapping[str, Any], connectivity: bool = True) -> list[CheckResult]:
    """Every check of DESIGN §9 (and the intake's sources file when one is set); connectivity checks can be
    skipped for a static run."""
    conf = {**celery_conf, "hrsync_consumer_timeout": settings.consumer_timeout}
    results = [*check_celery_config(conf), check_runner_selector()]
    if settings.intake_sources_file is not None:
        results.append(check_intake_sources(settings.intake_sources_file))
    if connectivity:
        results.append(check_database("app database", settings.app_db_url()))
        results.append(check_broker(str(celery_conf.get("broker_url"))))
    return results
