"""Benchmark of the operator console's executions list on a large app database (issue #14).

One command, one run, one MariaDB:   python bench/console.py [--executions 100000] [--stages 20] [--requests 200]

Fills a fresh, migrated MariaDB app database with `--executions` executions and `--stages` stage rows each
(`INSERT … SELECT` from MariaDB's sequence tables, in chunks: no row goes through Python), then times, in
this process, the console app (`web.app.create_app`, signed in, through Starlette's in-process ASGI client: no
network) answering the executions page and `GET /api/executions` — first page and deep keyset pages, with
and without a status filter — and, as the baseline in the same run, the bare keyset SELECT of the same page
through the same runner (`web.queries.execution_page`). Prints p50/p95 in ms and the ratios page/baseline.
The database is dropped at the end (`--keep` keeps it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERVER = {"host": "127.0.0.1", "port": 3306, "user": "root"}
CHUNK = 10_000  # executions per INSERT … SELECT (their stage rows go in the same chunks)
PAGE = 50  # rows per page, the console's default
STATUSES = "ELT(1 + seq % 100 DIV 90 + seq % 100 DIV 97 + seq % 100 DIV 99, 'succeeded', 'failed', 'cancelled', " \
           "'running')"  # 90 % succeeded, 7 % failed, 2 % cancelled, 1 % running
PASSWORD = secrets.token_urlsafe(16)


def admin(database: str | None = None) -> Any:
    return pymysql.connect(**SERVER, database=database, autocommit=True)


def fill(database: str, executions: int, stages: int) -> float:
    """Insert the executions (one every 5 minutes back from now, newest first) and `stages` rows each; seconds."""
    started = time.perf_counter()
    with admin(database) as conn, conn.cursor() as cur:
        for first in range(1, executions + 1, CHUNK):
            last = min(first + CHUNK - 1, executions)
            cur.execute(
                "INSERT INTO executions (id, kind, `trigger`, event_id, attempt, status, params, created_at, "
                "started_at, finished_at, failed_stage, error) "
                f"SELECT UUID(), ELT(1 + seq % 3, 'nightly', 'hris', 'attendance'), "
                f"ELT(1 + seq % 4, 'schedule', 'event', 'replay', 'manual'), CONCAT('bench-', seq), 1, {STATUSES}, "
                "'{\"scope\": \"nightly\"}', UTC_TIMESTAMP(6) - INTERVAL seq * 5 MINUTE, "
                "UTC_TIMESTAMP(6) - INTERVAL seq * 5 MINUTE + INTERVAL 1 SECOND, "
                "UTC_TIMESTAMP(6) - INTERVAL seq * 5 MINUTE + INTERVAL 90 SECOND, "
                "IF(seq % 100 BETWEEN 90 AND 96, 'merge', NULL), "
                "IF(seq % 100 BETWEEN 90 AND 96, 'merge[k1]: ValueError: boom', NULL) "
                f"FROM seq_{first}_to_{last}")
            cur.execute(
                "INSERT INTO execution_stages (execution_id, stage, shard, attempt, task_id, status, started_at, "
                "finished_at, duration_ms, rows_in, rows_out, result) "
                "SELECT e.id, ELT(1 + s.seq % 3, 'extract', 'merge', 'notify'), CONCAT('shard-', s.seq), 1, "
                "CONCAT('task-', s.seq), 'succeeded', e.started_at + INTERVAL s.seq SECOND, "
                "e.started_at + INTERVAL s.seq + 1 SECOND, 1000, 10, 10, '{}' "
                f"FROM executions e JOIN seq_1_to_{stages} s "
                f"WHERE e.event_id IN (SELECT CONCAT('bench-', seq) FROM seq_{first}_to_{last})")
            print(f"  {last:>7} executions filled ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        cur.execute("ANALYZE TABLE executions, execution_stages")
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of `samples` (seconds) in ms."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000


def timed(action: Callable[[int], Any], requests: int) -> list[float]:
    action(0)  # warm-up
    samples = []
    for n in range(requests):
        started = time.perf_counter()
        action(n)
        samples.append(time.perf_counter() - started)
    return samples


def deep_cursors(database: str, status: str | None, count: int) -> list[str]:
    """Cursors (the console's `created_at|id` form) at random positions in the oldest tenth of the list."""
    from web.queries import encode_cursor

    where, args = ("WHERE status = %s", [status]) if status else ("", [])
    with admin(database) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM executions {where}", args)
        total = int(cur.fetchone()[0])
        cursors = []
        end = total - PAGE - 1  # a whole page after each cursor
        oldest = range(max(0, min(total * 9 // 10, end - 1)), max(1, end))
        for offset in random.Random(1).sample(oldest, min(count, len(oldest))):
            cur.execute(f"SELECT created_at, id FROM executions {where} ORDER BY created_at DESC, id DESC "
                        f"LIMIT 1 OFFSET {offset}", args)
            created_at, execution_id = cur.fetchone()
            cursors.append(encode_cursor({"created_at": created_at.replace(tzinfo=dt.UTC),
                                          "id": execution_id}))
    return cursors


def signed_in_client() -> Any:
    """Starlette's in-process client on the console app, signed in as an operator."""
    import re

    with warnings.catch_warnings():  # Starlette warns about httpx at import
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from web.app import create_app
    from web.users import UserStore, hash_password

    client = TestClient(create_app(UserStore({"bench": (hash_password(PASSWORD), "operator")}), "bench-secret"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    signed = client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token.group(1)},
                         follow_redirects=False)
    assert signed.status_code == 303, signed.text
    return client


def measure(database: str, requests: int) -> list[dict[str, Any]]:
    """p50/p95 of page, API and bare SELECT for each case; rows for the table."""
    from web.queries import decode_cursor, execution_page

    from shared.runtime.runner import run_async

    client = signed_in_client()
    rows = []
    for status in (None, "failed"):
        deep = deep_cursors(database, status, 20)
        for depth, cursors in (("first page", [None]), ("deep pages", deep)):
            def query(n: int, cursors: list[str | None] = cursors, status: str | None = status) -> dict[str, str]:
                found = {"limit": str(PAGE)}
                if status:
                    found["status"] = status
                if cursors[n % len(cursors)]:
                    found["cursor"] = str(cursors[n % len(cursors)])
                return found

            def page(n: int, query: Callable[[int], dict[str, str]] = query) -> None:
                answer = client.get("/executions", params=query(n))
                assert answer.status_code == 200, answer.text[:300]

            def api(n: int, query: Callable[[int], dict[str, str]] = query) -> None:
                answer = client.get("/api/executions", params=query(n))
                assert answer.status_code == 200, answer.text[:300]
                assert len(answer.json()) == PAGE

            def bare(n: int, query: Callable[[int], dict[str, str]] = query) -> None:
                args = query(n)
                after = decode_cursor(args["cursor"]) if "cursor" in args else None
                assert len(run_async(execution_page(status=args.get("status"), after=after, limit=PAGE + 1))) \
                    >= PAGE, args

            base = percentiles(timed(bare, requests))
            for name, action in (("page /executions", page), ("GET /api/executions", api)):
                p50, p95 = percentiles(timed(action, requests))
                rows.append({"what": name, "case": f"{depth}, {'status=' + status if status else 'no filter'}",
                             "p50": p50, "p95": p95, "base_p50": base[0], "base_p95": base[1]})
    client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--stages", type=int, default=20, help="stage rows per execution")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    options = parser.parse_args()
    database = f"hrsync_bench_console_{uuid.uuid4().hex[:8]}"
    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    os.environ.update(HRSYNC_DATABASE_URL=f"mysql+aiomysql://root@127.0.0.1:3306/{database}",
                      HRSYNC_LOG_LEVEL="WARNING", HRSYNC_HOME=tempfile.mkdtemp(prefix=database))
    try:
        from shared.database import migrations
        from shared.runtime import runner

        runner.run_async(migrations.upgrade())
        seconds = fill(database, options.executions, options.stages)
        print(f"filled {options.executions:,} executions and {options.executions * options.stages:,} stage rows "
              f"in {seconds:.0f} s")
        rows = measure(database, options.requests)
        print(f"\n{options.requests} timed requests per case, {PAGE} rows a page; server time in-process (ms)\n")
        print("| request | case | p50 | p95 | bare SELECT p50 | p95 | p95 ratio |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['what']} | {r['case']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['base_p50']:.1f} | "
                  f"{r['base_p95']:.1f} | {r['p95'] / r['base_p95']:.2f}x |")
        worst = max(r["p95"] for r in rows)
        print(f"\nworst p95: {worst:.1f} ms (target < 300 ms: {'met' if worst < 300 else 'MISSED'})")
        runner.shutdown()
    finally:
        if not options.keep:
            with admin() as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{database}`")


if __name__ == "__main__":
    main()
