"""The notify stage: the outbox built for the merged days, sent in batches; and the failure notice.

    plan (@plan, builds the outbox) -> send x K (batch:<ids>) -> done (@done)

The failure notice (`notify_failure`, shard `@failure`, declared as `on_failure`) is not part of the chain:
the base task sends it when a step fails for good.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.mail import (
    TemporaryMailError,
    build_notifications,
    plan_notify_batches,
    queue_sync_failed,
    send_notifications,
)
from pipelines.outputs import MERGED_DAYS, merged_days
from pipelines.stage import Phase, Scope, Stage, StageResult, WorkKind, plan_of, sum_outputs
from shared.records.queries import get_execution, succeeded_outputs
from shared.records.shards import ShardKind
from shared.records.status import ExecutionStatus

NAME = "notify"
BATCH = WorkKind("batches", prefix="batch:")  # a batch of outbox ids to send
NOTIFY_BATCH_SIZE = 50


@dataclass(frozen=True)
class BatchShard:
    """A batch of outbox ids to send."""

    key: str
    ids: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "ids": self.ids}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchShard:
        return cls(str(data["key"]), [int(i) for i in data["ids"]])


def notify_batch_shards(batches: Sequence[Sequence[int]]) -> list[BatchShard]:
    """The send shards of batches of outbox ids (also what a replay's dry run predicts)."""
    return [BatchShard(BATCH.of(f"{ids[0]}-{ids[-1]}:{len(ids)}"), list(ids)) for ids in batches if ids]


def replay_batches(pending_outbox_ids: Sequence[int]) -> tuple[list[str], list[str]]:
    """What a replay's notify will send (sent rows are never pending again), and what it plans later."""
    batches = [list(pending_outbox_ids[i:i + NOTIFY_BATCH_SIZE])
               for i in range(0, len(pending_outbox_ids), NOTIFY_BATCH_SIZE)]
    return [s.key for s in notify_batch_shards(batches)], ["messages the build adds for the merged days"]


async def plan_notify(execution_id: str) -> StageResult:
    """Build the outbox for the merged dates, then batch the pending messages."""
    days = await merged_days(execution_id)
    built: dict[str, Any] = {}
    if days is not None:
        built = (await build_notifications(*days, execution_id)).output
    shards = notify_batch_shards(await plan_notify_batches(None, NOTIFY_BATCH_SIZE))
    return plan_of(shards, {}, built=built)


async def send_batch(execution_id: str, shard: dict[str, Any]) -> StageResult:
    """Send one batch of outbox messages (rows already sent are skipped by their claim; rows this very
    batch claimed in a run that died are taken back)."""
    batch = BatchShard.from_json(shard)
    return await send_notifications(batch.ids, execution_id, holder=f"{execution_id}/{batch.key}")


async def finish_notify(execution_id: str) -> StageResult:
    """Sum up what was sent, parked and left pending.

    The mail this execution built must not stay pending behind it: what is still pending is sent here,
    and a row another sender still holds raises `TemporaryMailError` (the step is retried; when retries run
    out the execution fails rather than succeed with its mail unsent — its replay sends it).
    """
    left = [i for batch in await plan_notify_batches(execution_id) for i in batch]
    if left:
        sent = await send_notifications(left, execution_id, holder=f"{execution_id}/{ShardKind.DONE}")
        held = [i for batch in await plan_notify_batches(execution_id) for i in batch]
        if held:
            raise TemporaryMailError(f"{len(held)} notification(s) this execution built are held by another "
                                     "sender", held, sent.output)
    outputs = await succeeded_outputs(execution_id, NAME)
    totals = sum_outputs(STAGE.outputs_of(outputs, BATCH),
                         ("sent", "failed", "deferred", "skipped_done", "skipped_claimed"))
    if left:
        totals["sent_at_done"] = sent.output.get("sent", 0)
    return StageResult(rows_in=sum(totals.values()), rows_out=totals["sent"], output=totals)


async def notify_failure(execution_id: str) -> StageResult:
    """Queue and send the `sync_failed` notice of a failed execution to operations.

    If the mail cannot go out now, the row stays pending in the outbox and the next notify run sends it.
    """
    execution = await get_execution(execution_id)
    if execution is None or execution["status"] != ExecutionStatus.FAILED:
        return StageResult(output={"queued": False})
    await queue_sync_failed(execution_id, execution["failed_stage"] or "?", execution["error"] or "")
    ids = [i for batch in await plan_notify_batches(execution_id) for i in batch]
    sent = await send_notifications(ids, execution_id)
    return StageResult(rows_in=len(ids), rows_out=sent.rows_out, output={"queued": True, **sent.output})



def notify_inputs(scope: Scope) -> dict[str, Any] | None:
    """Notify runs after every merge, unless the event said `notify: false`; it has no inputs of its own."""
    return {} if scope.notify and scope.name in ("nightly", "attendance", "employee", "punches") else None


STAGE = Stage(
    NAME, queue="hrsync.notify",
    phases=(Phase("plan", ShardKind.PLAN, plan_notify, "send", send_batch),),
    finish=finish_notify,
    shard_kinds=(BATCH,),
    replans=replay_batches,
    reads=(MERGED_DAYS,),
    on_failure=notify_failure,
    inputs=notify_inputs,
    # The plan builds the outbox from the merged days (and corrects a digest whose text changed since it
    # was built): the next execution of the kind must not merge those days while it reads them, or an
    # older digest could be built after a newer one. The sends and the final step read only the rows
    # built (each row claimed by its sender): they run beside the next execution of the kind.
    exclusive_until=ShardKind.PLAN,
)
