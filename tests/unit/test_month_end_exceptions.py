"""Month end's exceptions and decisions (DESIGN §11): which kinds a day raises, and how decisions hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.monthend.decisions import (
    ExceptionRecord,
    ExceptionState,
    accept,
    approve_overtime,
    listing,
    refresh,
    refuse_overtime,
)
from pipelines.monthend.exceptions import ExceptionKind, Severity, findings_of
from shared.config.errors import ConfigError
from tests.unit.month_end_rows import a_day

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("changes", "kinds"), [
    ({"status": "missing_punch", "worked_minutes": 0}, ["missing_punch"]),  # status missing_punch
    ({"status": "absent", "worked_minutes": 0}, ["absent"]),  # status absent
    # absent also under a part absence: half the day was owed
    ({"status": "absent", "worked_minutes": 0, "absence_kind": "sick", "absence_part": "am"}, ["absent"]),
    ({"status": "present", "late_minutes": 12}, ["late"]),  # late_minutes > 0
    ({"status": "present", "early_exit_minutes": 5}, ["early_exit"]),  # early_exit_minutes > 0
    ({"status": "half_day", "worked_minutes": 200}, ["half_day"]),  # status half_day alone
    # half_day that is also an early exit: two exceptions
    ({"status": "half_day", "worked_minutes": 200, "early_exit_minutes": 280}, ["early_exit", "half_day"]),
    ({"status": "present", "overtime_minutes": 45}, ["overtime"]),  # overtime_minutes > 0
    ({"status": "present", "late_minutes": 20, "overtime_minutes": 30}, ["late", "overtime"]),  # both figures > 0
    ({"status": "present"}, []),  # a plain present day shows nothing
    ({"status": "on_leave", "worked_minutes": 0, "absence_kind": "vacation", "absence_part": "full"}, []),  # leave
    ({"status": "holiday", "worked_minutes": 0}, []),  # holiday: nothing owed
    ({"status": "off", "worked_minutes": 0, "shift_code": "off"}, []),  # off day: nothing owed
    ({"status": "holiday", "worked_minutes": 300, "overtime_minutes": 300}, ["overtime"]),  # worked holiday's overtime
    ({"status": "open", "late_minutes": 15}, []),  # an open instance is not closed yet: no exception
])
def test_exception_kinds_per_status(changes: dict[str, object], kinds: list[str]) -> None:
    """Each status and figure raises the kinds §11 lists, keyed (employee_no, work_date, kind)."""
    day = a_day(**changes)
    findings = findings_of(day)
    assert [str(f.kind) for f in findings] == kinds
    assert all(f.key == (day.employee_no, day.work_date, f.kind) for f in findings)


@pytest.mark.parametrize(("kind", "severity"), [
    (ExceptionKind.MISSING_PUNCH, Severity.CRITICAL),  # critical by §11
    (ExceptionKind.ABSENT, Severity.CRITICAL),  # critical by §11
    (ExceptionKind.LATE, Severity.REVIEW),  # review by §11
    (ExceptionKind.EARLY_EXIT, Severity.REVIEW),  # review by §11
    (ExceptionKind.HALF_DAY, Severity.REVIEW),  # review by §11
    (ExceptionKind.OVERTIME, Severity.REVIEW),  # review by §11
])
def test_severity_of_each_kind(kind: ExceptionKind, severity: Severity) -> None:
    """missing_punch and absent are critical, the rest review."""
    assert ExceptionRecord("E1", a_day().work_date, kind, {}, present=True).severity is severity


def _one(records: list[ExceptionRecord], kind: ExceptionKind) -> ExceptionRecord:
    (record,) = [r for r in records if r.kind is kind]
    return record


def test_a_new_exception_is_open_and_an_accepted_one_survives_a_recompute_with_the_same_figures() -> None:
    """Accepting keeps the day as it is; a recompute that shows the same figures keeps it accepted."""
    late = a_day(late_minutes=12)
    (record,) = refresh([], findings_of(late))
    assert record.state is ExceptionState.OPEN
    decided = accept(record, by="hr", at=NOW, reason="bus strike")
    assert decided.state is ExceptionState.ACCEPTED
    (again,) = refresh([decided], findings_of(late))  # recompute: the same 12 minutes
    assert (again.state, again.changed_since_decided, again.decision) == (ExceptionState.ACCEPTED, False,
                                                                           decided.decision)


def test_a_decision_reopens_when_a_recompute_changes_its_figures() -> None:
    """Accepted at 12 late minutes; a late punch makes it 25: open again, changed since decided."""
    (record,) = refresh([], findings_of(a_day(late_minutes=12)))
    decided = accept(record, by="hr", at=NOW, reason="bus strike")
    (changed,) = refresh([decided], findings_of(a_day(late_minutes=25, overtime_minutes=0)))
    assert (changed.state, changed.changed_since_decided) == (ExceptionState.OPEN, True)
    assert changed.decision == decided.decision  # a recompute never erases a decision
    item = listing(changed)
    assert (item["state"], item["changed_since_decided"], item["decided_by"], item["reason"]) == (
        "open", True, "hr", "bus strike")


def test_a_change_in_other_figures_of_the_day_leaves_the_decision_alone() -> None:
    """Late accepted at 12 minutes; only the last punch moves (early exit appears): late stays accepted."""
    (record,) = refresh([], findings_of(a_day(late_minutes=12)))
    decided = accept(record, by="hr", at=NOW, reason="ok")
    records = refresh([decided], findings_of(a_day(late_minutes=12, early_exit_minutes=30)))
    assert _one(records, ExceptionKind.LATE).state is ExceptionState.ACCEPTED
    assert _one(records, ExceptionKind.EARLY_EXIT).state is ExceptionState.OPEN


def test_an_exception_the_recompute_no_longer_shows_is_resolved() -> None:
    """A correction adds the missing punch: missing_punch is resolved, kept with its last figures."""
    (record,) = refresh([], findings_of(a_day(status="missing_punch", worked_minutes=0)))
    (resolved,) = refresh([record], findings_of(a_day()))
    assert (resolved.state, resolved.present, resolved.figures) == (ExceptionState.RESOLVED, False, record.figures)


@pytest.mark.parametrize(("minutes", "approved"), [
    (None, 90),  # approve all: the day's 90 overtime minutes
    (30, 30),  # --minutes 30 ≤ 90
    (90, 90),  # --minutes equal to the overtime is allowed
    (0, 0),  # --minutes 0: approved nothing (still decided)
])
def test_overtime_approval_makes_the_exception_accepted(minutes: int | None, approved: int) -> None:
    """Approving all or part of a day's overtime accepts its overtime exception; payroll pays the approved."""
    (record,) = refresh([], findings_of(a_day(worked_minutes=570, overtime_minutes=90)))
    assert record.approved_overtime_minutes == 0  # 0 until approved
    decided = approve_overtime(record, minutes, by="hr", at=NOW, reason="month end")
    assert (decided.state, decided.approved_overtime_minutes) == (ExceptionState.ACCEPTED, approved)
    assert listing(decided)["overtime_minutes"] == 90
    assert listing(decided)["approved_overtime_minutes"] == approved


def test_overtime_refusal_accepts_the_exception_and_approves_nothing() -> None:
    """Refusing: the overtime exception is accepted, approved_overtime_minutes 0."""
    (record,) = refresh([], findings_of(a_day(worked_minutes=570, overtime_minutes=90)))
    refused = refuse_overtime(record, by="hr", at=NOW, reason="not requested")
    assert (refused.state, refused.approved_overtime_minutes) == (ExceptionState.ACCEPTED, 0)


@pytest.mark.parametrize("minutes", [91, -1])
def test_approving_more_than_the_overtime_is_bad_input(minutes: int) -> None:
    """--minutes above the day's 90 overtime minutes (or below 0) is bad input: exit code 2."""
    (record,) = refresh([], findings_of(a_day(worked_minutes=570, overtime_minutes=90)))
    with pytest.raises(ConfigError, match="--minutes") as raised:
        approve_overtime(record, minutes, by="hr", at=NOW, reason="x")
    assert raised.value.exit_code == 2


def test_approved_overtime_reopens_and_pays_nothing_when_the_overtime_changes() -> None:
    """Approved all of 90; a recompute makes it 120: open, changed since decided, 0 approved until decided again."""
    (record,) = refresh([], findings_of(a_day(worked_minutes=570, overtime_minutes=90)))
    decided = approve_overtime(record, None, by="hr", at=NOW, reason="ok")
    (changed,) = refresh([decided], findings_of(a_day(worked_minutes=600, overtime_minutes=120)))
    assert (changed.state, changed.changed_since_decided, changed.approved_overtime_minutes) == (
        ExceptionState.OPEN, True, 0)


def test_auto_approval_approves_all_of_the_current_overtime() -> None:
    """overtime_approval: auto approves all: 90, then 120 after a recompute; accepted, nothing changed."""
    (record,) = refresh([], findings_of(a_day(worked_minutes=570, overtime_minutes=90)), auto_overtime=True)
    assert (record.state, record.approved_overtime_minutes) == (ExceptionState.ACCEPTED, 90)
    (again,) = refresh([record], findings_of(a_day(worked_minutes=600, overtime_minutes=120)), auto_overtime=True)
    assert (again.state, again.changed_since_decided, again.approved_overtime_minutes) == (
        ExceptionState.ACCEPTED, False, 120)


def test_a_person_s_refusal_beats_auto_approval() -> None:
    """On an auto shift a refusal still pays 0 overtime."""
    (record,) = refresh([], findings_of(a_day(worked_minutes=570, overtime_minutes=90)), auto_overtime=True)
    refused = refuse_overtime(record, by="hr", at=NOW, reason="not requested")
    (again,) = refresh([refused], findings_of(a_day(worked_minutes=570, overtime_minutes=90)), auto_overtime=True)
    assert (again.state, again.approved_overtime_minutes) == (ExceptionState.ACCEPTED, 0)


@pytest.mark.parametrize(("make", "message"), [
    (lambda r: accept(r, by="hr", at=NOW, reason=" "), "reason"),  # a blank reason
    (lambda r: accept(None, by="hr", at=NOW, reason="x"), "no such exception"),  # nothing to accept
    (lambda r: accept(r, by="hr", at=NOW, reason="x"), "overtime approve"),  # overtime is approved/refused
    (lambda r: refuse_overtime(None, by="hr", at=NOW, reason="x"), "no overtime"),  # no overtime that day
])
def test_decisions_refuse_bad_input(make: object, message: str) -> None:
    """Bad decisions are one-line bad-input errors naming what is wrong."""
    (record,) = refresh([], findings_of(a_day(worked_minutes=570, overtime_minutes=90)))
    with pytest.raises(ConfigError, match=message):
        make(record)  # type: ignore[operator]
