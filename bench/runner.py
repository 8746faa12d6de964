"""Benchmark of the shared async runner against the common recipe and plain asyncio (DESIGN §2).

One command, one run, one MariaDB:   python bench/runner.py [--calls 2000] [--concurrency 50]

Each case runs in a fresh subprocess (gevent cases monkey-patch first), does `SELECT 1` sequentially
and then from `--concurrency` overlapping callers, and reports calls/s, failures and open fds before
and after. Ratios are printed against the recipe and against plain asyncio measured in the same run;
absolute numbers depend on the (shared, noisy) machine and are not the point.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = ("recipe-gevent", "runner-gevent", "runner-gevent-1cpu", "runner-per-task-gevent", "runner-threads",
         "plain-asyncio")
SERVER = "mysql+aiomysql://root@127.0.0.1:3306/"


# -- the cases, each run in its own process ----------------------------------------------------------

def run_case(case: str, url: str, calls: int, concurrency: int) -> dict[str, Any]:
    if case.endswith("-1cpu"):  # what `taskset -c N hrsync worker` does: loop thread and hub on one core
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        case = case.removesuffix("-1cpu")
    if case.endswith("-gevent"):
        from gevent import monkey

        monkey.patch_all()
    if case == "runner-per-task-gevent":
        os.environ["HRSYNC_RUNNER_DISPOSE"] = "per_task"
    import psutil

    process = psutil.Process()
    call = {"recipe-gevent": recipe_caller, "plain-asyncio": None}.get(case, runner_caller)
    if case == "plain-asyncio":
        return plain_asyncio(url, calls, concurrency, process)
    assert call is not None
    one = call(url)
    one()  # warm-up: first connection, imports
    fds_before = process.num_fds()
    sequential = timed(lambda: [one() for _ in range(calls)], calls)
    per_caller = max(calls // concurrency, 1)
    failures, concurrent = overlapping(one, concurrency, per_caller, case.endswith("-gevent"))
    fds_after = process.num_fds()
    return {"sequential_per_s": sequential, "concurrent_per_s": concurrent, "failures": failures,
            "calls": calls + concurrency * per_caller, "fds_before": fds_before, "fds_after": fds_after}


def timed(action: Any, count: int) -> float:
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def overlapping(one: Any, concurrency: int, per_caller: int, greenlets: bool) -> tuple[int, float]:
    """`concurrency` callers each making `per_caller` calls; returns (failures, calls/s)."""
    failures = [0]

    def caller() -> None:
        for _ in range(per_caller):
            try:
                one()
            except Exception:
                failures[0] += 1

    started = time.perf_counter()
    if greenlets:
        import gevent

        jobs = [gevent.spawn(caller) for _ in range(concurrency)]
        gevent.joinall(jobs, timeout=300)
    else:
        import threading

        threads = [threading.Thread(target=caller) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.perf_counter() - started
    return failures[0], (concurrency * per_caller - failures[0]) / elapsed  # successful calls only


def runner_caller(url: str) -> Any:
    """Our design: `run_async` on the process's runner; the engine lives in its registry."""
    os.environ["HRSYNC_DB_POOL_SIZE"] = "60"
    os.environ["HRSYNC_DB_MAX_OVERFLOW"] = "0"
    from sqlalchemy import text

    from shared.database.db import engine_for
    from shared.runtime.runner import run_async

    async def select_one() -> int:
        engine = await engine_for(url)
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT 1"))).scalar_one())

    return lambda: run_async(select_one())


def recipe_caller(url: str) -> Any:
    """The widely copied recipe of DESIGN §2, faithfully: per-call loop juggling and dispose."""
    import asyncio
    import concurrent.futures

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, pool_size=60, max_overflow=0)

    async def select_one() -> int:
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT 1"))).scalar_one())
        finally:
            await engine.dispose()

    def _run_async(coro: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            try:
                loop = asyncio.get_event_loop()
                if loop.is_closed():
                    raise RuntimeError("closed")
            except RuntimeError:
                loop = asyncio.new_event_loop()
                asyncio.set_event_loop(loop)
            return loop.run_until_complete(coro)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coro).result()

    def call() -> int:
        coro = select_one()
        try:
            return int(_run_async(coro))
        except Exception:
            coro.close()
            raise

    return call


def plain_asyncio(url: str, calls: int, concurrency: int, process: Any) -> dict[str, Any]:
    """The ceiling: one loop, no gevent, no thread hop; awaiting directly."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main() -> dict[str, Any]:
        engine = create_async_engine(url, pool_size=60, max_overflow=0)

        async def one() -> int:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT 1"))).scalar_one())

        await one()
        fds_before = process.num_fds()
        started = time.perf_counter()
        for _ in range(calls):
            await one()
        sequential = calls / (time.perf_counter() - started)
        per_caller = max(calls // concurrency, 1)
        failures = 0

        async def caller() -> None:
            nonlocal failures
            for _ in range(per_caller):
                try:
                    await one()
                except Exception:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        concurrent = (concurrency * per_caller - failures) / (time.perf_counter() - started)
        fds_after = process.num_fds()
        await engine.dispose()
        return {"sequential_per_s": sequential, "concurrent_per_s": concurrent, "failures": failures,
                "calls": calls + concurrency * per_caller, "fds_before": fds_before, "fds_after": fds_after}

    return asyncio.run(main())


# -- the orchestrator --------------------------------------------------------------------------------

def measure(case: str, url: str, calls: int, concurrency: int) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--case", case, "--url", url,
            "--calls", str(calls), "--concurrency", str(concurrency)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HRSYNC_LOG_LEVEL": "ERROR"})
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def report(results: dict[str, dict[str, Any]]) -> str:
    base, ceiling = results["recipe-gevent"], results["plain-asyncio"]
    lines = [f"{'case':<24}{'seq/s':>9}{'conc/s':>9}{'fails':>8}{'fds':>10}"
             f"{'seq/recipe':>12}{'seq/plain':>11}{'conc/plain':>12}"]
    for case, r in results.items():
        if "error" in r:
            lines.append(f"{case:<24} error: {r['error']}")
            continue

        def ratio(a: float, b: dict[str, Any], key: str) -> str:
            return f"{a / b[key]:.2f}x" if b.get(key) else "-"

        lines.append(
            f"{case:<24}{r['sequential_per_s']:>9.0f}{r['concurrent_per_s']:>9.0f}"
            f"{r['failures']:>5}/{r['calls']:<5}{r['fds_before']:>4}->{r['fds_after']:<4}"
            f"{ratio(r['sequential_per_s'], base, 'sequential_per_s'):>9}"
            f"{ratio(r['sequential_per_s'], ceiling, 'sequential_per_s'):>11}"
            f"{ratio(r['concurrent_per_s'], ceiling, 'concurrent_per_s'):>12}"
        )
    runner = results["runner-gevent"]
    targets = [
        ("runner >= 3x recipe sequentially", runner["sequential_per_s"] / base["sequential_per_s"], 3.0),
        ("runner >= 0.8x plain asyncio sequentially",
         runner["sequential_per_s"] / ceiling["sequential_per_s"], 0.8),
        ("runner >= 0.7x plain asyncio at 50 concurrent",
         runner["concurrent_per_s"] / ceiling["concurrent_per_s"], 0.7),
    ]
    lines.append("")
    for name, value, target in targets:
        lines.append(f"{'met ' if value >= target else 'MISSED'}  {name}: {value:.2f}x")
    lines.append(f"{'met ' if runner['failures'] == 0 else 'MISSED'}  runner failures: {runner['failures']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.url, args.calls, args.concurrency)))
        return

    import pymysql

    database = f"hrsync_bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE `{database}`")
    try:
        results = {case: measure(case, SERVER + database, args.calls, args.concurrency) for case in CASES}
    finally:
        admin.cursor().execute(f"DROP DATABASE `{database}`")
        admin.close()
    print(f"python bench/runner.py --calls {args.calls} --concurrency {args.concurrency}")
    print(report(results))


if __name__ == "__main__":
    main()
