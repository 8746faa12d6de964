"""Soak: many executions through one worker process; do its memory and Redis stay flat?

One command:   python bench/soak.py [--executions 10000] [--rate 6] [--employees 40] [--scope hris] [--samples 20]
               python bench/soak.py --scope nightly --executions 600 --rate 1   # every stage of a nightly

A redis-server of its own (a free loopback port, no persistence) as the result backend, a RabbitMQ vhost
of its own, a fresh migrated MariaDB app database, a PostgreSQL HRIS of `--employees` people with absences
(`hrsync_absences`: one approved absence per 10 people, read as hrsync reads it by default — the extract
then has two shards, so a chord), `hrsync bridge` and one gevent worker (`-P gevent -c 50`) as
subprocesses. The worker runs with a user's defaults; nothing is turned off.

`--scope hris` (the issue's measurement: 40 people, 6/s): `hrsync.sync.requested {scope: hris}` events.
`--scope nightly`: `{scope: nightly, from: 2026-03-01, to: 2026-03-31}` events, every stage of a nightly
(extract, merge with its imports and day shards, notify to an SMTP sink in this process) over a BioStar
month of `--punches` logs (bench/pipeline.py's data set) — each stage fans out, so every execution makes
several chords.

`--samples` times in the run (and once drained): the executions finished, the worker's and the bridge's
RSS (`/proc/<pid>/status` VmRSS), what the worker holds (`celery inspect hrsync_memory`, workers/lifecycle.py:
Python objects, greenlets, Celery result backends and their pending results and subscriptions; `-` when the
worker did not answer in time) and, all of them this run's alone, Redis's pub/sub channels (`PUBSUB
CHANNELS`) and their subscriptions (`PUBSUB NUMSUB`), its clients (`INFO clients`, without the sampler),
the connections and subscriptions of the worker and of the bridge (`CLIENT LIST`, matched to the
processes' sockets), the connections it accepted so far (`total_connections_received`), the keys
(`DBSIZE`) and Redis's memory. Each sample is printed as it is taken.
After the processes stop: the keys by kind and how many have no expiry, and any channel left.

The baseline is the run's own warm-up: the first sample at or after 10 % of the executions; target:
every later worker RSS within ±10 % of it, and the channel count not growing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.events import (  # noqa: E402 - after the path fix, so `python bench/soak.py` works
    Process,
    Publisher,
    VirtualHost,
    app_query,
    bench_main,
    stack_env,
    start_bridge,
    start_worker,
)
from bench.pipeline import DATE_FROM, DATE_TO, PG_ODBC, SmtpSink, Sources  # noqa: E402
from shared.config.settings import DEFAULT_HRIS_ABSENCES_QUERY  # noqa: E402

SAMPLES = 20
MB = 1024 * 1024
HEX_RUN = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")  # a task or execution id


class OwnRedis:
    """A redis-server of this run alone (a free loopback port, no persistence, its files in `folder`), so
    that its channels, clients and keys are this run's; `sample()` reads them, per hrsync process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self.server: Process | None = None
        self.client: Any = None
        self.own_id = 0

    def __enter__(self) -> OwnRedis:
        import redis

        with contextlib.closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = Process("redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                                        "--daemonize", "no"], {}, self.folder)
        try:
            self.server.wait_for("Ready to accept connections", timeout=30)
            self.client = redis.Redis(host="127.0.0.1", port=self.port, db=0)
            self.own_id = self.client.client_id()
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def sample(self, pids: dict[str, int]) -> dict[str, Any]:
        """Channels, their subscriptions (`PUBSUB NUMSUB`), clients (`INFO clients`, without this sampler's
        connection), the connections and subscriptions of each of `pids` (name → pid), the connections
        accepted since the start (without the sampler's), keys, memory."""
        channels = self.client.pubsub_channels()
        numsub = sum(n for _, n in self.client.pubsub_numsub(*channels)) if channels else 0
        owner: dict[int, str] = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.NoSuchProcess):  # a process that died: its clients count as other
                owner.update((conn.laddr.port, name) for conn in psutil.Process(pid).net_connections("tcp")
                             if conn.raddr and conn.raddr.port == self.port)
        per: dict[str, list[int]] = {name: [0, 0] for name in [*pids, "other"]}  # name → [connections, subs]
        for client in self.client.client_list():
            if int(client["id"]) != self.own_id:
                counts = per[owner.get(int(client["addr"].rsplit(":", 1)[1]), "other")]
                counts[0] += 1
                counts[1] += int(client["sub"]) + int(client["psub"])
        return {"channels": len(channels), "numsub": numsub,
                "clients": int(self.client.info("clients")["connected_clients"]) - 1,
                **{f"{name}_conns": counts[0] for name, counts in per.items()},
                **{f"{name}_subs": counts[1] for name, counts in per.items()},
                "connects": int(self.client.info("stats")["total_connections_received"]) - 1,  # since start
                "keys": int(self.client.dbsize()),
                "redis_mb": round(int(self.client.info("memory")["used_memory"]) / MB, 1)}

    def leftovers(self) -> dict[str, Any]:
        """The keys by kind (ids replaced by `*`), with how many of each have no expiry; channels left."""
        kinds: dict[str, list[int]] = {}
        keys = [key.decode() for key in self.client.scan_iter(count=1000)]
        for at in range(0, len(keys), 1000):
            batch = keys[at:at + 1000]
            pipe = self.client.pipeline(transaction=False)
            for key in batch:
                pipe.ttl(key)
            for key, ttl in zip(batch, pipe.execute(), strict=True):
                kind = kinds.setdefault(HEX_RUN.sub("*", key), [0, 0])
                kind[0] += 1
                kind[1] += ttl == -1
        return {"keys": {kind: {"count": n, "no_expiry": forever} for kind, (n, forever) in sorted(kinds.items())},
                "channels": sorted(c.decode() for c in self.client.pubsub_channels())[:20]}

    def __exit__(self, *_: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.server is not None:
            self.server.stop()


def rss_mb(pid: int) -> float:
    """The resident set of process `pid`, in MB (0 when it has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def finished(app_url: str) -> int:
    return int(app_query(app_url, "SELECT COUNT(*) FROM executions WHERE status IN ('succeeded', 'failed')")[0][0])


def add_absences(dsn: str, employees: int) -> None:
    """The HRIS's absences view as hrsync reads it by default (tests/integration/hris_fixtures.py's table),
    with one approved week off in March for every 10th person."""
    import pyodbc

    from pipelines.extract.rows import ABSENCE_COLUMNS

    rows = [(f"A{i:06d}", f"E{i:06d}", "vacation", dt.date(2026, 3, 9), dt.date(2026, 3, 13), "full", "approved",
             dt.datetime(2026, 2, 1, 8)) for i in range(1, employees + 1, 10)]
    with contextlib.closing(pyodbc.connect(dsn, autocommit=False)) as conn:
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE hr_leave (absence_id VARCHAR(64), employee_no VARCHAR(200), kind VARCHAR(64), "
                       "date_from DATE, date_to DATE, part VARCHAR(8), status VARCHAR(16), updated_at TIMESTAMP(6))")
        cursor.execute(f"CREATE VIEW hrsync_absences AS SELECT {', '.join(ABSENCE_COLUMNS)} FROM hr_leave")
        if rows:
            cursor.executemany(f"INSERT INTO hr_leave ({', '.join(ABSENCE_COLUMNS)}) VALUES "
                               f"({', '.join('?' * len(ABSENCE_COLUMNS))})", rows)
        conn.commit()


class WorkerMemory:
    """Asks the worker for `hrsync_memory` (workers/lifecycle.py) over the run's broker (Celery remote control)."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery

        self.app = Celery("hrsync-soak-sampler", broker=broker_url)
        self.app.conf.update(accept_content=["json"], task_serializer="json", result_serializer="json")

    def sample(self, mark: bool) -> dict[str, Any]:
        """The report's counts, the 6 most numerous types and the 12 that grew most since the last `mark`."""
        replies = self.app.control.broadcast("hrsync_memory", reply=True, timeout=30,
                                             arguments={"top": 12, "mark": mark})
        for reply in replies:
            for report in reply.values():
                return {**{key: report[key] for key in ("objects", "greenlets", "backends", "pending_results",
                                                        "subscribed", "drainers")},
                        "top": dict(list(report["top"].items())[:6]), "grown": report["grown"]}
        return {}

    def close(self) -> None:
        self.app.close()


def event_data(scope: str) -> dict[str, Any]:
    if scope == "nightly":
        return {"scope": "nightly", "from": DATE_FROM.isoformat(), "to": DATE_TO.isoformat()}
    return {"scope": scope}


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    punches = args.punches if args.scope == "nightly" else args.employees * 2
    with OwnRedis(folder) as own_redis, VirtualHost(args.keep) as vhost, \
            Sources(args.employees, punches, 0.005, args.keep) as sources, SmtpSink() as sink:
        add_absences(PG_ODBC % sources.hris, args.employees)
        source_env = sources.env(sources.app_db("soak"), sink.url)
        source_env.pop("HRSYNC_LOG_LEVEL")  # a user's default
        app_url = source_env["HRSYNC_DATABASE_URL"]
        env = {**stack_env(app_url, vhost.url, HRSYNC_RESULT_BACKEND=own_redis.url), **source_env,
               "HRSYNC_HRIS_ABSENCES_QUERY": DEFAULT_HRIS_ABSENCES_QUERY}  # stack_env turns absences off
        bridge = start_bridge(env, folder)
        worker: Process | None = None
        publisher = Publisher(vhost.url)
        memory = WorkerMemory(vhost.url)

        warm_at = args.executions / 10  # the baseline: the first sample at or after it (marks the object counts)

        def sample(published: int) -> None:
            assert worker is not None
            pids = {"worker": worker.process.pid, "bridge": bridge.process.pid}
            samples.append({"at": time.strftime("%H:%M:%S", time.gmtime()), "published": published,
                            "finished": finished(app_url), "worker_rss_mb": rss_mb(pids["worker"]),
                            "bridge_rss_mb": rss_mb(pids["bridge"]), **own_redis.sample(pids),
                            **memory.sample(mark=not any(s["published"] >= warm_at for s in samples))})
            print(json.dumps(samples[-1]), flush=True)

        try:
            worker = start_worker(env, folder)
            sample(0)
            start = time.time()
            step = max(1, args.executions // args.samples)
            for i in range(args.executions):
                time.sleep(max(0.0, start + i / args.rate - time.time()))
                publisher.publish(str(uuid.uuid4()), event_data(args.scope))
                if (i + 1) % step == 0:
                    sample(i + 1)
            published_s = time.time() - start
            deadline = time.monotonic() + args.timeout
            while finished(app_url) < args.executions and time.monotonic() < deadline:
                time.sleep(1)
            sample(args.executions)
            statuses = app_query(app_url, "SELECT status, COUNT(*) FROM executions GROUP BY status")
        finally:
            memory.close()
            with contextlib.suppress(Exception):  # the broker may have dropped the idle publisher while draining
                publisher.close()
            if worker is not None:
                worker.stop()
            bridge.stop()
        leftovers = own_redis.leftovers()  # the processes stopped: what they left in Redis
        mails = sink.count
    warm = next((s for s in samples if s["published"] >= args.executions / 10), samples[-1])
    later = samples[samples.index(warm) + 1:]
    return {"scope": args.scope, "samples": samples, "statuses": statuses, "warm_up": warm["published"],
            "worker_rss_vs_warm": [round(min(s["worker_rss_mb"] for s in later) / warm["worker_rss_mb"], 3),
                                   round(max(s["worker_rss_mb"] for s in later) / warm["worker_rss_mb"], 3)]
            if later else None,
            "published_s": round(published_s, 1), "seconds": round(time.time() - start, 1),
            "mails": mails, "after_stop": leftovers}


COLUMNS = ("at", "published", "finished", "worker_rss_mb", "bridge_rss_mb", "objects", "greenlets", "backends",
           "pending_results", "channels", "numsub", "clients", "worker_conns", "worker_subs", "bridge_conns",
           "bridge_subs", "other_conns", "connects", "keys", "redis_mb")


def table(samples: list[dict[str, Any]]) -> str:
    """The samples as a markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(s.get(c, "-")) for c in COLUMNS) + " |" for s in samples]
    return "\n".join(lines)


def main() -> None:
    result = bench_main(__doc__, "soak", run, timeout=600.0, executions=10000, rate=6.0, employees=40,
                        samples=SAMPLES, scope="hris", punches=40 * 44)
    print(table(result["samples"]))


if __name__ == "__main__":
    main()
