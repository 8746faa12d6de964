"""The export stage (DESIGN §11): the files of a closed month's version, and their mail to payroll.

    plan (@plan) -> write (export:YYYY-MM:vN) -> done (@done, sends the version's mail)

Launched by `hrsync.period.closed` {period, version}. The write shard writes the five files into
`HRSYNC_EXPORT_DIR/YYYY-MM/vN/` (byte-identical when written again) and, with `HRSYNC_PAYROLL_EMAIL` set,
queues the version's mail in the outbox (once per version and address); the final step sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.export.version import mailed_files, write_version
from pipelines.mail import send_notifications
from pipelines.mail.outbox import queue_payroll_export
from pipelines.monthend.period import Period
from pipelines.stage import Phase, Scope, Stage, StageResult, WorkKind, plan_of, stage_params
from shared.records.queries import succeeded_outputs
from shared.records.shards import ShardKind

NAME = "export"
EXPORT = WorkKind("exports", prefix="export:")  # one closed version of a month (`export:YYYY-MM:vN`)


@dataclass(frozen=True)
class VersionShard:
    """One closed version of a month to export."""

    key: str
    period: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "period": self.period, "version": self.version}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VersionShard:
        return cls(str(data["key"]), str(data["period"]), int(data["version"]))


async def plan_export(execution_id: str) -> StageResult:
    """The one shard of the version the event names."""
    inputs = await stage_params(execution_id, NAME)
    period, version = str(Period.parse(str(inputs["period"]))), int(inputs["version"])
    shard = VersionShard(EXPORT.of(f"{period}:v{version}"), period, version)
    return plan_of([shard], await succeeded_outputs(execution_id, NAME))


async def write_export(execution_id: str, shard: dict[str, Any]) -> StageResult:
    """Write the version's files; queue its mail when HRSYNC_PAYROLL_EMAIL is set."""
    job = VersionShard.from_json(shard)
    period = Period.parse(job.period)
    written = await write_version(period, job.version, execution_id=execution_id)
    mail = await queue_payroll_export(job.period, job.version, written["directory"],
                                      mailed_files(period, job.version, Path(written["directory"])), execution_id)
    days = int(written["files"]["days.csv"]["rows"])
    return StageResult(rows_in=days, rows_out=len(written["files"]) + 1, output={**written, "mail": mail})


async def finish_export(execution_id: str) -> StageResult:
    """Send the version's mail (a sent one is never sent again) and sum up what was written."""
    outputs = STAGE.outputs_of(await succeeded_outputs(execution_id, NAME), EXPORT)
    mails = [int(out["mail"]) for out in outputs if out.get("mail") is not None]
    sent = (await send_notifications(mails, execution_id)).output if mails else None
    written = [{key: out[key] for key in ("period", "version", "directory")} for out in outputs]
    return StageResult(rows_in=len(outputs), rows_out=len(mails), output={"exports": written, "mail": sent})



def export_inputs(scope: Scope) -> dict[str, Any] | None:
    """The export runs for a closed month's version."""
    if scope.name != "export":
        return None
    return {"period": scope.period, "version": scope.version}


STAGE = Stage(
    NAME, queue="hrsync.export",
    phases=(Phase("plan", ShardKind.PLAN, plan_export, "write", write_export),),
    finish=finish_export,
    shard_kinds=(EXPORT,),
    inputs=export_inputs,
)
