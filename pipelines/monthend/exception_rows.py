"""`ExceptionRecord` ↔ an `attendance_exceptions` row (shared/database/tables.py), without I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.monthend.decisions import Decision, ExceptionRecord, ExceptionState, Verdict
from pipelines.monthend.exceptions import ExceptionKind


def exception_row(record: ExceptionRecord) -> dict[str, Any]:
    """The columns a record sets; `first_seen_at`, `updated_at` and `execution_id` are the writer's."""
    decision = record.decision
    return {
        "employee_no": record.employee_no,
        "work_date": record.work_date,
        "kind": str(record.kind),
        "severity": str(record.severity),
        "state": str(record.state),
        "changed_since_decided": record.changed_since_decided,
        "figures": dict(record.figures),
        "auto_approved": record.auto_approved,
        "approved_overtime_minutes": record.approved_overtime_minutes,
        "verdict": str(decision.verdict) if decision else None,
        "decided_minutes": decision.approved_minutes if decision else None,
        "decided_figures": dict(decision.figures) if decision else None,
        "decided_by": decision.decided_by if decision else None,
        "decided_at": decision.decided_at if decision else None,
        "reason": decision.reason if decision else None,
    }


def exception_record(row: Mapping[str, Any]) -> ExceptionRecord:
    """The record a stored row holds (its state columns are derived again, not read)."""
    decision = None
    if row["verdict"] is not None:
        decision = Decision(Verdict(row["verdict"]), dict(row["decided_figures"]), row["decided_by"],
                            row["decided_at"], row["reason"], row["decided_minutes"])
    return ExceptionRecord(
        row["employee_no"], row["work_date"], ExceptionKind(row["kind"]), dict(row["figures"]),
        present=row["state"] != ExceptionState.RESOLVED, decision=decision, auto_approved=bool(row["auto_approved"]),
    )
