"""The outbox (`notifications`): building rows, planning batches, and the per-row claim protocol.

A row is built once per outbox key (``INSERT … on duplicate do nothing``): building again never adds a
row and never touches one that exists, whatever its status. Rows are rendered when built (subject and
bodies stored), so a later send or replay sends exactly what was built.

Keys: ``missing_punch:<employee_no>:<date>:<shift>``, ``manager_digest:<manager_no>:<date>``,
``sync_failed:<execution_id>:<stage>:<ops address>`` — the recipient's identity, the day, the subject.
A digest whose content changed after it was built (a late punch, a correction, a cancelled absence)
follows as a corrected digest, ``manager_digest:<manager_no>:<date>:<digest of its text>``: the same
content is never built twice. Only closed days are mailed: an `open` row (a day in progress) is never
in a mail, and a manager's digest for a date waits until none of the team's rows of that date is open.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import or_, select, update

from pipelines.mail.message import NAME_MAX, SUBJECT_MAX, clean_header, message_id_for, outbox_key, parse_mailbox
from pipelines.mail.templates import render_bodies
from pipelines.stage import StageResult
from shared.config.redaction import redact_text
from shared.config.retry import retry_transient
from shared.config.settings import get_settings
from shared.database.db import app_engine, upsert
from shared.database.tables import attendance_days, employees, notifications
from shared.runtime.clock import utcnow

log = structlog.get_logger(__name__)

KINDS = ("missing_punch", "manager_digest", "sync_failed")
DEFAULT_KINDS = ("missing_punch", "manager_digest")
EXCEPTION_STATUSES = ("missing_punch", "absent", "half_day")
OPEN = "open"  # a day in progress: never mailed
ERROR_MAX = 4000  # characters of an error kept in a sync_failed mail
INSERT_CHUNK = 500

# Beyond the task's hard time limit, after which no delivery of the claiming task can still run.
CLAIM_LEASE_MARGIN = dt.timedelta(minutes=5)


def claim_lease() -> dt.timedelta:
    """How long a claim holds: a claim older than this was abandoned (its worker died) and may be retaken.

    Longer than any delivery can last: a row's delivery runs inside one task, which Celery kills at
    HRSYNC_TASK_TIME_LIMIT; a fixed 10 minutes was shorter than 3 tries at 60 s per SMTP command.
    """
    return dt.timedelta(seconds=get_settings().task_time_limit) + CLAIM_LEASE_MARGIN


# -- building -----------------------------------------------------------------------------------------

def _local_time(value: dt.datetime | None) -> str | None:
    return value.astimezone(get_settings().zone).strftime("%H:%M") if value is not None else None


def _valid_address(value: str | None) -> str | None:
    """The address if it is one (sanitised), else None: such a person gets no mail and is counted."""
    if not value:
        return None
    try:
        return parse_mailbox(value).addr_spec
    except ValueError:
        return None


def _row(kind: str, key: str, recipient: str, name: str | None, subject: str,
         context: dict[str, Any], execution_id: str | None, now: dt.datetime) -> dict[str, Any]:
    text, html = render_bodies(kind, context)
    return {
        "outbox_key": key, "kind": kind, "recipient": recipient,
        "recipient_name": clean_header(name, NAME_MAX) or None, "subject": clean_header(subject, SUBJECT_MAX),
        "body_text": text, "body_html": html, "status": "pending", "attempts": 0, "claimed_at": None,
        "last_error": None, "message_id": message_id_for(key), "execution_id": execution_id,
        "created_at": now, "sent_at": None,
    }


def exception_summary(status: str, late_minutes: int, early_exit_minutes: int) -> str:
    """One line for a digest: the day's status (if an exception) and late/early minutes."""
    parts = [status.replace("_", " ")] if status in EXCEPTION_STATUSES else []
    if late_minutes > 0:
        parts.append(f"late {late_minutes} min")
    if early_exit_minutes > 0:
        parts.append(f"early exit {early_exit_minutes} min")
    return ", ".join(parts)


async def _missing_punch_rows(date_from: dt.date, date_to: dt.date, source_execution_id: str | None,
                              execution_id: str | None, now: dt.datetime) -> tuple[list[dict[str, Any]], int]:
    ad, e = attendance_days, employees
    query = (
        select(ad.c.employee_no, ad.c.work_date, ad.c.shift_code, ad.c.first_in, e.c.full_name, e.c.email)
        .join(e, e.c.employee_no == ad.c.employee_no)
        .where(ad.c.status == "missing_punch", ad.c.work_date.between(date_from, date_to))
        .order_by(ad.c.work_date, ad.c.employee_no, ad.c.shift_code)
    )
    if source_execution_id is not None:
        query = query.where(ad.c.execution_id == source_execution_id)
    engine = await app_engine()
    async with engine.connect() as conn:
        found = (await conn.execute(query)).all()
    rows, skipped = [], 0
    for r in found:
        address = _valid_address(r.email)
        if address is None:
            skipped += 1
            continue
        key = outbox_key("missing_punch", r.employee_no, r.work_date.isoformat(), r.shift_code)
        context = {"name": r.full_name, "work_date": r.work_date.isoformat(), "shift_code": r.shift_code,
                   "punch_time": _local_time(r.first_in)}
        subject = f"Missing punch on {r.work_date.isoformat()}"
        rows.append(_row("missing_punch", key, address, r.full_name, subject, context, execution_id, now))
    return rows, skipped


async def _manager_digest_rows(date_from: dt.date, date_to: dt.date, execution_id: str | None,
                               now: dt.datetime) -> tuple[list[dict[str, Any]], int]:
    ad, e = attendance_days, employees
    m = employees.alias("manager")
    in_range = ad.c.work_date.between(date_from, date_to)
    query = (
        select(ad.c.employee_no, ad.c.work_date, ad.c.shift_code, ad.c.status, ad.c.late_minutes,
               ad.c.early_exit_minutes, ad.c.first_in, ad.c.last_out, ad.c.absence_kind, e.c.full_name,
               m.c.employee_no.label("manager_no"), m.c.full_name.label("manager_name"),
               m.c.email.label("manager_email"))
        .join(e, e.c.employee_no == ad.c.employee_no)
        .join(m, m.c.employee_no == e.c.manager_no)
        .where(in_range, ad.c.status != OPEN,
               or_(ad.c.status.in_(EXCEPTION_STATUSES), ad.c.late_minutes > 0, ad.c.early_exit_minutes > 0,
                   ad.c.absence_kind.is_not(None)))
        .order_by(m.c.employee_no, ad.c.work_date, e.c.full_name, ad.c.employee_no, ad.c.shift_code)
    )
    in_progress = (select(e.c.manager_no, ad.c.work_date).distinct()
                   .join(e, e.c.employee_no == ad.c.employee_no)
                   .where(in_range, ad.c.status == OPEN, e.c.manager_no.is_not(None)))
    engine = await app_engine()
    async with engine.connect() as conn:
        found = (await conn.execute(query)).all()
        waiting = {(r[0], r[1]) for r in await conn.execute(in_progress)}
    teams: dict[tuple[str, dt.date], list[Any]] = defaultdict(list)  # of result rows
    for r in found:
        if (r.manager_no, r.work_date) not in waiting:  # the digest waits for the team's whole day
            teams[(r.manager_no, r.work_date)].append(r)
    rows, skipped = [], 0
    for (manager_no, work_date), team in teams.items():
        first = team[0]
        address = _valid_address(first.manager_email)
        if address is None:
            skipped += 1
            continue
        lines = [
            {"full_name": r.full_name, "employee_no": r.employee_no, "shift_code": r.shift_code,
             "summary": exception_summary(r.status, r.late_minutes, r.early_exit_minutes),
             "first_in": _local_time(r.first_in), "last_out": _local_time(r.last_out)}
            for r in team if exception_summary(r.status, r.late_minutes, r.early_exit_minutes)
        ]
        leave = [
            {"full_name": r.full_name, "employee_no": r.employee_no, "kind": r.absence_kind,
             "part_day": r.status != "on_leave"}
            for r in team if r.absence_kind is not None or r.status == "on_leave"
        ]
        context = {"name": first.manager_name, "work_date": work_date.isoformat(), "rows": lines, "leave": leave}
        day = work_date.isoformat()
        subject = (f"Attendance exceptions of your team on {day} ({len(lines)})" if lines
                   else f"Your team on {day}: {len(leave)} on leave")
        rows.append(_row("manager_digest", outbox_key("manager_digest", manager_no, day), address,
                         first.manager_name, subject, context, execution_id, now))
    return await _corrected_digests(rows), skipped


async def _corrected_digests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Digests as they should be built: new, unchanged (the same key: nothing is built), or corrected.

    A digest whose text differs from the last one built for its manager and day gets the key
    ``<key>:<digest of its text>`` and a subject starting "Corrected:".
    """
    if not rows:
        return rows
    n = notifications.c
    bases = sorted({r["outbox_key"] for r in rows})
    known = set(bases)
    last: dict[str, str] = {}
    engine = await app_engine()
    async with engine.connect() as conn:
        for start in range(0, len(bases), INSERT_CHUNK):  # a base's versions all come in its chunk's query
            chunk = bases[start:start + INSERT_CHUNK]
            built = await conn.execute(
                select(n.outbox_key, n.body_text)
                .where(n.kind == "manager_digest",
                       or_(n.outbox_key.in_(chunk),
                           *(n.outbox_key.startswith(f"{base}:", autoescape=True) for base in chunk)))
                .order_by(n.id))
            for key, text in built:
                base = key if key in known else key.rsplit(":", 1)[0]  # a corrected one: <base>:<fingerprint>
                if base in known:
                    last[base] = text  # ordered by id: the newest one stays
    result = []
    for row in rows:
        previous = last.get(row["outbox_key"])
        if previous is not None and previous != row["body_text"]:
            fingerprint = hashlib.sha256(row["body_text"].encode()).hexdigest()[:16]
            key = f"{row['outbox_key']}:{fingerprint}"
            row = {**row, "outbox_key": key, "message_id": message_id_for(key),
                   "subject": clean_header(f"Corrected: {row['subject']}", SUBJECT_MAX)}
        result.append(row)
    return result


@retry_transient
async def _insert_new(rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows whose key is new (one transaction); return how many were new."""
    if not rows:
        return 0
    engine = await app_engine()
    async with engine.begin() as conn:
        existing: set[str] = set()
        for start in range(0, len(rows), INSERT_CHUNK):
            keys = [r["outbox_key"] for r in rows[start:start + INSERT_CHUNK]]
            found = await conn.execute(select(notifications.c.outbox_key).where(notifications.c.outbox_key.in_(keys)))
            existing.update(found.scalars())
        for start in range(0, len(rows), INSERT_CHUNK):
            # Do nothing on a duplicate key: a built (or sent) row is never reset.
            await conn.execute(upsert(conn, notifications, []), list(rows[start:start + INSERT_CHUNK]))
    return len({r["outbox_key"] for r in rows} - existing)


async def build_notifications(
    date_from: dt.date,
    date_to: dt.date,
    execution_id: str | None = None,
    kinds: Iterable[str] = DEFAULT_KINDS,
    *,
    source_execution_id: str | None = None,
) -> StageResult:
    """Build the outbox rows of `kinds` for work dates in [date_from, date_to]; idempotent.

    ``missing_punch``: one mail per attendance day in status missing_punch (only the days computed by
    `source_execution_id` when given). ``manager_digest``: one mail per manager and day listing the
    team's exceptions (missing punch, absent, half day, late, early exit) as they stand now; the first
    digest built for a day is the one sent. `execution_id` is recorded on new rows. People without a
    valid address get no row (counted in ``output["skipped_no_address"]``).
    """
    kinds = tuple(kinds)
    if unknown := set(kinds) - {"missing_punch", "manager_digest"}:
        raise ValueError(f"kinds: cannot build {sorted(unknown)} (sync_failed is queued by queue_sync_failed)")
    if date_to < date_from:
        raise ValueError(f"date_to {date_to} is before date_from {date_from}")
    now = utcnow()
    built: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    skipped = 0
    if "missing_punch" in kinds:
        found, missed = await _missing_punch_rows(date_from, date_to, source_execution_id, execution_id, now)
        rows += found
        built["missing_punch"], skipped = len(found), skipped + missed
    if "manager_digest" in kinds:
        found, missed = await _manager_digest_rows(date_from, date_to, execution_id, now)
        rows += found
        built["manager_digest"], skipped = len(found), skipped + missed
    new = await _insert_new(rows)
    log.info("notify.built", built=built, new=new, skipped_no_address=skipped)
    return StageResult(rows_in=len(rows) + skipped, rows_out=new,
                       output={"built": built, "new": new, "skipped_no_address": skipped})


async def queue_sync_failed(execution_id: str, stage: str, error: str) -> str:
    """Queue the ``sync_failed`` mail to the operations address (once per execution and stage).

    `error` is redacted (no passwords) and cut to 4000 characters. Returns the outbox key.
    """
    ops = get_settings().ops_email
    address = _valid_address(ops)
    if address is None:
        raise ValueError(f"HRSYNC_OPS_EMAIL is not an e-mail address: {ops!r}")
    stage_shown = clean_header(stage, 64)
    key = outbox_key("sync_failed", execution_id, stage_shown, address.lower())
    context = {"execution_id": execution_id, "stage": stage_shown, "error": redact_text(error)[:ERROR_MAX]}
    subject = f"hrsync: sync failed in stage {stage_shown} (execution {execution_id})"
    row = _row("sync_failed", key, address, None, subject, context, execution_id, utcnow())
    await _insert_new([row])
    return key


async def queue_payroll_export(period: str, version: int, directory: str, attachments: Sequence[str],
                               execution_id: str) -> int | None:
    """Queue the mail of one export version to HRSYNC_PAYROLL_EMAIL (once per version and address);
    the row's id, or None when the setting is unset. `attachments` are file paths sent under their names."""
    wanted = get_settings().payroll_email
    if not wanted:
        return None
    address = _valid_address(wanted)
    if address is None:
        raise ValueError(f"HRSYNC_PAYROLL_EMAIL is not an e-mail address: {wanted!r}")
    key = outbox_key("payroll_export", period, version, address.lower())
    context = {"period": period, "version": version, "directory": directory,
               "files": [Path(path).name for path in attachments]}
    row = _row("payroll_export", key, address, None, f"hrsync: attendance export {period} (version {version})",
               context, execution_id, utcnow())
    await _insert_new([{**row, "attachments": list(attachments)}])
    engine = await app_engine()
    async with engine.connect() as conn:
        return int((await conn.execute(select(notifications.c.id).where(notifications.c.outbox_key == key)))
                   .scalar_one())


# -- planning -----------------------------------------------------------------------------------------

async def plan_notify_batches(execution_id: str | None, batch_size: int = 50) -> list[list[int]]:
    """Ids of the pending rows in batches of `batch_size`, oldest first.

    With `execution_id`, only rows built by that execution; with None, the whole pending backlog (what
    a replay or a "drain the outbox" run wants, since replayed builds leave existing rows untouched).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    query = select(notifications.c.id).where(notifications.c.status == "pending").order_by(notifications.c.id)
    if execution_id is not None:
        query = query.where(notifications.c.execution_id == execution_id)
    engine = await app_engine()
    async with engine.connect() as conn:
        ids = [int(i) for i in (await conn.execute(query)).scalars()]
    return [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]


# -- the claim protocol ---------------------------------------------------------------------------------

async def load_rows(ids: Sequence[int]) -> list[dict[str, Any]]:
    """The rows of `ids` (any status), in id order."""
    if not ids:
        return []
    engine = await app_engine()
    async with engine.connect() as conn:
        found = await conn.execute(select(notifications).where(notifications.c.id.in_(list(ids)))
                                   .order_by(notifications.c.id))
        return [dict(r._mapping) for r in found]


@retry_transient
async def claim(row_id: int, holder: str | None = None) -> dt.datetime | None:
    """Take a pending row for sending; return the claim's time (its token), or None if not ours.

    Only a ``pending`` row without a live claim can be taken: two workers never send the same row at
    the same time, and a sent or failed row is never sent again. A claim of the same `holder` (the same
    step of the same execution: an earlier attempt that failed, or a run killed while it held the row)
    is taken back, so the row does not stay pending until the lease ends and some later run happens to
    send it. The caller makes sure no run of its own process still delivers the row (`send.py`).
    """
    now = utcnow()
    n = notifications.c
    free = or_(n.claimed_at.is_(None), n.claimed_at < now - claim_lease())
    if holder is not None:
        free = or_(free, n.claimed_by == holder)
    engine = await app_engine()
    async with engine.begin() as conn:
        done = await conn.execute(
            update(notifications)
            .where(n.id == row_id, n.status == "pending", free)
            .values(claimed_at=now, claimed_by=holder, attempts=n.attempts + 1)
        )
    return now if done.rowcount == 1 else None


@retry_transient
async def claim_many(row_ids: Sequence[int], holder: str | None = None) -> tuple[dt.datetime, set[int]]:
    """`claim` of several rows in one transaction: (the claim's time, the ids taken). One `UPDATE … WHERE id
    IN (…)` takes every free pending row, and the rows holding exactly this claim are read back in the same
    transaction (a row another sender holds, or one already sent, is not among them)."""
    now = utcnow()
    if not row_ids:
        return now, set()
    n = notifications.c
    free = or_(n.claimed_at.is_(None), n.claimed_at < now - claim_lease())
    if holder is not None:
        free = or_(free, n.claimed_by == holder)
    ids = sorted(set(row_ids))
    engine = await app_engine()
    async with engine.begin() as conn:
        await conn.execute(
            update(notifications)
            .where(n.id.in_(ids), n.status == "pending", free)
            .values(claimed_at=now, claimed_by=holder, attempts=n.attempts + 1)
        )
        mine = (n.claimed_by.is_(None) if holder is None else n.claimed_by == holder)
        taken = {int(i) for i in (await conn.execute(
            select(n.id).where(n.id.in_(ids), n.status == "pending", n.claimed_at == now, mine))).scalars()}
    return now, taken


@retry_transient
async def mark_sent_many(row_ids: Sequence[int], token: dt.datetime) -> int:
    """`mark_sent` of rows delivered under one claim (`claim_many`'s token), in one transaction; how many
    were still ours (a row whose claim was lost meanwhile is left as it is)."""
    return await _update_claimed(row_ids, token, status="sent", sent_at=utcnow(), last_error=None)


@retry_transient
async def release_many(row_ids: Sequence[int], token: dt.datetime, reason: str) -> int:
    """`release` of rows claimed together and never tried (the batch stopped before them)."""
    return await _update_claimed(row_ids, token, last_error=reason[:ERROR_MAX],
                                 attempts=notifications.c.attempts - 1)


@retry_transient
async def mark_sent(row_id: int, token: dt.datetime, extra_attempts: int = 0) -> bool:
    """The server accepted the message: ``sent`` with its time. False if the claim was lost meanwhile."""
    return await _finish(row_id, token, status="sent", sent_at=utcnow(), last_error=None,
                         extra_attempts=extra_attempts)


@retry_transient
async def mark_failed(row_id: int, token: dt.datetime, reason: str, extra_attempts: int = 0) -> bool:
    """Park the row as ``failed`` with the server's reason (a 5xx): it is never sent again."""
    return await _finish(row_id, token, status="failed", last_error=reason[:ERROR_MAX],
                         extra_attempts=extra_attempts)


@retry_transient
async def release(row_id: int, token: dt.datetime, reason: str, extra_attempts: int = 0) -> bool:
    """Give the row back as ``pending`` (a 4xx or no connection), noting why; a later call retries it."""
    return await _finish(row_id, token, status="pending", last_error=reason[:ERROR_MAX],
                         extra_attempts=extra_attempts)


async def _finish(row_id: int, token: dt.datetime, *, status: str, extra_attempts: int, **values: Any) -> bool:
    return await _update_claimed([row_id], token, status=status,
                                 attempts=notifications.c.attempts + extra_attempts, **values) == 1


async def _update_claimed(row_ids: Sequence[int], token: dt.datetime, **values: Any) -> int:
    """Write `values` on the rows still under this claim (pending, `claimed_at` = `token`) and end the claim,
    in one transaction; how many were still ours (a row whose claim was lost meanwhile is left as it is)."""
    if not row_ids:
        return 0
    n = notifications.c
    engine = await app_engine()
    async with engine.begin() as conn:
        done = await conn.execute(
            update(notifications)
            .where(n.id.in_(sorted(set(row_ids))), n.status == "pending", n.claimed_at == token)
            .values(claimed_at=None, claimed_by=None, **values)
        )
    return max(done.rowcount, 0)
