"""Benchmark of back-to-back `punches.imported`: each event published as soon as the previous one's rows show.

One command:   python bench/back_to_back.py [--events 100] [--team 5] [--poll 0.02] [--keep]

The stack of bench/burst.py: a RabbitMQ vhost of its own, a fresh migrated MariaDB app database with
`--events x --team` employees (each with a BioStar user id), a fresh BioStar MariaDB database, `hrsync
bridge` and one gevent worker (`-P gevent -c 50`) as subprocesses. As the foreign system of issue 26
does: per event, a team of `--team` people (a fresh team each time, so no punch is a double tap of an
earlier one) gets one BioStar log each at the current second, then one `hrsync.punches.imported`
`{from: at - 1 s, to: at + 1 s, devices: [7]}` is published (pika, confirms); the relay then polls
`attendance_days` every `--poll` seconds until every member of the team has a row with `punch_count >= 1`,
and publishes the next event at once. Printed: publish → the team's rows visible, p50/p99/max, and the
executions by status. Targets (issue 26): p50 <= 1 s, p99 <= 2 s.

For a baseline in the same sitting, run this file from a checkout of the commit to compare against (the
subprocesses run the code of the checkout the file is in).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.burst import Relay, punch_stack, seed_employees  # noqa: E402 - after the path fix
from bench.events import app_query, bench_main, percentile  # noqa: E402


def rows_shown(app_url: str, employees: list[str], poll: float, timeout: float) -> float | None:
    """Poll until every one of `employees` has a day row with a punch; when that was first seen (or None)."""
    marks = ", ".join(["%s"] * len(employees))
    sql = f"SELECT COUNT(DISTINCT employee_no) FROM attendance_days WHERE punch_count >= 1 AND employee_no IN ({marks})"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app_query(app_url, sql, *employees)[0][0] == len(employees):
            return time.time()
        time.sleep(poll)
    return None


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values),
            "p50_s": round(statistics.median(values), 3) if values else None,
            "p99_s": round(percentile(values, 0.99), 3) if values else None,
            "max_s": round(max(values), 3) if values else None,
            "mean_s": round(statistics.fmean(values), 3) if values else None}


def epoch(value: dt.datetime | None) -> float | None:
    return None if value is None else value.replace(tzinfo=dt.UTC).timestamp()


def anatomy(app_url: str, events: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Where each event's time went, from the database's own timestamps (medians over the events, seconds):
    publish → admitted (inbox row), admitted → claimed (execution `started_at`: the wait for the kind),
    claimed → merge done, merge done → rows seen by the poll, and how long the execution went on after
    the rows showed (notify, finish: what the next event used to wait for)."""
    rows = app_query(app_url, """
        SELECT i.event_id, i.received_at, e.started_at, e.finished_at,
               (SELECT MAX(s.finished_at) FROM execution_stages s WHERE s.execution_id = e.id
                  AND s.stage = 'merge' AND s.shard = '@done' AND s.status = 'succeeded')
        FROM event_inbox i JOIN executions e ON e.id = i.execution_id""")
    parts: dict[str, list[float]] = {"publish_to_admitted": [], "admitted_to_claimed": [],
                                     "claimed_to_merge_done": [], "merge_done_to_rows_seen": [],
                                     "rows_seen_to_execution_end": []}
    for event_id, received, started, finished, merged in rows:
        if event_id not in events:
            continue
        sent, seen = events[event_id]
        marks = [sent, epoch(received), epoch(started), epoch(merged), seen]
        for values, (a, b) in zip(list(parts.values())[:4], itertools.pairwise(marks), strict=True):
            if a is not None and b is not None:
                values.append(b - a)
        if finished is not None:
            parts["rows_seen_to_execution_end"].append((epoch(finished) or 0.0) - seen)
    return {name: round(statistics.median(values), 3) if values else None for name, values in parts.items()}


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    team = int(args.team)
    with punch_stack("b2b", args.keep, folder, lambda url: seed_employees(url, int(args.events) * team)) as stack, \
            contextlib.closing(Relay(stack.vhost_url, stack.biostar_url)) as relay:
        app_url, employees = stack.app_url, stack.employees
        latencies: list[float] = []
        timed: dict[str, tuple[float, float]] = {}
        missed = 0
        for k in range(int(args.events)):
            members = employees[k * team:(k + 1) * team]
            event_id, sent = relay.team([str(int(no[1:])) for no in members])
            seen = rows_shown(app_url, members, args.poll, args.timeout)
            if seen is None:
                missed += 1
                continue
            latencies.append(seen - sent)
            timed[event_id] = (sent, seen)
        time.sleep(3)  # the last execution's end, for the anatomy
        worker_log = (folder / "worker.log").read_text(errors="replace")
        return {
            "code": str(ROOT),
            "events": int(args.events), "team": team, "missed": missed,
            "publish_to_rows": summary(latencies),
            "first_10_s": [round(v, 3) for v in latencies[:10]],
            "slowest_5": sorted(((round(v, 3), i) for i, v in enumerate(latencies)), reverse=True)[:5],
            "anatomy_median_s": anatomy(app_url, timed),
            "executions": app_query(app_url, "SELECT status, COUNT(*) FROM executions GROUP BY status"),
            "worker_log": {"start.woken": worker_log.count("start.woken"),
                           "deferred": worker_log.count('"deferred"')},
        }


def main() -> None:
    result = bench_main(__doc__, "back_to_back", run, timeout=60.0, events=100, team=5, poll=0.02)
    rows = result["publish_to_rows"]
    if rows["p50_s"] is not None:
        print(f"back-to-back publish -> rows: p50 {rows['p50_s']} s, p99 {rows['p99_s']} s "
              f"(targets 1 s / 2 s), {result['missed']} missed")


if __name__ == "__main__":
    main()
