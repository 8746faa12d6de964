"""Benchmark of the month-end export writers (pipelines/export): a generated month streamed to the five files.

One command: `python3 bench/export.py` (20,000 employees by 30 days = 600,000 day rows; a second, smaller
size, 5,000 employees by default, shows whether memory grows with the rows). Each measurement runs in a
fresh process, so its peak RSS (`ru_maxrss`) is its own:

0. rows: the rows generated and dropped (what both runs below spend before writing anything);
1. baseline: the same generated rows written with a bare `csv.writer` (one file, the fields as they are);
2. writers: `write_month_export` — days.csv, summary.csv, payroll.csv, the xlsx (XlsxWriter,
   constant_memory) and manifest.json, in one pass.

The rows are generated on the fly in employee/date order (no database: this measures the writers), so
neither run holds the month. Printed: seconds, peak RSS, the ratio writers / baseline per size, and the
same ratio with the rows' generation taken out of both (in wall and in CPU seconds: on a shared machine the
wall seconds swing with the load).
"""

from __future__ import annotations

import argparse
import csv
import json
import operator
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.attendance.rules import AbsencePart, AttendanceStatus  # noqa: E402
from pipelines.export.rows import ExportDay, ExportJob  # noqa: E402
from pipelines.export.write import write_month_export  # noqa: E402
from pipelines.monthend.period import Period  # noqa: E402

PERIOD = Period(2026, 11)
DAYS = 30
ZONE = ZoneInfo("Europe/Berlin")
KINDS = ("sick", "vacation")


def month_days(employees: int, seed: int = 7) -> Iterator[ExportDay]:
    """A plausible month per employee, in (employee_no, work_date) order, generated as it is consumed."""
    rng = random.Random(seed)
    for number in range(1, employees + 1):
        employee_no, name, department = f"E{number:06d}", f"Person {number}", f"Dept {number % 40}"
        for offset in range(DAYS):
            work_date = PERIOD.first_day + timedelta(days=offset)
            yield _day(rng, employee_no, name, department, work_date)


def _day(rng: random.Random, employee_no: str, name: str, department: str, work_date: date) -> ExportDay:
    status: AttendanceStatus = "present"
    kind: str | None = None
    part: AbsencePart | None = None
    worked = late = early = overtime = approved = 0
    first_in = last_out = None
    roll = rng.random()
    if work_date.weekday() >= 5:
        status = "off"
    elif roll < 0.04:
        status, kind, part = "on_leave", rng.choice(KINDS), "full"
    elif roll < 0.06:
        status = "absent"
    elif roll < 0.07:
        status, first_in = "missing_punch", datetime.combine(work_date, datetime.min.time(), UTC) + timedelta(hours=8)
    else:
        start = datetime.combine(work_date, datetime.min.time(), UTC) + timedelta(minutes=470 + rng.randrange(40))
        worked = 420 + rng.randrange(180)
        first_in, last_out = start, start + timedelta(minutes=worked)
        late = max(0, (start.hour * 60 + start.minute) - 490)
        overtime = max(0, worked - 495)
        approved = overtime if rng.random() < 0.5 else 0
        if roll > 0.97:
            kind, part = "sick", "pm"
    return ExportDay(employee_no, name, department, work_date, "day", status, kind, part, first_in, last_out,
                     worked, late, early, overtime, approved, roll > 0.99)


def write_baseline(employees: int, folder: Path) -> None:
    with (folder / "baseline.csv").open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        values = operator.attrgetter(*(field.name for field in fields(ExportDay)))
        for day in month_days(employees):
            writer.writerow(values(day))


def generate_only(employees: int, folder: Path) -> None:
    for _ in month_days(employees):
        pass


def write_export(employees: int, folder: Path) -> None:
    job = ExportJob(PERIOD, 1, "bench", ZONE, datetime(2026, 12, 1, tzinfo=UTC))
    write_month_export(folder, job, KINDS, month_days(employees))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(run: str, employees: int) -> dict[str, float]:
    """One run in this process: seconds, CPU seconds and peak RSS (MiB)."""
    with tempfile.TemporaryDirectory(prefix="hrsync-export-bench-") as folder:
        started, cpu = time.perf_counter(), _cpu()
        {"rows": generate_only, "baseline": write_baseline, "writers": write_export}[run](employees, Path(folder))
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
    return {"seconds": seconds, "cpu": cpu, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "bytes": size}


def in_fresh_process(run: str, employees: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--one", run, "--employees", str(employees)],
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=5_000, help="the second size (RSS flat in the rows?)")
    parser.add_argument("--one", choices=("rows", "baseline", "writers"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.employees)))
        return
    print(f"{'employees':>9} {'rows':>9} {'run':<9} {'seconds':>8} {'CPU s':>7} {'peak RSS':>9} {'output':>9}")
    for employees in (args.small, args.employees):
        results = {run: in_fresh_process(run, employees) for run in ("rows", "baseline", "writers")}
        for run, result in results.items():
            print(f"{employees:>9,} {employees * DAYS:>9,} {run:<9} {result['seconds']:>8.1f} {result['cpu']:>7.1f} "
                  f"{result['rss_mib']:>6.0f} MiB {result['bytes'] / 2**20:>5.0f} MiB")
        ratio = results["writers"]["seconds"] / results["baseline"]["seconds"]
        rows = results["rows"]["seconds"]
        writing = (results["writers"]["seconds"] - rows) / (results["baseline"]["seconds"] - rows)
        cpu_rows = results["rows"]["cpu"]
        cpu = (results["writers"]["cpu"] - cpu_rows) / (results["baseline"]["cpu"] - cpu_rows)
        print(f"{'':>9} {'':>9} {'ratio':<9} {ratio:>7.1f}x  (writing alone, generation taken out: {writing:.1f}x; "
              f"in CPU seconds {cpu:.1f}x)")


if __name__ == "__main__":
    main()
