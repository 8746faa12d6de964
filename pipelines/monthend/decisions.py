"""Decisions on exceptions (DESIGN §11) as pure functions over one stored record per (employee, date, kind).

A record keeps the figures the day showed last, whether the day still shows the exception, and the
decision with the figures it was made on. Its state follows from those: `resolved` when a recompute no
longer shows it; `accepted` while a decision's figures are the day's figures (or, for overtime without a
decision, when the shift approves overtime itself); otherwise `open` — and `changed_since_decided` when
a decision exists but a recompute changed its figures. A stale decision approves nothing until someone
decides again, also on a shift with `overtime_approval: auto`: a person's call is never replaced silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from pipelines.monthend.exceptions import SEVERITY, ExceptionKind, Figures, Finding, Severity
from shared.config.errors import ConfigError

AUTO_REASON = "overtime_approval: auto"


class ExceptionState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    RESOLVED = "resolved"


class Verdict(StrEnum):
    ACCEPT = "accept"  # keep the day as it is (`exceptions accept`)
    APPROVE = "approve"  # overtime: all of it or `--minutes N`
    REFUSE = "refuse"  # overtime: none of it


@dataclass(frozen=True)
class Decision:
    """A person's decision; `approved_minutes` is set for overtime verdicts (0 when refused)."""

    verdict: Verdict
    figures: Figures
    decided_by: str
    decided_at: datetime
    reason: str
    approved_minutes: int | None = None


@dataclass(frozen=True)
class ExceptionRecord:
    """One exception as stored; build it with `refresh` and the deciding functions below."""

    employee_no: str
    work_date: date
    kind: ExceptionKind
    figures: Figures
    present: bool
    decision: Decision | None = None
    auto_approved: bool = False  # the day's shift has `overtime_approval: auto` (kind overtime only)

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.kind]

    @property
    def decision_is_current(self) -> bool:
        return self.decision is not None and self.decision.figures == self.figures

    @property
    def changed_since_decided(self) -> bool:
        return self.present and self.decision is not None and not self.decision_is_current

    @property
    def state(self) -> ExceptionState:
        if not self.present:
            return ExceptionState.RESOLVED
        if self.decision_is_current or (self.decision is None and self.auto_approved):
            return ExceptionState.ACCEPTED
        return ExceptionState.OPEN

    @property
    def approved_overtime_minutes(self) -> int | None:
        """What payroll pays of this overtime (None for other kinds): 0 until approved."""
        if self.kind is not ExceptionKind.OVERTIME:
            return None
        if not self.present:
            return 0
        if self.decision is not None:
            return (self.decision.approved_minutes or 0) if self.decision_is_current else 0
        return _minutes(self.figures) if self.auto_approved else 0


def _minutes(figures: Figures) -> int:
    value = figures.get("overtime_minutes")
    if not isinstance(value, int):
        raise TypeError(f"overtime figures without overtime_minutes: {figures!r}")
    return value


def refresh(previous: Iterable[ExceptionRecord], findings: Iterable[Finding], *,
            auto_overtime: bool = False) -> list[ExceptionRecord]:
    """One day's records after a recompute: `findings` are what the day shows now, `previous` what was stored.

    Decisions are kept (a recompute never erases one); a previous exception the day no longer shows is
    kept as resolved with the figures last seen. `auto_overtime`: the day's shift approves overtime itself.
    """
    before = {record.kind: record for record in previous}
    now = {finding.kind: finding for finding in findings}
    records = []
    for kind in ExceptionKind:
        if kind in now:
            finding, old = now[kind], before.get(kind)
            records.append(ExceptionRecord(
                finding.employee_no, finding.work_date, kind, dict(finding.figures), present=True,
                decision=old.decision if old else None,
                auto_approved=auto_overtime and kind is ExceptionKind.OVERTIME))
        elif kind in before:
            records.append(replace(before[kind], present=False))
    return records


def _decidable(record: ExceptionRecord | None, what: str, reason: str) -> ExceptionRecord:
    if not reason.strip():
        raise ConfigError("reason: required")
    if record is None or not record.present:
        raise ConfigError(f"no {what} to decide: the day shows none now")
    return record


def accept(record: ExceptionRecord | None, *, by: str, at: datetime, reason: str) -> ExceptionRecord:
    """Keep the day as it is; overtime is decided with `approve_overtime`/`refuse_overtime` instead."""
    record = _decidable(record, "such exception", reason)
    if record.kind is ExceptionKind.OVERTIME:
        raise ConfigError("kind: overtime is decided with `overtime approve` or `overtime refuse`")
    return replace(record, decision=Decision(Verdict.ACCEPT, dict(record.figures), by, at, reason))


def approve_overtime(record: ExceptionRecord | None, minutes: int | None, *, by: str, at: datetime,
                     reason: str) -> ExceptionRecord:
    """Approve all of the day's overtime (`minutes` None) or `minutes` of it (0 ≤ minutes ≤ overtime)."""
    record = _decidable(record, "overtime", reason)
    overtime = _minutes(record.figures)
    if minutes is not None and not 0 <= minutes <= overtime:
        raise ConfigError(f"--minutes: {minutes} is not between 0 and the day's overtime_minutes {overtime}")
    approved = overtime if minutes is None else minutes
    return replace(record, decision=Decision(Verdict.APPROVE, dict(record.figures), by, at, reason, approved))


def refuse_overtime(record: ExceptionRecord | None, *, by: str, at: datetime, reason: str) -> ExceptionRecord:
    """Refuse the day's overtime: none of it is paid, neither as overtime nor as regular time."""
    record = _decidable(record, "overtime", reason)
    return replace(record, decision=Decision(Verdict.REFUSE, dict(record.figures), by, at, reason, 0))


def listing(record: ExceptionRecord) -> dict[str, object]:
    """The record as `exceptions --json` lists it (DESIGN §11)."""
    decision = record.decision
    auto = decision is None and record.auto_approved and record.present
    item: dict[str, object] = {
        "employee_no": record.employee_no,
        "work_date": record.work_date.isoformat(),
        "kind": str(record.kind),
        "severity": str(record.severity),
        "state": str(record.state),
        "changed_since_decided": record.changed_since_decided,
        "decided_by": decision.decided_by if decision else None,
        "decided_at": decision.decided_at.isoformat() if decision else None,
        "reason": decision.reason if decision else AUTO_REASON if auto else None,
    }
    if record.kind is ExceptionKind.OVERTIME:
        item["overtime_minutes"] = _minutes(record.figures)
        item["approved_overtime_minutes"] = record.approved_overtime_minutes
    return item
