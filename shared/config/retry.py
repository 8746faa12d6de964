"""What is worth another try, and how long to wait before it: the one policy of every retry site.

- `is_transient(exc)`: the one notion of "transient" — lost or refused connections (database, broker),
  deadlocks, lock waits, timeouts, and any `TransientError` a stage raises (e.g. a mail server's 4xx);
- `Backoff`: the one formula, exponential with full jitter (`uniform(0, min(cap, base·2ⁿ))`), used by the
  stage task, the bridge, the scheduler's publish, the event publisher, the mail sender and
  `retry_transient` (tenacity inside stages, for one transaction at a time).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import pika.exceptions
import structlog
from sqlalchemy.exc import DBAPIError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from shared.config.deadlines import SourceTimeout

P = ParamSpec("P")
T = TypeVar("T")
log = structlog.get_logger(__name__)

# MariaDB/MySQL error codes worth another try: lock wait timeout, deadlock, too many connections,
# connection lost/gone/refused, query interrupted by a killed connection, server shutdown.
MYSQL_TRANSIENT = frozenset({1205, 1213, 1040, 2002, 2003, 2006, 2013, 2055, 1053, 1927, 4031})
# SQLSTATE classes of ODBC drivers: connection exceptions, serialization failure, timeout expired.
SQLSTATE_TRANSIENT_PREFIXES = ("08", "40001", "40P01", "HYT00", "HYT01")


# The broker went away or closed the channel; a blocked connection (a resource alarm) is not among them:
# the caller hears of it at once.
BROKER_TRANSIENT = (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosed,
                    pika.exceptions.ConnectionClosed, pika.exceptions.StreamLostError)


class TransientError(Exception):
    """Raised for a temporary condition outside the database (e.g. a mail server's 4xx): retried with backoff."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: before retry n (0 first) wait `uniform(floor·c, c)` seconds,
    c = min(`cap`, `base`·2ⁿ). `floor` is 0 (full jitter) everywhere except where a wait near zero is
    pointless (a mail server that just answered 4xx)."""

    base: float
    cap: float
    floor: float = 0.0

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry `retry` (the exponential part, capped)."""
        return min(self.cap, self.base * 2.0 ** min(retry, 64))

    def delay(self, retry: int) -> float:
        """A wait before retry `retry` (0 is the first retry)."""
        ceiling = self.ceiling(retry)
        return random.uniform(self.floor * ceiling, ceiling)

    def tenacity_wait(self) -> Callable[[RetryCallState], float]:
        """This backoff as tenacity's `wait=` (attempt 1 failed → retry 0)."""
        return lambda state: self.delay(state.attempt_number - 1)


IN_STAGE = Backoff(base=0.05, cap=2.0)  # tenacity inside a stage: one transaction again, quickly


def _error_code(exc: BaseException) -> Any:
    args = getattr(exc, "args", ())
    return args[0] if args else None


def is_transient(exc: BaseException) -> bool:
    """True for errors that another attempt may not meet: lost connections, deadlocks, lock waits, a broker
    away, timeouts, `TransientError`."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, pika.exceptions.ConnectionBlockedTimeout):
        return False
    if isinstance(exc, BROKER_TRANSIENT):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return is_transient(exc.orig) if exc.orig is not None else False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    code = _error_code(exc)
    if isinstance(code, int) and code in MYSQL_TRANSIENT:
        return True
    if isinstance(code, str) and code.startswith(SQLSTATE_TRANSIENT_PREFIXES):
        return True  # pyodbc puts the SQLSTATE first
    return "database is locked" in str(exc)  # SQLite's busy timeout ran out


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("db.retry", attempt=state.attempt_number, error_type=type(exc).__name__, error=str(exc)[:200])


def _quick_retry(exc: BaseException) -> bool:
    # A source that did not answer for HRSYNC_SOURCE_TIMEOUT is left to the task's slower retries.
    return is_transient(exc) and not isinstance(exc, SourceTimeout)


def transient_retrying(attempts: int = 5) -> AsyncRetrying:
    """The policy: up to `attempts` tries, exponential backoff with full jitter, 50 ms base, 2 s cap.

    A `SourceTimeout` is not retried here (it is by the stage task, with backoff)."""
    return AsyncRetrying(
        retry=retry_if_exception(_quick_retry),
        stop=stop_after_attempt(attempts),
        wait=IN_STAGE.tenacity_wait(),
        before_sleep=_log_retry,
        reraise=True,
    )


def retry_transient(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate an async function whose whole body is safe to run again (one transaction)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        async for attempt in transient_retrying():
            with attempt:
                return await fn(*args, **kwargs)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    return wrapper
