"""The capacity model's inputs (docs/capacity.md): CPU-seconds per stage and per row, and whose they are.

One command:   python bench/capacity.py --employees 5000 --punches 250000 --workers 1 2 [--keep]

Runs the nightly chain of bench/nightly.py (its public functions: the same sources, workers, bridge, event
and execution breakdown; the floor is not run) once per `--workers` count, each on a fresh app database and
vhost, on one set of sources. While a run lasts, a sampler (every `--interval` s) reads the CPU time
(`/proc/<pid>/stat` utime+stime) of:

- this run's hrsync processes — the workers and the bridge, found by the app database in their environment;
- the MariaDB threads serving this run's connections (`information_schema.PROCESSLIST.TID` whose `DB` is the
  app database or BioStar's → `/proc/<mariadbd>/task/<tid>/stat`), split into app database and BioStar;
- the PostgreSQL backends connected to this run's HRIS (`pg_stat_activity.pid` → `/proc/<pid>/stat`);
- the whole mariadbd and the machine (`/proc/stat`), to show what else ran.

Each interval's CPU is given to the part of the chain running then (extract shards, merge imports, merge day
shards, notify batches; the `execution_stages` rows' first start → last finish, `bench.nightly.stage_breakdown`).
A connection's thread is counted from the first sample that sees it, so up to one interval of its CPU before
that is missed; a thread MariaDB reuses for another database of someone else's is not counted.

Printed per run: wall seconds per part, the rows each part handled (`rows_in` + `rows_out` summed over its
shards), CPU-seconds per part of workers / app DB / BioStar / HRIS, the app database's size per table
(`information_schema.TABLES`), and the machine's load; and all of it as JSON (the last line) for a fit across
sizes: `python bench/capacity.py --fit run1.json run2.json` prints per-row slopes and the model's prediction
for `--target-employees` / `--target-punches` in `--target-seconds`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.events import VirtualHost, app_query, stack_env  # noqa: E402 - after the path fix
from bench.nightly import run_chain, stage_breakdown  # noqa: E402
from bench.pipeline import PG_ODBC, SmtpSink, Sources  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PARTS = ("extract", "merge imports", "merge days", "notify")
SIDES = ("workers", "bridge", "app_db", "biostar", "hris")
DAYS_IN_MONTH = 31


def proc_cpu(path: str) -> float | None:
    """utime + stime of a `/proc/.../stat` file, in seconds (None when it is gone)."""
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat, after "pid (comm)"


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine since boot (`/proc/stat`, all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICK, sum(values) / TICK


@dataclass
class Counter:
    """CPU of things that come and go: per key, the first and the last value seen."""

    first: dict[Any, float] = field(default_factory=dict)
    last: dict[Any, float] = field(default_factory=dict)

    def see(self, key: Any, value: float | None) -> None:
        if value is not None:
            self.first.setdefault(key, value)
            self.last[key] = value

    def total(self) -> float:
        return sum(self.last[k] - self.first[k] for k in self.last)


class Sampler:
    """Samples the CPU of this run's processes, MariaDB threads and PostgreSQL backends every `interval` s."""

    def __init__(self, app_url: str, app_db: str, biostar_db: str, hris_db: str, interval: float) -> None:
        self.app_url, self.app_db, self.biostar_db, self.hris_db = app_url, app_db, biostar_db, hris_db
        self.interval = interval
        self.counters = {side: Counter() for side in SIDES}
        self.timeline: list[tuple[float, dict[str, float]]] = []  # (time, cumulative CPU per side)
        self.mariadbd = next((p for p in psutil.process_iter(["name"]) if p.info["name"] == "mariadbd"), None)
        self.ours: dict[int, str] = {}  # pid → "workers" / "bridge"
        self.others: set[int] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.start_machine = machine_cpu()
        self.start_mariadbd = self.mariadbd_cpu()
        self.start_load = os.getloadavg()
        self.mysql: Any = None  # the sampler's own connections, opened in its thread
        self.postgres: Any = None

    def mariadbd_cpu(self) -> float:
        return proc_cpu(f"/proc/{self.mariadbd.pid}/stat") or 0.0 if self.mariadbd else 0.0

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        self.end_machine = machine_cpu()
        self.end_mariadbd = self.mariadbd_cpu()
        self.end_load = os.getloadavg()

    def find_processes(self) -> None:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            pid = proc.info["pid"]
            if pid in self.ours or pid in self.others:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "workers.app worker" not in cmdline and "hrsync bridge" not in cmdline:
                self.others.add(pid)
                continue
            with contextlib.suppress(psutil.Error):
                if proc.environ().get("HRSYNC_DATABASE_URL") == self.app_url:
                    self.ours[pid] = "bridge" if "bridge" in cmdline else "workers"
                    continue
            self.others.add(pid)

    def sample(self) -> None:
        self.find_processes()
        for pid, side in self.ours.items():
            self.counters[side].see(pid, proc_cpu(f"/proc/{pid}/stat"))
        if self.mariadbd is not None:
            with self.mysql.cursor() as cursor:
                cursor.execute("SELECT TID, DB FROM information_schema.PROCESSLIST WHERE DB IN (%s, %s)",
                               (self.app_db, self.biostar_db))
                threads = cursor.fetchall()
            for tid, db in threads:
                side = "app_db" if db == self.app_db else "biostar"
                self.counters[side].see((tid, db), proc_cpu(f"/proc/{self.mariadbd.pid}/task/{tid}/stat"))
        for (pid,) in self.postgres.execute("SELECT pid FROM pg_stat_activity WHERE datname = ?",
                                            self.hris_db).fetchall():
            self.counters["hris"].see(pid, proc_cpu(f"/proc/{pid}/stat"))
        self.timeline.append((time.time(), {side: c.total() for side, c in self.counters.items()}))

    def run(self) -> None:
        import pymysql
        import pyodbc

        self.mysql = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
        self.postgres = pyodbc.connect(PG_ODBC % "postgres", autocommit=True)
        try:
            self.loop()
        finally:
            self.mysql.close()
            self.postgres.close()

    def loop(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(Exception):  # a query that fails while the run ends: the next sample
                self.sample()
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        with contextlib.suppress(Exception):
            self.sample()

    def per_part(self, windows: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
        """CPU-seconds per part and side: each interval's increase goes to the part whose window holds the
        interval's middle (the rest to `other`: start-up, hand-offs, shutdown)."""
        result = {part: dict.fromkeys(SIDES, 0.0) for part in [*windows, "other"]}
        for (t0, before), (t1, after) in zip(self.timeline, self.timeline[1:], strict=False):
            middle = (t0 + t1) / 2
            part = next((p for p, (lo, hi) in windows.items() if lo <= middle <= hi), "other")
            for side in SIDES:
                result[part][side] += after[side] - before[side]
        return {part: {side: round(v, 2) for side, v in sides.items()} for part, sides in result.items()}


def part_of(stage: str, part: str) -> str | None:
    if stage == "extract" and part == "shards":
        return "extract"
    if stage == "merge" and part in ("imports", "day shards"):
        return "merge imports" if part == "imports" else "merge days"
    if stage == "notify" and part == "batches":
        return "notify"
    return None


def windows_and_rows(app_url: str, execution_id: str) -> tuple[dict[str, tuple[float, float]], dict[str, int]]:
    """Per part: its wall window (epoch seconds; `stage_breakdown` with publish at 0) and its rows."""
    windows: dict[str, tuple[float, float]] = {}
    for row in stage_breakdown(app_url, execution_id, 0.0):
        part = part_of(row["stage"], row["part"])
        if part is not None:
            lo, hi = windows.get(part, (row["from"], row["from"] + row["span"]))
            windows[part] = (min(lo, row["from"]), max(hi, row["from"] + row["span"]))
    rows = dict.fromkeys(PARTS, 0)
    for stage, shard, rows_in, rows_out in app_query(
            app_url, "SELECT stage, shard, rows_in, rows_out FROM execution_stages WHERE execution_id = %s "
                     "AND status = 'succeeded' AND shard NOT LIKE '@%%'", execution_id):
        part = "extract" if stage == "extract" else "notify" if stage == "notify" else \
            "merge imports" if shard.startswith("punches:") else "merge days"
        rows[part] += int(rows_in or 0) + int(rows_out or 0)
    return windows, rows


def database_size(app_db: str, app_url: str) -> dict[str, Any]:
    """Rows (estimated by InnoDB) and bytes (data + indexes) per table of the app database, largest first."""
    tables = app_query(app_url, "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH FROM "
                                "information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY 3 DESC", app_db)
    return {"bytes": sum(int(t[2] or 0) for t in tables),
            "tables": {t[0]: {"rows": int(t[1] or 0), "bytes": int(t[2] or 0)} for t in tables[:8]}}


def run_once(sources: Sources, sink: SmtpSink, workers: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    app_db = sources.app_db(f"capacity{workers}")
    with VirtualHost(args.keep) as vhost:
        env = sources.env(app_db, sink.url)
        hrsync_env = {**stack_env(env["HRSYNC_DATABASE_URL"], vhost.url), **env, "HRSYNC_LOG_LEVEL": "WARNING"}
        app_url = env["HRSYNC_DATABASE_URL"]
        mails_before = sink.count
        with Sampler(app_url, app_db, sources.biostar, sources.hris, args.interval) as sampler:
            chain = run_chain(hrsync_env, vhost.url, workers, folder, args.timeout, args.stall, vhost.name)
        if "stages" not in chain or chain.get("status") != "succeeded":
            return {"workers": workers, "error": chain.get("error"), "status": chain.get("status")}
        windows, rows = windows_and_rows(app_url, chain["execution_id"])
        busy = sampler.end_machine[0] - sampler.start_machine[0]
        return {
            "workers": workers, "employees": args.employees, "punches": args.punches,
            "seconds": round(chain["seconds"], 2),
            "wall": {part: round(hi - lo, 2) for part, (lo, hi) in windows.items()},
            "rows": rows, "mails": sink.count - mails_before,
            "cpu": sampler.per_part(windows),
            "cpu_total": {side: round(c.total(), 2) for side, c in sampler.counters.items()},
            "mariadbd_total": round(sampler.end_mariadbd - sampler.start_mariadbd, 2),
            "machine_busy": round(busy, 2), "sampled_s": round(sampler.timeline[-1][0] - sampler.timeline[0][0], 1),
            "samples": len(sampler.timeline),
            "load": [round(sampler.start_load[0], 2), round(sampler.end_load[0], 2)],
            "app_db": database_size(app_db, app_url),
        }


def report(run: dict[str, Any]) -> str:
    if "error" in run:
        return f"workers {run['workers']}: {run.get('status')}: {run['error']}"
    lines = [f"{run['employees']:,} employees, {run['punches']:,} punches, {run['workers']} worker(s): "
             f"{run['seconds']:.1f} s; load {run['load'][0]} → {run['load'][1]}; machine busy "
             f"{run['machine_busy']:.0f} CPU-s in {run['sampled_s']:.0f} s, {run['samples']} samples (all processes), "
             f"mariadbd {run['mariadbd_total']:.0f} CPU-s (all databases); mails {run['mails']:,}",
             f"{'part':<15}{'wall s':>8}{'rows':>11}" + "".join(f"{s:>10}" for s in SIDES)]
    for part in [*PARTS, "other"]:
        cpu = run["cpu"].get(part, {})
        lines.append(f"{part:<15}{run['wall'].get(part, 0):>8.1f}{run['rows'].get(part, 0):>11,}"
                     + "".join(f"{cpu.get(s, 0):>10.1f}" for s in SIDES))
    lines.append(f"{'total':<15}{run['seconds']:>8.1f}{'':>11}"
                 + "".join(f"{run['cpu_total'][s]:>10.1f}" for s in SIDES))
    size = run["app_db"]
    lines.append(f"app database: {size['bytes'] / 1e6:,.0f} MB; " + ", ".join(
        f"{name} {t['rows']:,} rows {t['bytes'] / 1e6:,.0f} MB" for name, t in size["tables"].items()))
    return "\n".join(lines)


# -- the fit ---------------------------------------------------------------------------------------------

def drivers(employees: int, punches: int) -> dict[str, float]:
    """What each part's work grows with: extract with employees, the imports with punches, day shards and
    notify with employee-days (a nightly reads a month) — the rows the runs' `execution_stages` counted."""
    return {"extract": employees, "merge imports": punches, "merge days": employees * DAYS_IN_MONTH,
            "notify": employees}


def fit(runs: list[dict[str, Any]], target: dict[str, int], target_seconds: float) -> str:
    """Per part and side, from the smallest and largest one-worker runs: CPU-s per row (the large run's), how
    CPU-s grows with the driver (`k` in CPU-s ∝ driver^k: 1 is linear, 2 quadratic) and the target's CPU-s
    extrapolated with that `k`; the workers needed (CPU-s / (seconds * the utilisation the large one-worker
    run reached; 1.0 on a machine of its own)); the database cores; the app database's size."""
    single = sorted((r for r in runs if r.get("workers") == 1 and "error" not in r), key=lambda r: r["punches"])
    if len(single) < 2:
        return "need two one-worker runs of different sizes"
    small, large = single[0], single[-1]
    d_small, d_large = drivers(small["employees"], small["punches"]), drivers(large["employees"], large["punches"])
    d_target = drivers(target["employees"], target["punches"])
    lines = [f"fit from {small['employees']:,}/{small['punches']:,} and {large['employees']:,}/"
             f"{large['punches']:,} (one worker); target {target['employees']:,} employees / "
             f"{target['punches']:,} punches in {target_seconds:g} s",
             f"{'part':<15}{'side':<9}{'CPU-s small':>12}{'CPU-s large':>12}{'µs/row large':>13}{'k':>6}"
             f"{'target CPU-s':>14}"]
    totals = dict.fromkeys(SIDES, 0.0)
    for part in PARTS:
        for side in ("workers", "app_db", "biostar", "hris"):
            c_small, c_large = small["cpu"][part][side], large["cpu"][part][side]
            growth = d_large[part] / d_small[part]
            k = math.log(c_large / c_small) / math.log(growth) if c_small > 0 and c_large > 0 else 1.0
            predicted = c_large * (d_target[part] / d_large[part]) ** k
            totals[side] += predicted
            lines.append(f"{part:<15}{side:<9}{c_small:>12.1f}{c_large:>12.1f}"
                         f"{c_large / d_large[part] * 1e6:>13.1f}{k:>6.2f}{predicted:>14.1f}")
    busy = sum(large["cpu"][p]["workers"] for p in PARTS) / sum(large["wall"].get(p, 0) for p in PARTS)
    lines.append(f"worker utilisation in the large one-worker run's parts: {busy:.2f} CPU-s per wall second")
    lines.append("target CPU-s: " + ", ".join(f"{side} {totals[side]:,.0f}" for side in ("workers", "app_db",
                                                                                          "biostar", "hris")))
    lines.append(f"worker processes for {target_seconds:g} s: {totals['workers'] / target_seconds:.1f} at 1.0 CPU-s "
                 f"per second each, {totals['workers'] / (target_seconds * busy):.1f} at the measured {busy:.2f}; "
                 f"app DB cores: {totals['app_db'] / target_seconds:.2f}; BioStar cores: "
                 f"{totals['biostar'] / target_seconds:.2f}")
    size_small, size_large = small["app_db"]["bytes"], large["app_db"]["bytes"]
    per_day = (size_large - size_small) / (d_large["merge days"] - d_small["merge days"])
    size_target = size_small + per_day * (d_target["merge days"] - d_small["merge days"])
    lines.append(f"app database after one month: {size_target / 1e9:.2f} GB ({per_day:.0f} bytes per employee-day)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--employees", type=int, default=5000)
    parser.add_argument("--punches", type=int, default=250_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker process counts, one run each")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between CPU samples")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--stall", type=float, default=120)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--fit", nargs="+", metavar="JSON", help="fit runs saved from earlier (their last lines)")
    parser.add_argument("--target-employees", type=int, default=100_000)
    parser.add_argument("--target-punches", type=int, default=5_000_000)
    parser.add_argument("--target-seconds", type=float, default=900)
    args = parser.parse_args()
    target = {"employees": args.target_employees, "punches": args.target_punches}
    if args.fit:
        runs = [run for path in args.fit for run in json.loads(Path(path).read_text().splitlines()[-1])]
        print(fit(runs, target, args.target_seconds))
        return
    print(f"python bench/capacity.py --employees {args.employees} --punches {args.punches} --workers "
          f"{' '.join(map(str, args.workers))}", flush=True)
    runs = []
    with (tempfile.TemporaryDirectory(prefix="hrsync-bench-capacity-") as tmp,
          Sources(args.employees, args.punches, 0.005, args.keep) as sources, SmtpSink() as sink):
        print(f"sources ready in {sources.setup_seconds:.1f}s", flush=True)
        for workers in args.workers:
            runs.append(run_once(sources, sink, workers, args, Path(tmp)))
            print(report(runs[-1]), flush=True)
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
