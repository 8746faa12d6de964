"""`hrsync demo`: hrsync end to end on embedded defaults, with no services to install.

For now it proves the foundation: migrates the embedded app database, runs the probe stage from
overlapping greenlets through the shared runner with execution tracking, and prints the records.
"""

from __future__ import annotations

import time

import gevent
from rich.console import Console
from rich.table import Table

from pipelines.probe import probe_app_db
from shared import migrations, tracking
from shared.redaction import redact_url
from shared.runner import run_async, shutdown
from shared.settings import get_settings
from shared.tracing import stage_span


def _probe_shard(execution_id: str, shard: str) -> None:
    with stage_span("probe", execution_id=execution_id, shard=shard) as span:

        async def tracked() -> None:
            await tracking.record_stage_start(execution_id, "probe", shard, 1, None)
            result = await probe_app_db()
            span.rows_in = result.rows_in
            await tracking.record_stage_end(execution_id, "probe", shard, 1, status="succeeded",
                                            duration_ms=span.duration_ms, result=result)

        run_async(tracked())


def run_demo(out: Console) -> None:
    """Run the demo and print what it did."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    out.print(f"[bold]hrsync demo[/] — files in {settings.home}")
    out.print(f"app database: {redact_url(settings.app_db_url())}")
    started = time.perf_counter()
    run_async(migrations.upgrade())
    execution_id = run_async(tracking.create_execution("probe", "manual", {"shards": 20}))
    gevent.joinall([gevent.spawn(_probe_shard, execution_id, str(i)) for i in range(20)], raise_error=True)
    run_async(tracking.set_execution_status(execution_id, "succeeded", summary={"shards": 20}))
    stages = run_async(tracking.get_stages(execution_id))
    execution = run_async(tracking.get_execution(execution_id))
    shutdown()

    table = Table("stage", "shard", "status", "ms", "rows in", title=f"execution {execution_id}")
    for stage in stages[:5]:
        table.add_row(stage["stage"], stage["shard"], stage["status"], str(stage["duration_ms"]),
                      str(stage["rows_in"]))
    out.print(table)
    status = execution["status"] if execution else "?"
    out.print(f"{len(stages)} stage records, execution {status}, {time.perf_counter() - started:.1f}s "
              "(the full pipeline demo arrives with the workflow issues)")
