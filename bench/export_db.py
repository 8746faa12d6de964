"""Benchmark of the month-end export from MariaDB: the export stage's work against a bare SELECT + csv.writer.

One command: `python3 bench/export_db.py [--employees 20000] [--small 5000]` (MariaDB on 127.0.0.1:3306,
root without a password, as in DEVELOPERS.md). For each size it creates a database `hrsync_bench_export_*`,
migrates it, stores a generated closed month (`bench/export.py`'s rows: employees, attendance_days, the
overtime exceptions with their approved minutes, a closed version), then measures, each in a fresh process
(so its peak RSS is its own):

1. baseline: a bare `SELECT` of the same rows (days joined with their employees and overtime exceptions,
   ordered by employee and date) streamed with an unbuffered pymysql cursor into one file with `csv.writer`;
2. export: `pipelines.export.version.write_version` — the row source (absences, corrections, approved
   overtime joined), read on the runner's loop and written by a real thread into the five files.

The database is dropped afterwards. Printed: seconds, the process's CPU seconds (all its threads; the
database server's are not in it), peak RSS, export / baseline of both. On a shared machine the seconds
swing with the load; the CPU seconds much less.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.export import DAYS, PERIOD, month_days  # noqa: E402

HOST, PORT = "127.0.0.1", 3306
MIGRATE = ("from shared.database import migrations; from shared.runtime.runner import run_async, shutdown; "
           "run_async(migrations.upgrade()); shutdown()")
INSERT_BATCH = 5000
BASELINE_SQL = (
    "SELECT d.employee_no, e.full_name, e.department, d.work_date, d.shift_code, d.status, d.absence_kind, "
    "d.first_in, d.last_out, d.worked_minutes, d.late_minutes, d.early_exit_minutes, d.overtime_minutes, "
    "x.approved_overtime_minutes FROM attendance_days d JOIN employees e ON e.employee_no = d.employee_no "
    "LEFT JOIN attendance_exceptions x ON x.employee_no = d.employee_no AND x.work_date = d.work_date "
    "AND x.kind = 'overtime' WHERE d.work_date BETWEEN %s AND %s ORDER BY d.employee_no, d.work_date, d.shift_code"
)


def _connect(database: str | None = None) -> Any:
    return pymysql.connect(host=HOST, port=PORT, user="root", database=database, autocommit=True)


def _url(database: str) -> str:
    return f"mysql+aiomysql://root@{HOST}:{PORT}/{database}"


def seed(employees: int) -> str:
    """A migrated database holding the generated month, closed as version 1; its name."""
    name = f"hrsync_bench_export_{uuid.uuid4().hex[:8]}"
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    env = {**os.environ, "HRSYNC_DATABASE_URL": _url(name), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", MIGRATE], cwd=ROOT, env=env, check=True, capture_output=True)
    now = datetime.now(UTC).replace(tzinfo=None)
    with _connect(name) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO employees (employee_no, full_name, department, status, synced_at) "
                        "VALUES (%s, %s, %s, 'active', %s)",
                        [(f"E{n:06d}", f"Person {n}", f"Dept {n % 40}", now) for n in range(1, employees + 1)])
        days, overtime = [], []
        for day in month_days(employees):
            days.append((day.employee_no, day.work_date, day.shift_code, _naive(day.first_in), _naive(day.last_out),
                         day.worked_minutes, day.status, day.late_minutes, day.early_exit_minutes,
                         day.overtime_minutes, day.absence_kind, 2 if day.last_out else 0, now))
            if day.overtime_minutes:
                overtime.append((day.employee_no, day.work_date, json.dumps({"shift_code": "day",
                                 "overtime_minutes": day.overtime_minutes}), day.approved_overtime_minutes, now))
            if len(days) >= INSERT_BATCH:
                _insert(cur, days, overtime)
                days, overtime = [], []
        _insert(cur, days, overtime)
        cur.execute("INSERT INTO periods (period, version, state, forced, closed_by, closed_at, reason, "
                    "export_execution_id) VALUES (%s, 1, 'closed', 0, 'bench', %s, 'bench', 'bench')",
                    (str(PERIOD), now))
    return name


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None


def _insert(cur: Any, days: list[tuple[Any, ...]], overtime: list[tuple[Any, ...]]) -> None:
    if days:
        cur.executemany("INSERT INTO attendance_days (employee_no, work_date, shift_code, first_in, last_out, "
                        "worked_minutes, status, late_minutes, early_exit_minutes, overtime_minutes, absence_kind, "
                        "punch_count, computed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        days)
    if overtime:
        cur.executemany("INSERT INTO attendance_exceptions (employee_no, work_date, kind, severity, state, figures, "
                        "approved_overtime_minutes, first_seen_at, updated_at) VALUES "
                        "(%s, %s, 'overtime', 'review', 'open', %s, %s, %s, %s)",
                        [(*row, row[-1]) for row in overtime])


def run_baseline(database: str, folder: Path) -> None:
    with _connect(database) as conn, conn.cursor(pymysql.cursors.SSCursor) as cur, \
            (folder / "baseline.csv").open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        cur.execute(BASELINE_SQL, (PERIOD.first_day, PERIOD.last_day))
        while rows := cur.fetchmany(2000):
            writer.writerows(rows)


def prepare_export(database: str) -> None:
    """Settings and imports before the clock starts: a worker has its modules loaded (so has the baseline)."""
    os.environ.update(HRSYNC_DATABASE_URL=_url(database), HRSYNC_TIMEZONE="Europe/Berlin")
    import pipelines.export.version  # noqa: F401 (imported for its cost, not its name)
    import shared.runtime.runner  # noqa: F401


def run_export(database: str, folder: Path) -> None:
    from pipelines.export.version import write_version
    from shared.runtime.runner import run_async, shutdown

    os.environ.update(HRSYNC_EXPORT_DIR=str(folder))
    try:
        run_async(write_version(PERIOD, 1, directory=folder))
    finally:
        shutdown()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(run: str, database: str) -> dict[str, float]:
    if run == "export":
        prepare_export(database)
    with tempfile.TemporaryDirectory(prefix="hrsync-export-db-bench-") as folder:
        started, cpu = time.perf_counter(), _cpu()
        {"baseline": run_baseline, "export": run_export}[run](database, Path(folder))
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
    return {"seconds": seconds, "cpu": cpu, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "bytes": size}


def in_fresh_process(run: str, database: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--one", run, "--database", database], check=True,
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=5_000, help="the second size (RSS flat in the rows?)")
    parser.add_argument("--one", choices=("baseline", "export"), help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.database)))
        return
    print(f"{'employees':>9} {'rows':>9} {'run':<9} {'seconds':>8} {'CPU s':>7} {'peak RSS':>9} {'output':>9}")
    for employees in (args.small, args.employees):
        database = seed(employees)
        try:
            results = {run: in_fresh_process(run, database) for run in ("baseline", "export")}
        finally:
            with _connect() as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE `{database}`")
        for run, result in results.items():
            print(f"{employees:>9,} {employees * DAYS:>9,} {run:<9} {result['seconds']:>8.1f} {result['cpu']:>7.1f} "
                  f"{result['rss_mib']:>6.0f} MiB {result['bytes'] / 2**20:>5.0f} MiB")
        ratio = results["export"]["seconds"] / results["baseline"]["seconds"]
        cpu = results["export"]["cpu"] / results["baseline"]["cpu"]
        print(f"{'':>9} {'':>9} export / baseline: {ratio:.2f}x (this process's CPU: {cpu:.2f}x)")


if __name__ == "__main__":
    main()
