"""Shard names (`execution_stages.shard`): every kind, named once.

A stage's rows are its control steps (names starting with `@`: the planners, the final step, the claim,
the finish, the failure notice) and its work shards: extract key ranges (`E0001..E0200`) and `absences`,
merge imports (`punches:<window>`), day shards (`<from>..<to>=<department>`, no prefix) and `leave:…`
shards, notify batches (`batch:<ids>`), month exports (`export:<YYYY-MM>:v<N>`). `kind_of(shard)` tells
them apart; planners build names with `ShardKind.of(key)`.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

SHARD_NAME_LIMIT = 64  # characters of `execution_stages.shard`


class ShardKind(StrEnum):
    """The kinds of shard names. A control step's value is its whole name; a prefix kind's value ends in `:`."""

    PLAN = "@plan"  # a stage's planner
    PLAN_DAYS = "@plan-days"  # merge's second planner (the day shards after the imports)
    DONE = "@done"  # a stage's final step
    START = "@start"  # the workflow's claim
    FINISH = "@finish"  # the workflow's finish
    FAILURE = "@failure"  # the failure notice
    PUNCHES = "punches:"  # a merge import window
    LEAVE = "leave:"  # merge: days changed absences recompute, for those employees only
    BATCH = "batch:"  # a notify send batch
    EXPORT = "export:"  # the export of one closed version of a month (`export:YYYY-MM:vN`)
    ABSENCES = "absences"  # the extract shard reading the HRIS absences
    KEY_RANGE = "key-range"  # an extract shard: a range of employee numbers (no prefix)
    DAYS = "days"  # a merge day shard (no prefix)

    @property
    def control(self) -> bool:
        """A planner, a final step or a workflow step (not a shard of the stage's work)."""
        return self.value.startswith("@")

    def of(self, key: str = "") -> str:
        """The shard name of this kind for `key` (clipped to the column; see `shard_name`)."""
        if self in PREFIXES:
            return shard_name(f"{self.value}{key}")
        if self in (ShardKind.KEY_RANGE, ShardKind.DAYS):
            return shard_name(key)
        return self.value


PREFIXES = (ShardKind.PUNCHES, ShardKind.LEAVE, ShardKind.BATCH, ShardKind.EXPORT)
CONTROL = frozenset(k.value for k in ShardKind if k.value.startswith("@"))
PLANS = (ShardKind.PLAN, ShardKind.PLAN_DAYS)


def kind_of(shard: str, plain: ShardKind = ShardKind.DAYS) -> ShardKind:
    """The kind of a recorded shard name; a name with no prefix is of the stage's `plain` kind (extract: key
    ranges, merge: day shards)."""
    if shard in CONTROL or shard == ShardKind.ABSENCES:
        return ShardKind(shard)
    for prefix in PREFIXES:
        if shard.startswith(prefix.value):
            return prefix
    return plain


def is_control(shard: str) -> bool:
    """Whether `shard` names a control step (`@…`) rather than a shard of work."""
    return shard.startswith("@")


def shard_name(text: str, limit: int = SHARD_NAME_LIMIT) -> str:
    """`text` as an `execution_stages.shard` value: kept when short, else clipped with a digest."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 13]}~{hashlib.sha256(text.encode()).hexdigest()[:12]}"
