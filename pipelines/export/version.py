"""Writing one closed version of a month (DESIGN §11) into `HRSYNC_EXPORT_DIR/YYYY-MM/vN/` or a folder given.

The same version writes the same bytes however often it is written (a replay, `hrsync export`): the rows
are the frozen days, the manifest names the execution that first exported the version
(`periods.export_execution_id`), the workbook's creation date is the close's time. The day rows are read
on the runner's loop and written by a real thread (file I/O off the loop), a few batches apart, so a month
of any size is written with flat memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select, update

from pipelines.export.manifest import MANIFEST, FileEntry
from pipelines.export.rows import ExportDay, ExportJob
from pipelines.export.source import absence_kinds, stream_days
from pipelines.export.write import PAYROLL, export_names, workbook_name, write_month_export
from pipelines.monthend.period import Period
from shared.config.errors import HrsyncError
from shared.config.retry import retry_transient
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import periods
from shared.runtime.realthreads import SimpleQueue

T = TypeVar("T")
QUEUED_BATCHES = 4  # batches read ahead of the writer
_END = object()


class ExportMissing(HrsyncError):
    """The version asked for was never closed, or the period is not closed (exit 1)."""


def version_folder(period: Period, version: int) -> Path:
    """`HRSYNC_EXPORT_DIR/YYYY-MM/vN`."""
    return get_settings().exports() / str(period) / f"v{version}"


async def pipe_to_thread(batches: AsyncIterator[list[ExportDay]], write: Callable[[Iterable[ExportDay]], T]) -> T:
    """Run `write` in a real thread over the rows of `batches`, read here on the loop, at most a few ahead.

    A failed read ends the writer's rows with the error (it removes its partial files); a failed write
    stops the reading.
    """
    loop = asyncio.get_running_loop()
    queue: Any = SimpleQueue()
    room = asyncio.Semaphore(QUEUED_BATCHES)
    done = asyncio.Event()

    def rows() -> Iterator[ExportDay]:
        while True:
            batch = queue.get()
            loop.call_soon_threadsafe(room.release)
            if batch is _END:
                return
            if isinstance(batch, BaseException):
                raise batch
            yield from batch

    def run() -> T:
        try:
            return write(rows())
        finally:
            loop.call_soon_threadsafe(done.set)

    writer = loop.run_in_executor(None, run)
    try:
        async for batch in batches:
            waiting = asyncio.ensure_future(room.acquire())
            finished = asyncio.ensure_future(done.wait())
            await asyncio.wait({waiting, finished}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            if not waiting.done() or done.is_set():
                waiting.cancel()
                break
            queue.put(batch)
    except BaseException as exc:
        queue.put(exc)
        await asyncio.gather(writer, return_exceptions=True)
        raise
    queue.put(_END)
    return await writer


@retry_transient
async def _version_row(period: Period, version: int, execution_id: str | None) -> Any:
    """The `periods` row of the version; the first exporting execution is recorded as the manifest's."""
    p = periods.c
    engine = await app_engine()
    async with engine.begin() as conn:
        if execution_id is not None:
            await conn.execute(update(periods).where(p.period == str(period), p.version == version,
                                                     p.export_execution_id.is_(None))
                               .values(export_execution_id=execution_id))
        row = (await conn.execute(select(periods).where(p.period == str(period), p.version == version))).first()
    if row is None:
        raise ExportMissing(f"period {period} has no closed version {version}")
    return row


async def latest_closed_version(period: Period) -> int:
    """The version of the period's latest close; `ExportMissing` when the period is not closed now."""
    engine = await app_engine()
    async with engine.connect() as conn:
        row = (await conn.execute(select(periods.c.version, periods.c.state).where(periods.c.period == str(period))
                                  .order_by(periods.c.version.desc()).limit(1))).first()
    if row is None or row.state != "closed":
        raise ExportMissing(f"period {period} is not closed: close it first (hrsync period close {period})")
    return int(row.version)


async def write_version(period: Period, version: int, *, execution_id: str | None = None,
                        directory: Path | None = None) -> dict[str, Any]:
    """Write the five files of `period` version `version` into `directory` (default: `version_folder`).

    `execution_id`: the export stage's execution (recorded on the version when it is the first). Returns
    {period, version, directory, execution_id, files: {name: {rows, sha256}}}.
    """
    row = await _version_row(period, version, execution_id)
    manifest_execution = str(row.export_execution_id or execution_id or "")
    if not manifest_execution:
        raise ExportMissing(f"period {period} version {version} was never exported: its export stage runs first")
    zone = get_settings().zone
    job = ExportJob(period, version, manifest_execution, zone, created_at=row.closed_at.astimezone(dt.UTC))
    target = directory or version_folder(period, version)
    engine = await app_engine()
    async with engine.connect() as conn:
        kinds = await absence_kinds(conn, period)
        entries: dict[str, FileEntry] = await pipe_to_thread(
            stream_days(conn, period, zone), lambda days: write_month_export(target, job, kinds, days))
    return {"period": str(period), "version": version, "directory": str(target), "execution_id": manifest_execution,
            "files": {name: {"rows": e.rows, "sha256": e.sha256} for name, e in entries.items()}}


def mailed_files(period: Period, version: int, directory: Path) -> list[str]:
    """The files a version's mail carries: the workbook and payroll.csv."""
    job_name = workbook_name(ExportJob(period, version, "", get_settings().zone, dt.datetime.now(dt.UTC)))
    return [str(directory / job_name), str(directory / PAYROLL)]


def complete(directory: Path) -> bool:
    """Whether `directory` holds a whole export (its manifest is written last)."""
    return (directory / MANIFEST).is_file()


async def export_files(period: Period, to: Path | None = None) -> dict[str, Any]:
    """`hrsync export`: the latest closed version's files — its folder (written if missing), or copied into
    `to` (written there again, identically, when the folder is gone). Returns {period, version, directory}."""
    version = await latest_closed_version(period)
    folder = version_folder(period, version)
    if not await asyncio.to_thread(complete, folder):
        await write_version(period, version)
    if to is None:
        return {"period": str(period), "version": version, "directory": str(folder)}
    names = export_names(ExportJob(period, version, "", get_settings().zone, dt.datetime.now(dt.UTC)))
    await asyncio.to_thread(_copy, folder, to, names)
    return {"period": str(period), "version": version, "directory": str(to)}


def _copy(source: Path, target: Path, names: Iterable[str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, target / name)
