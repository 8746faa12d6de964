"""Closing a period (DESIGN §11) as pure checks: when a close is refused, and which version it makes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pipelines.monthend.exceptions import SEVERITY, ExceptionKind, Severity
from pipelines.monthend.period import Period
from shared.config.errors import ConfigError, HrsyncError


class PeriodState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CloseRefused(HrsyncError):
    """A close that cannot happen as asked (exit 1); it changes nothing and is not audited."""

    exit_code = 1


@dataclass(frozen=True)
class PeriodVersion:
    """One close of a period (a `periods` row); `state` is `open` once that version was reopened."""

    period: Period
    version: int
    state: PeriodState
    closed_by: str
    closed_at: datetime
    reason: str
    forced: bool = False


def period_state(versions: Sequence[PeriodVersion]) -> PeriodState:
    """The period's state: its latest version's, `open` when it was never closed."""
    return max(versions, key=lambda v: v.version).state if versions else PeriodState.OPEN


def next_version(versions: Sequence[PeriodVersion]) -> int:
    """The version a close makes now: 1, then one more than the latest (a reopen and close again: N+1)."""
    return max((v.version for v in versions), default=0) + 1


def check_close(period: Period, versions: Sequence[PeriodVersion], *, open_exceptions: Mapping[ExceptionKind, int],
                days_not_closed: int, force: bool, reason: str) -> int:
    """The version a close of `period` makes, or why it cannot: bad input (exit 2) or refused (exit 1).

    `open_exceptions`: open exceptions of the month by kind (only the critical ones can refuse);
    `days_not_closed`: the month's `open` instances, which even `force` does not pass.
    """
    if not reason.strip():
        raise ConfigError("reason: required")
    if period_state(versions) is PeriodState.CLOSED:
        raise CloseRefused(f"period {period} is closed already (version {next_version(versions) - 1})")
    if days_not_closed:
        raise CloseRefused(f"period {period} has {days_not_closed} days not closed yet: it cannot be closed")
    critical = [(kind, open_exceptions[kind]) for kind in ExceptionKind
                if SEVERITY[kind] is Severity.CRITICAL and open_exceptions.get(kind)]
    if critical and not force:
        counts = ", ".join(f"{kind} {count}" for kind, count in critical)
        raise CloseRefused(f"period {period} has open critical exceptions ({counts}): decide them, "
                           "or close with --force and a reason")
    return next_version(versions)
