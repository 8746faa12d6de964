"""Benchmark of a reorganisation: N `hrsync.employee.changed` published at once → every employee row and
its recent days recomputed.

One command: `python3 bench/reorganisation.py` (N = 10,000 by default). It makes a RabbitMQ vhost of its own
and a PostgreSQL HRIS of N employees (bench/pipeline.py), then, each against a fresh app database, with one
gevent worker (`-P gevent -c 50`) and one `hrsync bridge`:

1. baseline: the same work as one execution — one `sync.requested` `{scope: nightly}` over the same recent
   days for everyone (extract every employee, merge their days), publish → finished;
2. reorganisation: N `employee.changed` (one per employee) published as fast as pika confirms them
   (one publisher, one at a time: the publishing time is printed), then the time to the last employee row
   and day row written ("reflected": `employees.synced_at`, `attendance_days.computed_at`), counted from
   the first publish and from the last one; also printed: → the last execution finished (its notify stage,
   the mails about the recomputed days, comes after). The employee rows and the days recomputed are counted.

Target (issue #26): all reflected ≤ 10 s after the last publish (issue #15's was ≤ 30 s after the first).
Printed: the times, the ratio to the baseline, executions made, statuses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pymysql

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.events import Publisher, VirtualHost, app_query, stack_env, start_bridge, start_worker  # noqa: E402
from bench.pipeline import DATE_TO, SmtpSink, Sources  # noqa: E402

AT = dt.datetime.combine(DATE_TO + dt.timedelta(days=1), dt.time(6), dt.UTC)  # events' time: recent days = data
RECENT_DAYS = 7  # pipelines/plans.py EMPLOYEE_RECENT_DAYS: an employee.changed merges its last 7 days
EMPLOYEE_NO = "E{:06d}"  # bench/pipeline.py employee_rows
TARGET_AFTER_LAST = 10.0  # issue #26: all reflected within 10 s of the last publish


def finished(app_url: str) -> tuple[int, dict[str, int], Any]:
    """(executions, their count by status, the last finished_at) in the app database."""
    rows = app_query(app_url, "SELECT status, COUNT(*), MAX(finished_at) FROM executions GROUP BY status")
    statuses = {status: int(count) for status, count, _ in rows}
    last = max((at for _, _, at in rows if at is not None), default=None)
    return sum(statuses.values()), statuses, last


def run(url: str, sources_env: dict[str, str], folder: Path, publish: list[tuple[str, str, dict[str, Any]]],
        timeout: float) -> dict[str, Any]:
    """Publish the events with a worker and a bridge running; wait until every execution ended."""
    env = {**stack_env(sources_env["HRSYNC_DATABASE_URL"], url), **sources_env, "HRSYNC_HRIS_ABSENCES_QUERY": "off",
           "HRSYNC_LOG_LEVEL": "INFO"}  # the bridge logs when it is ready
    app_url = env["HRSYNC_DATABASE_URL"]
    worker = start_worker(env, folder, name=f"worker-{len(publish)}")
    bridge = start_bridge(env, folder)
    try:
        publisher = Publisher(url)
        started = time.time()
        for event_id, event_type, data in publish:
            publisher.publish(event_id, data, event_type, AT)
        published = time.time() - started
        publisher.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                admitted = int(app_query(app_url, "SELECT COUNT(*) FROM event_inbox")[0][0])
                count, statuses, last = finished(app_url)
            except pymysql.err.OperationalError as exc:  # the shared server full ("Too many connections")
                print(f"poll failed, trying again: {exc}", flush=True)
                continue
            if admitted >= len(publish) and count and statuses.get("succeeded", 0) + statuses.get("failed", 0) >= count:
                break
    finally:
        bridge.stop()
        worker.stop()
    count, statuses, last = finished(app_url)
    employees, synced = app_query(app_url, "SELECT COUNT(*), MAX(synced_at) FROM employees")[0]
    days, computed = app_query(app_url, "SELECT COUNT(DISTINCT employee_no, work_date), MAX(computed_at) "
                                        "FROM attendance_days")[0]
    reflected = max((at for at in (synced, computed) if at is not None), default=None)
    last_publish = started + published
    timeline = [  # per execution: events it took, s from the first publish to created / started / each stage
        {"events": int(events), "created": since(started, created), "started": since(started, began),
         "stages": {stage: [round(since(started, a), 1), round(since(started, b), 1)]
                    for stage, a, b in app_query(app_url, "SELECT stage, MIN(started_at), MAX(finished_at) "
                                                          "FROM execution_stages WHERE execution_id = %s "
                                                          "GROUP BY stage ORDER BY MIN(started_at)", execution_id)},
         "finished": since(started, ended)}
        for execution_id, events, created, began, ended in app_query(
            app_url, "SELECT e.id, COUNT(i.event_id), e.created_at, e.started_at, e.finished_at FROM executions e "
                     "LEFT JOIN event_inbox i ON i.execution_id = e.id "
                     "GROUP BY e.id, e.created_at, e.started_at, e.finished_at ORDER BY e.created_at")]
    return {"events": len(publish), "publish_s": published, "seconds": since(started, reflected),
            "after_last_s": since(last_publish, reflected), "finished_s": since(started, last),
            "finished_after_last_s": since(last_publish, last), "executions": count, "statuses": statuses,
            "employees": int(employees), "employee_days": int(days), "timeline": timeline}


def since(started: float, at: dt.datetime | None) -> float:
    """Seconds from `started` (epoch) to the naive-UTC instant `at` (inf when there is none)."""
    return at.replace(tzinfo=dt.UTC).timestamp() - started if at is not None else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--keep", action="store_true", help="keep the databases and the vhost")
    args = parser.parse_args()
    print(f"python bench/reorganisation.py --employees {args.employees}", flush=True)
    today = AT.date()
    first, last = today - dt.timedelta(days=RECENT_DAYS), today - dt.timedelta(days=1)
    tag = uuid.uuid4().hex[:6]
    baseline_events = [(f"bench-reorg-base-{tag}", "hrsync.sync.requested",
                        {"scope": "nightly", "from": first.isoformat(), "to": last.isoformat(), "notify": False})]
    reorg_events = [(f"bench-reorg-{n:06d}-{tag}", "hrsync.employee.changed", {"employee_no": EMPLOYEE_NO.format(n)})
                    for n in range(1, args.employees + 1)]
    with (tempfile.TemporaryDirectory(prefix="hrsync-bench-reorg-") as tmp, VirtualHost(args.keep) as vhost,
          Sources(args.employees, args.employees * 10, 0.05, args.keep) as sources, SmtpSink() as sink):
        folder = Path(tmp)
        print(f"sources ready in {sources.setup_seconds:.1f}s", flush=True)
        base = run(vhost.url, sources.env(sources.app_db("reorg_base"), sink.url), folder, baseline_events,
                   args.timeout)
        vhost.purge()
        reorg = run(vhost.url, sources.env(sources.app_db("reorg"), sink.url), folder, reorg_events, args.timeout)
    print(report(base, reorg))


def report(base: dict[str, Any], reorg: dict[str, Any]) -> str:
    lines = [f"{'run':<44}{'events':>8}{'execs':>7}{'employees':>10}{'emp-days':>10}{'publish s':>10}"
             f"{'reflected s':>12}{'after last':>11}{'finished s':>11}"]
    for name, r in (("baseline: one sync.requested (nightly)", base),
                    (f"reorganisation: {reorg['events']} employee.changed", reorg)):
        lines.append(f"{name:<44}{r['events']:>8}{r['executions']:>7}{r['employees']:>10}{r['employee_days']:>10}"
                     f"{r['publish_s']:>10.1f}{r['seconds']:>12.1f}{r['after_last_s']:>11.1f}{r['finished_s']:>11.1f}"
                     f"   {r['statuses']}")
    lines.append("(s from the first publish; 'after last': reflected, s after the last publish was confirmed)")
    for name, r in (("baseline", base), ("reorganisation", reorg)):
        lines.append(f"{name} executions (s from the first publish):")
        lines += [f"  {t['events']:>6} events  created {t['created']:>6.1f}  started {t['started']:>6.1f}  "
                  + "  ".join(f"{stage} {a}-{b}" for stage, (a, b) in t["stages"].items())
                  + f"  finished {t['finished']:>6.1f}" for t in r["timeline"]]
    ratio = reorg["seconds"] / base["seconds"] if base["seconds"] else float("inf")
    met = (reorg["after_last_s"] <= TARGET_AFTER_LAST and reorg["statuses"].get("failed", 0) == 0
           and reorg["employees"] >= reorg["events"] and reorg["employee_days"] >= reorg["events"] * RECENT_DAYS)
    lines += [f"reorganisation / baseline (from the first publish): {ratio:.2f}x",
              f"{'met   ' if met else 'MISSED'}  all {reorg['events']} reflected <= {TARGET_AFTER_LAST:.0f} s "
              f"after the last publish: {reorg['after_last_s']:.1f} s (published in {reorg['publish_s']:.1f} s)"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
