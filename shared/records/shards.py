"""Shard names (`execution_stages.shard`): the control steps, and the column's limit.

A stage's rows are its control steps (names starting with `@`: a planner, the final step, the claim, the
finish, the failure notice) and its work shards. The control steps every stage and the workflow share are
`ShardKind`s; a stage's own kinds of work shards (`pipelines.stage.WorkKind`, in `Stage.shard_kinds`) and a
later phase's planner name (`Phase.plan_shard`) are declared in its folder: this module names no stage.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

SHARD_NAME_LIMIT = 64  # characters of `execution_stages.shard`
CONTROL_MARK = "@"  # the first character of a control step's name


class ShardKind(StrEnum):
    """The control steps' shard names (a value is the whole name)."""

    PLAN = "@plan"  # a stage's (first) planner
    DONE = "@done"  # a stage's final step
    START = "@start"  # the workflow's claim
    FINISH = "@finish"  # the workflow's finish
    FAILURE = "@failure"  # the failure notice


def is_control(shard: str) -> bool:
    """Whether `shard` names a control step (`@…`) rather than a shard of work."""
    return shard.startswith(CONTROL_MARK)


def shard_name(text: str, limit: int = SHARD_NAME_LIMIT) -> str:
    """`text` as an `execution_stages.shard` value: kept when short, else clipped with a digest."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 13]}~{hashlib.sha256(text.encode()).hexdigest()[:12]}"
