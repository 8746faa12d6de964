"""The watchdogs (DESIGN §7): nothing late or stuck goes unnoticed.

Three checks, each run by `run_watchdogs()` (every worker process runs it every `WATCHDOG_SECONDS`, see
`workers.watchdog`):

- `pending_wait`: an execution `pending` longer than HRSYNC_PENDING_MAX_WAIT (behind a running one of its
  kind, or its start lost);
- `stuck_running`: a `running` execution none of whose tasks has run for HRSYNC_TASK_TIME_LIMIT (a lost
  chord, a worker lost mid-finish). It is marked `failed` with the reason, so it can be replayed, which
  releases its kind;
- `nightly_deadline`: the nightly has not succeeded HRSYNC_NIGHTLY_DEADLINE_MINUTES after its scheduled
  time (it never started, failed, or still runs) — checked from the first slot a scheduler recorded.

Each finding is one `watchdog_alerts` row (keyed `<alert>:<target>`) and one `ops_alert` outbox row,
inserted in one transaction: however many workers run the checks, the second insert of a key fails and
ops get one mail. The mail is sent at once and, while it stays pending, again on every round. An alert is
`cleared` when its condition ends (a stuck one: when it was replayed); `hrsync executions --late` lists the alerts and
`hrsync_watchdog_alerts{alert}` counts the open ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from pipelines.mail.message import outbox_key
from pipelines.mail.outbox import _row, _valid_address
from pipelines.mail.send import send_notifications
from shared.config.cron import cron_trigger
from shared.config.retry import retry_transient
from shared.config.settings import get_settings
from shared.database.db import app_engine
from shared.database.tables import (
    execution_stages,
    executions,
    notifications,
    schedule_pauses,
    schedule_runs,
    watchdog_alerts,
)
from shared.events.models import sync_event_id
from shared.observability.metrics import WATCHDOG_ALERTS
from shared.records.status import ExecutionStatus, StageStatus
from shared.runtime.clock import utcnow

log = structlog.get_logger(__name__)

PENDING_WAIT, STUCK_RUNNING, NIGHTLY_DEADLINE = "pending_wait", "stuck_running", "nightly_deadline"
ALERTS = WATCHDOG_ALERTS  # (pending_wait, stuck_running, nightly_deadline)
OPS_ALERT = "ops_alert"  # the outbox kind of a watchdog's mail
NIGHTLY = "nightly"  # the nightly job's name and its executions' kind
SLOT_LOOKBACK = dt.timedelta(days=8)  # only the newest nightly slot counts: a weekly one is still found
ACTIONS = {
    PENDING_WAIT: "see what runs before it (`hrsync executions --status running`); if that one is stuck, "
                  "cancel or replay it; if nothing of its kind runs, check that workers consume hrsync.workflow.",
    STUCK_RUNNING: "it was marked failed: find why its tasks stopped (`hrsync show ID`, worker logs), then "
                   "`hrsync replay ID --reason R`.",
    NIGHTLY_DEADLINE: "check the scheduler runs and the job is not paused (`hrsync schedule list`), replay a "
                      "failed nightly (`hrsync replay ID --reason R`) or run it now (`hrsync sync --scope nightly`).",
}


@dataclass(frozen=True)
class Finding:
    """One late or stuck thing: which alert, about what, since when, and what was seen."""

    alert: str
    target: str
    since: dt.datetime | None
    detail: str
    kind: str | None = None

    @property
    def key(self) -> str:
        return f"{self.alert}:{self.target}"


async def run_watchdogs(now: dt.datetime | None = None, checks: Sequence[str] = ALERTS) -> list[Finding]:
    """One round of the `checks` (all three by default): new findings are alerted (row + mail, once per
    key), stuck executions failed, ended conditions cleared, and pending alert mails sent. Returns the
    new findings."""
    now = now or utcnow()
    settings = get_settings()
    findings = []
    if PENDING_WAIT in checks:
        findings += await late_pending(now, dt.timedelta(seconds=settings.pending_max_wait))
    if STUCK_RUNNING in checks:
        findings += await stuck_running(now, dt.timedelta(seconds=settings.task_time_limit))
    if NIGHTLY_DEADLINE in checks:
        findings += await late_nightly(now, dt.timedelta(minutes=settings.nightly_deadline_minutes))
    new = [finding for finding in findings if await _alert(finding, now)]
    for finding in new:
        log.warning("watchdog.alert", alert=finding.alert, target=finding.target, detail=finding.detail)
    await _clear_ended(now)
    await send_pending_alerts()
    return new


async def late_pending(now: dt.datetime, max_wait: dt.timedelta) -> list[Finding]:
    """Executions pending for longer than `max_wait`, with what runs of their kind."""
    e = executions.c
    engine = await app_engine()
    async with engine.connect() as conn:
        waiting = (await conn.execute(select(e.id, e.kind, e.created_at).where(
            e.status == ExecutionStatus.PENDING, e.created_at < now - max_wait).order_by(e.created_at))).all()
        running = {row.kind: row.id for row in await conn.execute(
            select(e.kind, e.id).where(e.status == ExecutionStatus.RUNNING,
                                       e.kind.in_({w.kind for w in waiting})))} if waiting else {}
    return [Finding(PENDING_WAIT, str(w.id), _aware(w.created_at), kind=w.kind, detail=(
        f"{w.kind} execution {w.id} has been pending since {w.created_at.isoformat()} "
        f"(over {int(max_wait.total_seconds())} s); "
        + (f"{w.kind} execution {running[w.kind]} is running" if w.kind in running
           else f"no {w.kind} execution is running: its start has not run"))) for w in waiting]


async def stuck_running(now: dt.datetime, limit: dt.timedelta) -> list[Finding]:
    """Running executions none of whose tasks ran (started or ended) within `limit`: each is marked
    `failed` with the reason (its running step rows closed), so it can be replayed."""
    e, s = executions.c, execution_stages.c
    last_ran = func.max(func.coalesce(s.finished_at, s.started_at))
    engine = await app_engine()
    async with engine.begin() as conn:
        rows = (await conn.execute(
            select(e.id, e.kind, e.started_at, last_ran.label("last_ran"))
            .select_from(executions.outerjoin(execution_stages, s.execution_id == e.id))
            .where(e.status == ExecutionStatus.RUNNING).group_by(e.id, e.kind, e.started_at))).all()
        found = []
        for row in rows:
            times = [_aware(t) for t in (row.last_ran, row.started_at) if t is not None]
            last = max(times) if times else None
            if last is None or last >= now - limit:
                continue
            reason = (f"stuck: none of its tasks has run since {last.isoformat()} "
                      f"(HRSYNC_TASK_TIME_LIMIT {int(limit.total_seconds())} s); marked failed by the watchdog")
            if await _fail_stuck(conn, str(row.id), reason, now, last):
                found.append(Finding(STUCK_RUNNING, str(row.id), last, kind=row.kind,
                                     detail=f"{row.kind} execution {row.id}: {reason}"))
    return found


async def _fail_stuck(conn: AsyncConnection, execution_id: str, reason: str, now: dt.datetime,
                      last: dt.datetime) -> bool:
    """Fail the execution if it is still running with nothing newer than `last` (rows locked in turn)."""
    e, s = executions.c, execution_stages.c
    locked = (await conn.execute(select(e.status).where(e.id == execution_id).with_for_update())).scalar()
    newer = (await conn.execute(select(func.count()).select_from(execution_stages).where(
        s.execution_id == execution_id, func.coalesce(s.finished_at, s.started_at) > last))).scalar_one()
    if locked != ExecutionStatus.RUNNING or newer:
        return False
    await conn.execute(update(execution_stages).where(s.execution_id == execution_id, s.status == StageStatus.RUNNING)
                       .values(status=StageStatus.FAILED, finished_at=now, error_type="TaskLost",
                               error_message="never ended (marked by the stuck-running watchdog)"))
    await conn.execute(update(executions).where(e.id == execution_id, e.status == ExecutionStatus.RUNNING)
                       .values(status=ExecutionStatus.FAILED, finished_at=now, error=reason))
    return True


async def late_nightly(now: dt.datetime, deadline: dt.timedelta) -> list[Finding]:
    """The newest nightly slot whose deadline passed without a nightly execution that succeeded since it.

    Nothing is expected before the first slot a scheduler recorded for the nightly (a new install, or a
    test database) nor when the nightly is switched off.
    """
    settings = get_settings()
    if NIGHTLY in settings.schedules:  # `"nightly": null` switches it off
        return []
    r, e = schedule_runs.c, executions.c
    engine = await app_engine()
    async with engine.connect() as conn:
        first = (await conn.execute(select(func.min(r.fire_time)).where(r.job == NIGHTLY))).scalar()
        if first is None:
            return []
        trigger = cron_trigger(settings.nightly_cron, settings.zone)
        slot = _latest_slot(trigger, _aware(first) - dt.timedelta(seconds=1), now - deadline)
        if slot is None:
            return []
        slot = slot.astimezone(dt.UTC)
        if await _nightly_succeeded_since(conn, slot):
            return []
        latest = (await conn.execute(select(e.id, e.status).where(e.kind == NIGHTLY, e.created_at >= slot)
                                     .order_by(e.created_at.desc()).limit(1))).first()
        pause = (await conn.execute(select(schedule_pauses).where(schedule_pauses.c.job == NIGHTLY))).first()
    seen = ("it never started" if latest is None else f"execution {latest.id} is {latest.status}")
    if pause is not None:
        seen += f"; the job is paused (by {pause.paused_by} since {pause.paused_at.isoformat()}: {pause.reason})"
    event_id = sync_event_id(NIGHTLY, slot)
    return [Finding(NIGHTLY_DEADLINE, event_id, slot, kind=NIGHTLY, detail=(
        f"the nightly of {slot.isoformat()} ({event_id}) has not succeeded "
        f"{int(deadline.total_seconds() // 60)} minutes after its scheduled time: {seen}"))]


async def _nightly_succeeded_since(conn: AsyncConnection, slot: dt.datetime) -> bool:
    """Whether a nightly execution created at or after `slot` succeeded (the scheduled one, a replay, a
    manual `hrsync sync --scope nightly`)."""
    e = executions.c
    return bool((await conn.execute(select(func.count()).select_from(executions).where(
        e.kind == NIGHTLY, e.status == ExecutionStatus.SUCCEEDED, e.created_at >= slot))).scalar_one())


def _latest_slot(trigger: Any, after: dt.datetime, until: dt.datetime) -> dt.datetime | None:
    """The newest slot of `trigger` in (`after`, `until`], looking back at most `SLOT_LOOKBACK`."""
    newest = None
    slot = trigger.get_next_fire_time(None, max(after, until - SLOT_LOOKBACK) + dt.timedelta(microseconds=1))
    while slot is not None and slot <= until:
        newest = slot
        slot = trigger.get_next_fire_time(slot, slot + dt.timedelta(seconds=1))
    return newest


def _aware(moment: dt.datetime) -> dt.datetime:
    """MAX()/MIN() lose the column type on some dialects: make the instant aware UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


@retry_transient
async def _alert(finding: Finding, now: dt.datetime) -> bool:
    """Insert the alert row and its mail in one transaction; False when the key was alerted before."""
    settings = get_settings()
    address = _valid_address(settings.ops_email)
    engine = await app_engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(watchdog_alerts.insert().values(
                alert_key=finding.key, alert=finding.alert, target=finding.target, kind=finding.kind,
                detected_at=now, since=finding.since, detail=finding.detail))
            if address is not None:
                await conn.execute(notifications.insert().values(**_mail(finding, address, now)))
    except IntegrityError:
        return False
    if address is None:
        log.error("watchdog.no_ops_address", alert=finding.alert, target=finding.target)
    return True


def _mail(finding: Finding, address: str, now: dt.datetime) -> dict[str, Any]:
    headline = {PENDING_WAIT: f"hrsync: execution {finding.target} is waiting to start",
                STUCK_RUNNING: f"hrsync: execution {finding.target} was stuck and is now failed",
                NIGHTLY_DEADLINE: f"hrsync: the nightly {finding.target} is late"}[finding.alert]
    context = {"headline": headline, "detail": finding.detail, "action": ACTIONS[finding.alert]}
    # No execution_id: the mail is the watchdog's, not the execution's (its notify must not wait for it).
    return _row(OPS_ALERT, outbox_key(OPS_ALERT, finding.alert, finding.target, address.lower()), address, None,
                headline, context, None, now)


async def _clear_ended(now: dt.datetime) -> None:
    """Mark the open alerts whose condition ended: a pending execution that started or ended, a stuck
    (now failed) execution that was replayed, a nightly that succeeded since."""
    a, e = watchdog_alerts.c, executions.c
    engine = await app_engine()
    async with engine.begin() as conn:
        open_alerts = (await conn.execute(select(a.alert_key, a.alert, a.target, a.since)
                                          .where(a.cleared_at.is_(None)))).all()
        ended = []
        for alert in open_alerts:
            if alert.alert == PENDING_WAIT:
                status = (await conn.execute(select(e.status).where(e.id == alert.target))).scalar()
                if status != ExecutionStatus.PENDING:
                    ended.append(alert.alert_key)
            elif alert.alert == STUCK_RUNNING:
                if (await conn.execute(select(func.count()).select_from(executions)
                                       .where(e.replay_of == alert.target))).scalar_one():
                    ended.append(alert.alert_key)
            elif alert.since is not None and await _nightly_succeeded_since(conn, alert.since):
                ended.append(alert.alert_key)
        if ended:
            await conn.execute(update(watchdog_alerts).where(a.alert_key.in_(ended)).values(cleared_at=now))


async def send_pending_alerts() -> None:
    """Send the watchdogs' mails still pending (one SMTP session; a failure waits for the next round)."""
    n = notifications.c
    engine = await app_engine()
    async with engine.connect() as conn:
        ids = [int(i) for i in (await conn.execute(select(n.id).where(n.kind == OPS_ALERT, n.status == "pending")
                                                   .order_by(n.id))).scalars()]
    if not ids:
        return
    try:
        await send_notifications(ids)
    except Exception as exc:  # the rows stay pending: the next round tries again
        log.warning("watchdog.mail_failed", error=f"{type(exc).__name__}: {exc}"[:300], pending=len(ids))


async def late_alerts(since: dt.datetime | None = None, open_only: bool = False) -> list[dict[str, Any]]:
    """The alerts, newest first (detected since `since`; or only those still open): `executions --late`."""
    a = watchdog_alerts.c
    query = select(watchdog_alerts).order_by(a.detected_at.desc(), a.alert_key)
    if since is not None:
        query = query.where(a.detected_at >= since)
    if open_only:
        query = query.where(a.cleared_at.is_(None))
    engine = await app_engine()
    async with engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]
