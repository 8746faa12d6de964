"""The statuses of executions and of their stage rows (DESIGN §7): `StrEnum`s, so a value is its string."""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    """`executions.status`."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StageStatus(StrEnum):
    """`execution_stages.status` (one row per stage, shard and attempt)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"  # this attempt failed; the next one is queued


OPEN = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)
TERMINAL = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
