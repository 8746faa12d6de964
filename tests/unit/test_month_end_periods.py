"""Closing a period (DESIGN §11): refusals with counts per kind, forcing, versions after a reopen."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.monthend.exceptions import ExceptionKind
from pipelines.monthend.period import Period
from pipelines.monthend.periods import CloseRefused, PeriodState, PeriodVersion, check_close, period_state
from shared.config.errors import ConfigError

NOVEMBER = Period(2026, 11)
AT = datetime(2026, 12, 1, 9, tzinfo=UTC)
CLOSED_1 = PeriodVersion(NOVEMBER, 1, PeriodState.CLOSED, "hr", AT, "month end")
REOPENED_1 = PeriodVersion(NOVEMBER, 1, PeriodState.OPEN, "hr", AT, "month end")
OPEN = {ExceptionKind.ABSENT: 3, ExceptionKind.MISSING_PUNCH: 2, ExceptionKind.LATE: 7}


def test_open_critical_exceptions_refuse_the_close_with_counts_per_kind() -> None:
    """missing_punch 2 and absent 3 are critical (kind order); late 7 is review and not named; exit 1."""
    with pytest.raises(CloseRefused, match=r"open critical exceptions \(missing_punch 2, absent 3\)") as refused:
        check_close(NOVEMBER, [], open_exceptions=OPEN, days_not_closed=0, force=False, reason="month end")
    assert refused.value.exit_code == 1


@pytest.mark.parametrize(("versions", "open_exceptions", "force", "version"), [
    ([], {ExceptionKind.LATE: 7, ExceptionKind.OVERTIME: 2}, False, 1),  # only review exceptions open: closes, v1
    ([], OPEN, True, 1),  # critical ones open, forced with a reason: v1
    ([REOPENED_1], {}, False, 2),  # reopened after version 1: closing again makes version 2
])
def test_a_close_makes_the_next_version(versions: list[PeriodVersion], open_exceptions: dict[ExceptionKind, int],
                                        force: bool, version: int) -> None:
    """A close that may happen returns the version it makes."""
    assert check_close(NOVEMBER, versions, open_exceptions=open_exceptions, days_not_closed=0, force=force,
                       reason="month end") == version


@pytest.mark.parametrize(("versions", "days_not_closed", "reason", "error", "message"), [
    ([], 4, "x", CloseRefused, "4 days not closed"),  # open instances: not even --force passes
    ([CLOSED_1], 0, "x", CloseRefused, "closed already"),  # version 1 is still closed
    ([], 0, "  ", ConfigError, "reason"),  # a blank reason is bad input
])
def test_closes_that_cannot_happen(versions: list[PeriodVersion], days_not_closed: int, reason: str,
                                   error: type[Exception], message: str) -> None:
    """Refused (exit 1) or bad input (exit 2), forced or not."""
    with pytest.raises(error, match=message):
        check_close(NOVEMBER, versions, open_exceptions={}, days_not_closed=days_not_closed, force=True,
                    reason=reason)


@pytest.mark.parametrize(("versions", "state"), [
    ([], PeriodState.OPEN),  # never closed
    ([CLOSED_1], PeriodState.CLOSED),  # closed as version 1
    ([REOPENED_1], PeriodState.OPEN),  # reopened
    ([REOPENED_1, PeriodVersion(NOVEMBER, 2, PeriodState.CLOSED, "hr", AT, "again")], PeriodState.CLOSED),  # v2
])
def test_a_period_s_state_is_its_latest_version_s(versions: list[PeriodVersion], state: PeriodState) -> None:
    """period show's state: the latest version's, open when never closed."""
    assert period_state(versions) is state


@pytest.mark.parametrize(("text", "ok"), [
    ("2026-11", True), ("2026-13", False), ("2026-1", False), ("1899-12", False), ("2100-12", True), ("x", False),
])
def test_period_names(text: str, ok: bool) -> None:
    """YYYY-MM, months 01-12, years 1900-2100 (DESIGN §5's bounds); anything else is bad input."""
    if ok:
        assert str(Period.parse(text)) == text
    else:
        with pytest.raises(ConfigError, match="period"):
            Period.parse(text)
