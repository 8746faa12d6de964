"""Benchmark of the three pipeline stages against the bare-driver floor (issue 3).

One command:   python bench/pipeline.py [--employees 20000] [--punches 1000000] [--keep] [--profile]

Sources are made fresh for the run: a PostgreSQL HRIS (table + `hrsync_employees` view, read over ODBC
with `PostgreSQL Unicode`), a BioStar MariaDB database with one month of `t_lgYYYYMM` logs, and two
migrated MariaDB app databases — one written by hrsync, one by the floor. Mail goes to an aiosmtpd sink
in this process (it counts messages, stores nothing) over plain SMTP.

Each (stage, side) case runs in a fresh subprocess; per stage the floor runs first, then hrsync:

- hrsync: the stage functions through `shared.runtime.runner.run_async`, shards fanned out over gevent greenlets
  (as on a `-P gevent -c 50` worker, without Celery): extract = plan + every key-range shard; merge =
  every BioStar import window + every (days x department) shard; notify = build the outbox + send every
  batch. No `execution_stages` bookkeeping (bench/nightly.py measures the whole chain).
- floor: no hrsync code. pyodbc reads the HRIS, aiomysql reads BioStar and the app DB, and the same
  rows are written with plain multi-row upserts (`executemany` of INSERT … ON DUPLICATE KEY UPDATE /
  INSERT IGNORE); attendance is a first/last-punch-per-day group-by producing one row per employee and
  day, like hrsync's; mail is one aiosmtplib connection sending plain-text messages.

The ratio hrsync/floor per stage is the number that matters (target ≤ 2x); seconds depend on the
(shared, noisy) machine. `--profile` re-runs the slowest hrsync stage under cProfile (enabled inside
the runner's loop thread, where the stage code runs) and prints the top entries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STAGES = ("extract", "merge", "notify")
MARIADB = "mysql+aiomysql://root@127.0.0.1:3306/"
PG_ODBC = ("Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Uid=postgres;Database=%s;"
           "UseDeclareFetch=1;ConnSettings={SET statement_timeout=300000}")
COLUMNS = ("employee_no", "full_name", "email", "department", "manager_no", "status", "hire_date",
           "termination_date", "biostar_user_id", "updated_at")
MONTH = dt.date(2026, 3, 1)  # 22 workdays (Mon-Fri); the zone is UTC, so no DST shift in the data
DATE_FROM, DATE_TO = MONTH, dt.date(2026, 3, 31)
EMPLOYEES_PER_DEPARTMENT, TEAM_SIZE = 1000, 20
VERIFY_SUCCESS, VERIFY_FAIL = 0x1000, 0x1100  # BioStar main codes 0x10 (punch) and 0x11 (never a punch)
FLOOR_BATCH = 5000
CONCURRENCY = 50  # greenlets fanning out shards, as a `-c 50` worker would
EXECUTION_ID = "bench000-0000-4000-8000-000000000000"  # 36 characters, as the column


# -- the data set ------------------------------------------------------------------------------------

def employee_rows(count: int) -> list[tuple[Any, ...]]:
    """HRIS rows (in `COLUMNS` order): teams of 20 under the first of the team, 1,000 per department."""
    departments = max(1, count // EMPLOYEES_PER_DEPARTMENT)
    updated = dt.datetime(2026, 2, 1, 8, 0, 0)
    rows = []
    for i in range(1, count + 1):
        no = f"E{i:06d}"
        lead = ((i - 1) // TEAM_SIZE) * TEAM_SIZE + 1
        rows.append((no, f"Person {i}", f"e{i:06d}@example.test", f"Dept{i % departments:02d}",
                     None if lead == i else f"E{lead:06d}", "active", dt.date(2020, 1, 1), None, i, updated))
    return rows


def workdays() -> list[dt.date]:
    days = [DATE_FROM + dt.timedelta(days=n) for n in range((DATE_TO - DATE_FROM).days + 1)]
    return [d for d in days if d.weekday() < 5]


def punch_logs(employees: int, total: int, missing_rate: float, seed: int = 42) -> Iterator[tuple[int, int, str, int]]:
    """(DEVDT, DEVUID, USRID, EVT) log rows, `total` in all: in/out pairs on workdays, lunch taps beyond.

    A `missing_rate` share of days has its out-tap failed (a day with one punch: missing_punch, so mail
    goes out); 0.2 % of taps come from unknown users (unmatched punches).
    """
    rng = random.Random(seed)
    days = workdays()
    per, extra = divmod(total, employees)
    for i in range(1, employees + 1):
        for k in range(per + (1 if i <= extra else 0)):
            day = days[(k // 2) % len(days)]
            base = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            if k >= 2 * len(days):  # beyond a pair per workday: a lunch tap
                at = base + dt.timedelta(hours=12, minutes=rng.randrange(60))
                evt = VERIFY_SUCCESS
            elif k % 2 == 0:
                at = base + dt.timedelta(hours=8, minutes=45 + rng.randrange(20), seconds=rng.randrange(60))
                evt = VERIFY_SUCCESS
            else:
                at = base + dt.timedelta(hours=17, minutes=rng.randrange(25), seconds=rng.randrange(60))
                evt = VERIFY_FAIL if rng.random() < missing_rate else VERIFY_SUCCESS
            user = str(9_000_000 + i) if rng.random() < 0.002 else str(i)
            yield int(at.timestamp()), 1 + i % 20, user, evt


def create_hris(name: str, employees: int) -> None:
    """A PostgreSQL HRIS like tests/integration/hris_fixtures.py, filled with multi-row INSERTs."""
    import pyodbc

    with closing(pyodbc.connect(PG_ODBC % "postgres", autocommit=True)) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    with closing(pyodbc.connect(PG_ODBC % name, autocommit=False)) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "CREATE TABLE hr_people (employee_no VARCHAR(200), full_name VARCHAR(400), email VARCHAR(400), "
            "department VARCHAR(200), manager_no VARCHAR(200), status VARCHAR(40), hire_date DATE, "
            "termination_date VARCHAR(40), biostar_user_id INTEGER, updated_at TIMESTAMP(6))")
        cursor.execute("CREATE INDEX ix_hr_people_employee_no ON hr_people (employee_no)")
        cursor.execute(f"CREATE VIEW hrsync_employees AS SELECT {', '.join(COLUMNS)} FROM hr_people")
        rows = employee_rows(employees)
        chunk = 500
        for at in range(0, len(rows), chunk):
            part = rows[at:at + chunk]
            marks = ", ".join(["(" + ", ".join("?" * len(COLUMNS)) + ")"] * len(part))
            cursor.execute(f"INSERT INTO hr_people ({', '.join(COLUMNS)}) VALUES {marks}",
                           *[v for row in part for v in row])
        conn.commit()
        cursor.execute("ANALYZE hr_people")
        conn.commit()


def drop_hris(name: str) -> None:
    import pyodbc

    with closing(pyodbc.connect(PG_ODBC % "postgres", autocommit=True)) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def mariadb_admin() -> Any:
    import pymysql

    return pymysql.connect(host="127.0.0.1", user="root", autocommit=True)


def create_biostar(name: str, employees: int, punches: int, missing_rate: float) -> None:
    """A BioStar database with the month's `t_lgYYYYMM` table, bulk-inserted with pymysql."""
    table = f"t_lg{MONTH.year:04d}{MONTH.month:02d}"
    with closing(mariadb_admin()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        cur.execute(f"CREATE TABLE {table} (EVTLGUID INT AUTO_INCREMENT PRIMARY KEY, DEVDT INT NOT NULL, "
                    "DEVUID BIGINT NOT NULL, USRID VARCHAR(32), EVT INT NOT NULL, TNAKEY INT, INDEX (DEVDT))")
        batch: list[tuple[Any, ...]] = []
        for row in punch_logs(employees, punches, missing_rate):
            batch.append(row)
            if len(batch) == 20_000:
                cur.executemany(f"INSERT INTO {table} (DEVDT, DEVUID, USRID, EVT) VALUES (%s, %s, %s, %s)", batch)
                batch = []
        if batch:
            cur.executemany(f"INSERT INTO {table} (DEVDT, DEVUID, USRID, EVT) VALUES (%s, %s, %s, %s)", batch)
        cur.execute(f"ANALYZE TABLE {table}")
        cur.fetchall()


def create_app_db(name: str) -> None:
    """A fresh MariaDB app database migrated with `shared.database.migrations.upgrade` (in a subprocess)."""
    with closing(mariadb_admin()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    code = ("from shared.database import migrations; from shared.runtime.runner import run_async, shutdown; "
            "run_async(migrations.upgrade()); shutdown()")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT), "HRSYNC_DATABASE_URL": MARIADB + name,
                        "HRSYNC_LOG_LEVEL": "WARNING"})


def drop_mariadb(name: str) -> None:
    with closing(mariadb_admin()) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


# -- hrsync: the stage functions through run_async, shards on greenlets --------------------------------

def fan_out(calls: list[Any]) -> list[Any]:
    """Run `run_async` calls on greenlets, at most CONCURRENCY at a time (a gevent worker's pool)."""
    from gevent.pool import Pool

    pool = Pool(CONCURRENCY)
    jobs = [pool.spawn(call) for call in calls]
    pool.join(raise_error=True)
    return [job.value for job in jobs]


def hrsync_stage(stage: str) -> dict[str, Any]:
    """Run one stage as the workflow would (planner, then its shards in parallel); returns timings."""
    from pipelines.attendance.rules import punch_range_needed
    from pipelines.attendance.shifts import current_shift_config
    from pipelines.extract import stage as extract
    from pipelines.extract.employees import ExtractParams, extract_employees, plan_extract_shards
    from pipelines.mail import build_notifications, plan_notify_batches, send_notifications
    from pipelines.merge import stage as merge
    from pipelines.merge.days import (
        import_punches,
        merge_attendance,
        plan_merge_shards_from_db,
        plan_punch_windows,
    )
    from pipelines.notify import stage as notify
    from shared.config.settings import get_settings
    from shared.runtime.runner import run_async

    started = time.perf_counter()
    parts: dict[str, float] = {}
    counts: dict[str, int] = {}
    if stage == "extract":
        params = ExtractParams(full=True)
        ranges = run_async(plan_extract_shards(params, extract.EXTRACT_MAX_SHARDS, extract.EXTRACT_SHARD_SIZE))
        parts["plan"] = time.perf_counter() - started
        results = fan_out([lambda r=r: run_async(extract_employees(params, r, EXECUTION_ID)) for r in ranges])
        counts = {"shards": len(ranges), "rows_out": sum(r.rows_out for r in results)}
    elif stage == "merge":
        start, end = punch_range_needed(DATE_FROM, DATE_TO, current_shift_config(), get_settings().zone)
        windows = plan_punch_windows(start, end, merge.IMPORT_WINDOW_HOURS)
        imports = fan_out([lambda w=w: run_async(import_punches(w, EXECUTION_ID)) for w in windows])
        parts["import"] = time.perf_counter() - started
        shards = run_async(plan_merge_shards_from_db(DATE_FROM, DATE_TO, merge.MERGE_DAYS_PER_SHARD))
        days = fan_out([lambda s=s: run_async(merge_attendance(s, EXECUTION_ID)) for s in shards])
        parts["days"] = time.perf_counter() - started - parts["import"]
        counts = {"windows": len(windows), "punches": sum(r.output["punches_new"] for r in imports),
                  "unmatched": sum(r.output["unmatched_new"] for r in imports),
                  "shards": len(shards), "days": sum(r.rows_out for r in days)}
    else:
        built = run_async(build_notifications(DATE_FROM, DATE_TO, EXECUTION_ID))
        batches = run_async(plan_notify_batches(None, notify.NOTIFY_BATCH_SIZE))
        parts["build"] = time.perf_counter() - started
        sent = fan_out([lambda b=b: run_async(send_notifications(b, EXECUTION_ID)) for b in batches])
        parts["send"] = time.perf_counter() - started - parts["build"]
        counts = {"built": built.rows_out, "batches": len(batches), "sent": sum(r.rows_out for r in sent)}
    return {"seconds": time.perf_counter() - started, "parts": parts, "counts": counts}


def run_hrsync_case(stage: str, profile_stage: str | None) -> dict[str, Any]:
    """The hrsync side in this (fresh, gevent-patched) process; `profile_stage` runs the stages up to it
    unprofiled first, then it under cProfile."""
    from gevent import monkey

    monkey.patch_all()
    from shared.observability.tracing import configure_logging
    from shared.runtime.runner import run_async, shutdown

    configure_logging("json", "WARNING", sys.stderr)
    if profile_stage is None:
        result = hrsync_stage(stage)
        shutdown()
        return result
    for earlier in STAGES[:STAGES.index(profile_stage)]:
        hrsync_stage(earlier)
    profiler = run_async(_profile_loop_thread())
    result = hrsync_stage(profile_stage)
    run_async(_stop_profile(profiler))
    result["profile"] = profile_top(profiler)
    shutdown()
    return result


async def _profile_loop_thread() -> Any:
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()  # profiles the calling thread: the runner's loop thread, where stages run
    return profiler


async def _stop_profile(profiler: Any) -> None:
    profiler.disable()


PROFILE_BUCKETS = ("pipelines/", "shared/", "sqlalchemy/", "aiomysql/", "pymysql/", "aioodbc/", "aiosmtplib/",
                   "jinja2/", "asyncio/", "email/")


def profile_top(profiler: Any, count: int = 25) -> list[str]:
    """The top `count` functions by own time, then own time summed per package (where the CPU went).

    Own time only: the cumulative times of coroutines span their suspensions and mislead.
    """
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(count)
    buckets: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        bucket = next((b for b in PROFILE_BUCKETS if b in filename), "built-ins" if filename == "~" else "other")
        buckets[bucket] = buckets.get(bucket, 0.0) + tottime
    total = sum(buckets.values()) or 1.0
    lines = [line.replace(str(ROOT) + "/", "") for line in out.getvalue().splitlines() if line.strip()]
    lines.append("own time by package: " + ", ".join(
        f"{name.rstrip('/')} {seconds:.1f}s ({seconds / total:.0%})"
        for name, seconds in sorted(buckets.items(), key=lambda item: -item[1])))
    return lines


# -- the floor: bare drivers, no hrsync code -----------------------------------------------------------

async def _mysql(url: str) -> Any:
    import aiomysql

    database = url.rsplit("/", 1)[1]
    return await aiomysql.connect(host="127.0.0.1", user="root", db=database, autocommit=False)


def _upsert_sql(table: str, columns: tuple[str, ...], update: tuple[str, ...]) -> str:
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    if not update:
        return sql.replace("INSERT", "INSERT IGNORE", 1)
    return sql + " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in update)


async def _write(conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    async with conn.cursor() as cur:
        for at in range(0, len(rows), FLOOR_BATCH):
            await cur.executemany(sql, rows[at:at + FLOOR_BATCH])
    await conn.commit()


async def floor_extract(env: dict[str, str]) -> dict[str, Any]:
    import pyodbc

    app = await _mysql(env["HRSYNC_DATABASE_URL"])
    columns = (*COLUMNS, "synced_at", "execution_id")
    sql = _upsert_sql("employees", columns, columns[1:])
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    written = 0
    with closing(pyodbc.connect(env["HRSYNC_HRIS_ODBC"], autocommit=True)) as source:
        cursor = source.execute(f"SELECT {', '.join(COLUMNS)} FROM hrsync_employees ORDER BY employee_no")
        while batch := cursor.fetchmany(FLOOR_BATCH):
            rows = [(*r[:7], dt.date.fromisoformat(r[7]) if r[7] else None,
                     None if r[8] is None else str(r[8]), r[9], now, EXECUTION_ID) for r in batch]
            await _write(app, sql, rows)
            written += len(rows)
    app.close()
    return {"rows_out": written}


async def floor_merge(env: dict[str, str]) -> dict[str, Any]:
    import aiomysql

    started = time.perf_counter()
    app = await _mysql(env["HRSYNC_DATABASE_URL"])
    biostar = await _mysql(env["HRSYNC_BIOSTAR_URL"])
    async with app.cursor() as cur:
        await cur.execute("SELECT biostar_user_id, employee_no FROM employees WHERE biostar_user_id IS NOT NULL")
        users = dict(await cur.fetchall())
    # the window hrsync reads: the month, a day either side (shift windows), minus the read overlap
    lo = int(dt.datetime(2026, 2, 28, tzinfo=dt.UTC).timestamp())
    hi = int(dt.datetime(2026, 4, 2, tzinfo=dt.UTC).timestamp())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    punch_sql = _upsert_sql("punches", ("employee_no", "device_id", "punched_at", "event_code", "tna_key",
                                        "received_at", "execution_id"), ())
    unmatched_sql = _upsert_sql("unmatched_punches", ("biostar_user_id", "device_id", "punched_at", "event_code",
                                                      "first_seen_at", "execution_id"), ())
    punches = unmatched = 0
    async with biostar.cursor(aiomysql.SSCursor) as cur:
        await cur.execute(f"SELECT USRID, DEVUID, DEVDT, EVT, TNAKEY FROM t_lg{MONTH.year:04d}{MONTH.month:02d} "
                          "WHERE DEVDT BETWEEN %s AND %s AND ((EVT >= 4096 AND EVT < 4352) "
                          "OR (EVT >= 4864 AND EVT < 5120) OR (EVT >= 5632 AND EVT < 5888))", (lo, hi))
        while batch := await cur.fetchmany(FLOOR_BATCH):
            known, unknown = [], []
            for user, device, devdt, evt, tna in batch:
                at = dt.datetime.fromtimestamp(devdt, dt.UTC).replace(tzinfo=None)
                if user in users:
                    known.append((users[user], device, at, evt, tna, now, EXECUTION_ID))
                else:
                    unknown.append((user, device, at, evt, now, EXECUTION_ID))
            await _write(app, punch_sql, known)
            await _write(app, unmatched_sql, unknown)
            punches, unmatched = punches + len(known), unmatched + len(unknown)
    biostar.close()
    imported = time.perf_counter() - started

    async with app.cursor() as cur:
        await cur.execute("SELECT employee_no FROM employees")
        people = [r[0] for r in await cur.fetchall()]
        await cur.execute("SELECT employee_no, punched_at FROM punches WHERE punched_at >= %s AND punched_at < %s",
                          (dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1)))
        taps: dict[tuple[str, dt.date], list[dt.datetime]] = {}
        for no, at in await cur.fetchall():
            taps.setdefault((no, at.date()), []).append(at)
    days = [DATE_FROM + dt.timedelta(days=n) for n in range((DATE_TO - DATE_FROM).days + 1)]
    columns = ("employee_no", "work_date", "shift_code", "first_in", "last_out", "worked_minutes", "status",
               "late_minutes", "early_exit_minutes", "punch_count", "execution_id", "computed_at")
    rows: list[tuple[Any, ...]] = []
    for no in people:
        for day in days:
            found = taps.get((no, day))
            if not found:
                rows.append((no, day, "day", None, None, 0, "absent" if day.weekday() < 5 else "off",
                             0, 0, 0, EXECUTION_ID, now))
                continue
            first, last = min(found), max(found)
            worked = int((last - first).total_seconds() // 60)
            status = "missing_punch" if len(found) == 1 else "present"
            rows.append((no, day, "day", first, last, worked, status, 0, 0, len(found), EXECUTION_ID, now))
    await _write(app, _upsert_sql("attendance_days", columns, columns[3:]), rows)
    app.close()
    return {"parts": {"import": imported, "days": time.perf_counter() - started - imported},
            "counts": {"punches": punches, "unmatched": unmatched, "days": len(rows)}}


async def floor_notify(env: dict[str, str]) -> dict[str, Any]:
    from email.message import EmailMessage

    import aiosmtplib

    started = time.perf_counter()
    app = await _mysql(env["HRSYNC_DATABASE_URL"])
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    outbox: list[tuple[Any, ...]] = []

    def row(key: str, to: str, subject: str, body: str) -> tuple[Any, ...]:
        return (key, key.split(":", 1)[0], to, subject, body, "pending", 0, f"<{key}@bench>", EXECUTION_ID, now)

    async with app.cursor() as cur:
        await cur.execute(
            "SELECT a.employee_no, a.work_date, a.shift_code, a.first_in, e.full_name, e.email FROM attendance_days a "
            "JOIN employees e ON e.employee_no = a.employee_no WHERE a.status = 'missing_punch' "
            "AND a.work_date BETWEEN %s AND %s ORDER BY a.work_date, a.employee_no", (DATE_FROM, DATE_TO))
        for no, day, shift, first_in, name, email in await cur.fetchall():
            outbox.append(row(f"missing_punch:{no}:{day}:{shift}", email, f"Missing punch on {day}",
                              f"Dear {name}, on {day} we have one punch only ({first_in:%H:%M})."))
        await cur.execute(
            "SELECT m.employee_no, a.work_date, m.email, e.full_name, a.status FROM attendance_days a "
            "JOIN employees e ON e.employee_no = a.employee_no JOIN employees m ON m.employee_no = e.manager_no "
            "WHERE a.work_date BETWEEN %s AND %s AND (a.status IN ('missing_punch', 'absent', 'half_day') "
            "OR a.late_minutes > 0 OR a.early_exit_minutes > 0) ORDER BY m.employee_no, a.work_date",
            (DATE_FROM, DATE_TO))
        teams: dict[tuple[str, dt.date], list[str]] = {}
        addresses: dict[str, str] = {}
        for manager, day, email, name, status in await cur.fetchall():
            teams.setdefault((manager, day), []).append(f"{name}: {status}")
            addresses[manager] = email
    for (manager, day), lines in teams.items():
        outbox.append(row(f"manager_digest:{manager}:{day}", addresses[manager],
                          f"Attendance exceptions of your team on {day} ({len(lines)})", "\n".join(lines)))
    columns = ("outbox_key", "kind", "recipient", "subject", "body_text", "status", "attempts", "message_id",
               "execution_id", "created_at")
    await _write(app, _upsert_sql("notifications", columns, ()), outbox)
    built = time.perf_counter() - started

    async with app.cursor() as cur:
        await cur.execute("SELECT id, recipient, subject, body_text FROM notifications WHERE status = 'pending'")
        pending = await cur.fetchall()
    host, port = env["HRSYNC_SMTP_URL"].removeprefix("smtp://").split(":")
    smtp = aiosmtplib.SMTP(hostname=host, port=int(port), start_tls=False)
    await smtp.connect()
    sent: list[int] = []
    for ident, recipient, subject, body in pending:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "hrsync@example.test", recipient, subject
        message.set_content(body)
        await smtp.send_message(message)
        sent.append(ident)
    await smtp.quit()
    async with app.cursor() as cur:
        for at in range(0, len(sent), FLOOR_BATCH):
            part = sent[at:at + FLOOR_BATCH]
            await cur.execute(f"UPDATE notifications SET status = 'sent', sent_at = %s "
                              f"WHERE id IN ({', '.join(['%s'] * len(part))})", (now, *part))
    await app.commit()
    app.close()
    return {"parts": {"build": built, "send": time.perf_counter() - started - built},
            "counts": {"built": len(outbox), "sent": len(sent)}}


FLOORS = {"extract": floor_extract, "merge": floor_merge, "notify": floor_notify}


def run_floor_case(stage: str) -> dict[str, Any]:
    started = time.perf_counter()
    result = asyncio.run(FLOORS[stage](dict(os.environ)))
    return {"seconds": time.perf_counter() - started, "parts": result.get("parts", {}),
            "counts": result.get("counts", {k: v for k, v in result.items() if k != "parts"})}


def run_floor_all(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every floor stage in order, in a fresh subprocess each (bench/nightly.py uses this)."""
    return {stage: measure("floor", stage, env) for stage in STAGES}


# -- the orchestrator --------------------------------------------------------------------------------

def measure(side: str, stage: str, env: dict[str, str], profile: bool = False) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--case", side, "--stage", stage]
    if profile:
        argv.append("--profile")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, cwd=ROOT, check=False,
                          env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-5:] or [f"exit {done.returncode}"]
        return {"error": " | ".join(line.strip()[:300] for line in tail)}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


class SmtpSink:
    """aiosmtpd on 127.0.0.1 (free port) in a thread of this process: accepts and counts messages."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.count = 0
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.count += 1
                return "250 OK"

        with closing(socket.socket()) as probe:  # a free port (the controller cannot take port 0)
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


class Sources:
    """The HRIS and BioStar databases of one run, and fresh app databases on demand; dropped at exit."""

    def __init__(self, employees: int, punches: int, missing_rate: float, keep: bool) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.hris, self.biostar = f"hrsync_bench_hris_{self.tag}", f"hrsync_bench_biostar_{self.tag}"
        self.employees, self.punches, self.missing_rate, self.keep = employees, punches, missing_rate, keep
        self.app_dbs: list[str] = []

    def __enter__(self) -> Sources:
        started = time.perf_counter()
        create_hris(self.hris, self.employees)
        create_biostar(self.biostar, self.employees, self.punches, self.missing_rate)
        self.setup_seconds = time.perf_counter() - started
        return self

    def app_db(self, role: str) -> str:
        name = f"hrsync_bench_{role}_{self.tag}"
        create_app_db(name)
        self.app_dbs.append(name)
        return name

    def env(self, app_db: str, smtp_url: str) -> dict[str, str]:
        return {"HRSYNC_DATABASE_URL": MARIADB + app_db, "HRSYNC_BIOSTAR_URL": MARIADB + self.biostar,
                "HRSYNC_HRIS_ODBC": PG_ODBC % self.hris, "HRSYNC_SMTP_URL": smtp_url,
                "HRSYNC_MAIL_FROM": "hrsync@example.test", "HRSYNC_OPS_EMAIL": "ops@example.test",
                "HRSYNC_TIMEZONE": "UTC", "HRSYNC_LOG_LEVEL": "WARNING", "HRSYNC_LOG_FORMAT": "json"}

    def __exit__(self, *_: object) -> None:
        if self.keep:
            print(f"kept: PostgreSQL {self.hris}; MariaDB {self.biostar} {' '.join(self.app_dbs)}")
            return
        with contextlib.suppress(Exception):
            drop_hris(self.hris)
        for name in (self.biostar, *self.app_dbs):
            with contextlib.suppress(Exception):
                drop_mariadb(name)


def stage_table(hrsync: dict[str, dict[str, Any]], floor: dict[str, dict[str, Any]],
                target: float = 2.0) -> tuple[list[str], list[str]]:
    """Lines of the per-stage table, and the met/MISSED lines."""
    lines = [f"{'stage':<9}{'hrsync s':>10}{'floor s':>10}{'ratio':>8}"
             "   parts (hrsync | floor)   counts (hrsync | floor)"]
    verdicts = []
    for stage in STAGES:
        h, f = hrsync.get(stage, {}), floor.get(stage, {})
        if "error" in h or "error" in f or not h or not f:
            lines.append(f"{stage:<9} error: {h.get('error') or f.get('error') or 'not run'}")
            verdicts.append(f"MISSED  {stage} ≤ {target:g}x floor: error")
            continue
        ratio = h["seconds"] / f["seconds"]

        def parts(r: dict[str, Any]) -> str:
            return " ".join(f"{k}={v:.1f}" for k, v in r.get("parts", {}).items()) or "-"

        lines.append(f"{stage:<9}{h['seconds']:>10.2f}{f['seconds']:>10.2f}{ratio:>7.2f}x   "
                     f"{parts(h)} | {parts(f)}   {h['counts']} | {f['counts']}")
        verdicts.append(f"{'met   ' if ratio <= target else 'MISSED'}  {stage} ≤ {target:g}x floor: {ratio:.2f}x")
    return lines, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--employees", type=int, default=20_000)
    parser.add_argument("--punches", type=int, default=1_000_000)
    parser.add_argument("--missing-rate", type=float, default=0.005, help="share of days with one punch only")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--profile", action="store_true", help="profile the slowest hrsync stage")
    parser.add_argument("--profile-stage", choices=STAGES, help="profile this stage instead of the slowest")
    parser.add_argument("--case", choices=("hrsync", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        if args.case == "floor":
            result = run_floor_case(args.stage)
        else:
            result = run_hrsync_case(args.stage, args.stage if args.profile else None)
        print(json.dumps(result, default=str))
        return

    command = f"python bench/pipeline.py --employees {args.employees} --punches {args.punches}"
    extra = (" --profile" if args.profile else "") + (f" --profile-stage {args.profile_stage}"
                                                      if args.profile_stage else "")
    print(command + extra + (" --keep" if args.keep else ""), flush=True)
    with Sources(args.employees, args.punches, args.missing_rate, args.keep) as sources, SmtpSink() as sink:
        print(f"sources ready in {sources.setup_seconds:.1f}s (HRIS {args.employees} employees, "
              f"BioStar {args.punches} log rows)", flush=True)
        envs = {side: sources.env(sources.app_db(side), sink.url) for side in ("floor", "hrsync")}
        results: dict[str, dict[str, dict[str, Any]]] = {"floor": {}, "hrsync": {}}
        for stage in STAGES:
            for side in ("floor", "hrsync"):
                results[side][stage] = measure(side, stage, envs[side])
                shown = results[side][stage].get("seconds", results[side][stage].get("error"))
                print(f"  {stage:<8}{side:<7}{shown}", flush=True)
        lines, verdicts = stage_table(results["hrsync"], results["floor"])
        print("\n".join(["", *lines, "", *verdicts]))
        print(f"mails received by the sink: {sink.count}")
        if args.profile or args.profile_stage:
            timed = {s: r["seconds"] for s, r in results["hrsync"].items() if "seconds" in r}
            slowest = args.profile_stage or max(timed, key=lambda s: timed[s])
            env = sources.env(sources.app_db("profile"), sink.url)
            profiled = measure("hrsync", slowest, env, profile=True)
            print(f"\nprofile of hrsync {slowest} (cProfile in the runner's loop thread; "
                  f"{profiled.get('seconds', 0):.1f}s under the profiler):")
            print("\n".join(profiled.get("profile", [profiled.get("error", "")])))


if __name__ == "__main__":
    main()
