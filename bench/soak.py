"""Soak: many small executions through one worker process; does its memory or Redis stay flat?

One command:   python bench/soak.py [--executions 10000] [--rate 6] [--employees 40] [--keep]

A RabbitMQ vhost of its own, a fresh migrated MariaDB app database, a PostgreSQL HRIS of `--employees`
people, `hrsync bridge` and one gevent worker (`-P gevent -c 50`) as subprocesses. `--executions`
`hrsync.sync.requested {scope: hris}` events are published at `--rate` per second (the issue's
measurement: 40 people, 6/s). Every 10 % of the run: the worker's RSS (`/proc/<pid>/status` VmRSS),
Redis's pub/sub channels (`PUBSUB CHANNELS`, all of them: the worker is the only Celery client of this
run's results) and the executions finished. The baseline is the run's own warm-up: the RSS after the
first 10 %; target: every later sample within ±10 % of it, and the channel count not growing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.events import (  # noqa: E402 - after the path fix, so `python bench/soak.py` works
    REDIS_URL,
    Process,
    Publisher,
    VirtualHost,
    app_database,
    app_query,
    small_hris,
    stack_env,
    start_bridge,
    start_worker,
)

SAMPLES = 10


def rss_mb(pid: int) -> float:
    """The resident set of process `pid`, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def redis_channels() -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return len(client.pubsub_channels())
    finally:
        client.close()


def finished(app_url: str) -> int:
    return int(app_query(app_url, "SELECT COUNT(*) FROM executions WHERE status IN ('succeeded', 'failed')")[0][0])


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    with VirtualHost(args.keep) as vhost, app_database("soak", args.keep) as app_url, \
            small_hris(args.employees, args.keep) as hris_dsn:
        env = stack_env(app_url, vhost.url, HRSYNC_HRIS_ODBC=hris_dsn)
        bridge = start_bridge(env, folder)
        worker: Process | None = None
        publisher = Publisher(vhost.url)
        try:
            worker = start_worker(env, folder)
            samples.append({"published": 0, "finished": 0, "rss_mb": round(rss_mb(worker.process.pid), 1),
                            "redis_channels": redis_channels()})
            start = time.time()
            step = max(1, args.executions // SAMPLES)
            for i in range(args.executions):
                time.sleep(max(0.0, start + i / args.rate - time.time()))
                publisher.publish(str(uuid.uuid4()), {"scope": "hris"})
                if (i + 1) % step == 0:
                    samples.append({"published": i + 1, "finished": finished(app_url),
                                    "rss_mb": round(rss_mb(worker.process.pid), 1),
                                    "redis_channels": redis_channels()})
            deadline = time.monotonic() + args.timeout
            while finished(app_url) < args.executions and time.monotonic() < deadline:
                time.sleep(1)
            samples.append({"published": args.executions, "finished": finished(app_url),
                            "rss_mb": round(rss_mb(worker.process.pid), 1), "redis_channels": redis_channels()})
            statuses = app_query(app_url, "SELECT status, COUNT(*) FROM executions GROUP BY status")
        finally:
            publisher.close()
            if worker is not None:
                worker.stop()
            bridge.stop()
    warm = samples[1]["rss_mb"] if len(samples) > 1 else samples[0]["rss_mb"]
    later = [s["rss_mb"] for s in samples[2:]]
    return {"samples": samples, "statuses": statuses, "warm_rss_mb": warm,
            "rss_range_vs_warm": [round(min(later) / warm, 3), round(max(later) / warm, 3)] if later else None,
            "seconds": round(time.time() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--executions", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=6.0)
    parser.add_argument("--employees", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the last executions")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hrsync-soak-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
