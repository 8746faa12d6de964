"""Benchmark of the event plane: bridge throughput against a bare pika consumer, and event → stage latency.

One command:   python bench/events.py [--events 3000] [--latency-events 200] [--keep]

Everything runs in a RabbitMQ virtual host of its own (made with `rabbitmqctl`, deleted at the end), so
other people's bridges and workers on the same broker neither take nor see these events; without
`rabbitmqctl` it falls back to `/` and purges the hrsync queues before and after. The app database is a
fresh, migrated MariaDB database.

1. Throughput. `--events` events (`--type`: `sync.requested`, or the coalesced `punches` / `employee`) are
   published (pika, confirms, mandatory) to `hrsync.events` while nothing consumes; they land in
   `hrsync.bridge` and, in the same publish, in two bench queues (quorum, bound to everything). Each
   consumer runs in a fresh subprocess, with the bridge's prefetch:
   - the **floor** (the target's reference): a bare pika consumer that keeps the bridge's contract — one
     durable inbox row per event (`event_inbox` of a migrated app database) in one transaction per prefetch
     window, then `basic_ack(multiple=True)` after the COMMIT; timed from its first delivery to its last ack;
   - a bare pika consumer that only acks (printed for reference: no durability at all);
   - `hrsync bridge`, doing what it does in production — validate, inbox + execution rows, launch the
     Celery canvas (publish confirmed), mark launched, ack — timed from its `bridge.consuming` log line to
     its last batch's log line (just before that batch's ack).
   Target (issue #26): bridge ≥ 0.7x the floor.
2. Latency. A gevent worker (`-P gevent -c 50`, subprocess) on the hrsync queues, the bridge still
   running, and `--latency-events` events published one at a time (10 per second) for `scope: hris`
   runs against a 10-employee PostgreSQL HRIS: publish time → the execution's first
   `execution_stages.started_at`, p50/p99 (and the steps in between). Target: p50 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.pipeline import (  # noqa: E402 - after the path fix, so `python bench/events.py` works
    MARIADB,
    PG_ODBC,
    create_app_db,
    create_hris,
    drop_hris,
    drop_mariadb,
)

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"
HRSYNC_QUEUES = ("hrsync.bridge", "hrsync.events.dead", "hrsync.audit", "hrsync.extract", "hrsync.merge",
                 "hrsync.notify", "hrsync.export", "hrsync.workflow")
BENCH_QUEUE = "hrsync.bench.bare"
FLOOR_QUEUE = "hrsync.bench.floor"


# -- the stack: a vhost, processes, publishing -----------------------------------------------------------

class VirtualHost:
    """A RabbitMQ vhost of this run (guest may use it); `/` with purges when rabbitmqctl is not usable."""

    def __init__(self, keep: bool = False) -> None:
        self.name = f"hrsync_bench_{uuid.uuid4().hex[:8]}"
        self.keep = keep
        self.own = False

    def __enter__(self) -> VirtualHost:
        try:
            for argv in (["add_vhost", self.name], ["set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"]):
                subprocess.run(["rabbitmqctl", "-q", *argv], check=True, capture_output=True, timeout=60)
            self.own = True
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"no vhost of our own ({type(exc).__name__}); using / and purging the hrsync queues")
            self.name = ""
            self.purge()
        return self

    @property
    def url(self) -> str:
        """The AMQP URL in kombu's spelling (`…//` for the default vhost); hrsync accepts both."""
        return AMQP + (self.name or "/")

    def purge(self) -> None:
        import pika
        import pika.exceptions

        from shared.events.bus import connection_parameters, declare_topology

        connection = pika.BlockingConnection(connection_parameters(self.url))
        try:
            declare_topology(connection.channel())
            for queue in HRSYNC_QUEUES:
                with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):  # a queue not declared yet
                    connection.channel().queue_purge(queue)  # a channel each: a 404 closes its channel
        finally:
            if connection.is_open:
                connection.close()

    def __exit__(self, *_: object) -> None:
        if self.own and not self.keep:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], check=False, capture_output=True,
                           timeout=60)
        elif not self.own:
            self.purge()


class Process:
    """A subprocess whose output goes to a log file; `stop()` sends SIGTERM and waits."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], folder: Path) -> None:
        self.name, self.log = name, folder / f"{name}.log"
        self.handle = self.log.open("w")
        self.process = subprocess.Popen(list(argv), env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                                        stdout=self.handle, stderr=subprocess.STDOUT, text=True)

    def wait_for(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not log {text!r}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.handle.close()
        return code


def hrsync_script() -> str:
    return os.path.join(os.path.dirname(sys.executable), "hrsync")


def start_bridge(env: dict[str, str], folder: Path, profile: Path | None = None) -> Process:
    """`hrsync bridge`; with `profile`, under cProfile (written there when SIGTERM ends it cleanly)."""
    argv = [hrsync_script(), "bridge"]
    if profile is not None:
        argv = [sys.executable, "-m", "cProfile", "-o", str(profile), *argv]
    bridge = Process("bridge", argv, env, folder)
    bridge.wait_for("bridge.consuming")
    return bridge


def start_worker(env: dict[str, str], folder: Path, name: str = "worker", concurrency: int = 50,
                 queues: Sequence[str] = ("hrsync.workflow", "hrsync.extract", "hrsync.merge", "hrsync.notify"),
                 ) -> Process:
    argv = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-P", "gevent", "-c", str(concurrency),
            "-Q", ",".join(queues), "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", "--without-mingle",
            "--without-gossip", "-l", "INFO"]
    worker = Process(name, argv, env, folder)
    worker.wait_for(" ready.")
    return worker


def event_body(event_id: str, data: dict[str, Any], event_type: str = "hrsync.sync.requested",
               at: dt.datetime | None = None) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "bench/other-system",
                       "type": event_type, "time": (at or dt.datetime.now(dt.UTC)).isoformat(),
                       "datacontenttype": "application/json", "data": data}).encode()


class Publisher:
    """Publishes as another system would: plain pika, confirms, mandatory, persistent."""

    def __init__(self, url: str) -> None:
        import pika

        from shared.events.bus import connection_parameters

        self.pika = pika
        self.connection = pika.BlockingConnection(connection_parameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish(self, event_id: str, data: dict[str, Any], event_type: str = "hrsync.sync.requested",
                at: dt.datetime | None = None) -> float:
        """Publish one event (its `time`: `at`, or now); returns the wall-clock time (s since the epoch) just
        before publishing."""
        body = event_body(event_id, data, event_type, at)
        properties = self.pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2,
                                               message_id=event_id)
        sent = time.time()
        self.channel.basic_publish("hrsync.events", event_type, body, properties, mandatory=True)
        return sent

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


def app_query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import pymysql

    database = url.rsplit("/", 1)[1]
    with contextlib.closing(pymysql.connect(host="127.0.0.1", user="root", database=database,
                                            autocommit=True)) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def stack_env(app_url: str, amqp_url: str, **extra: str) -> dict[str, str]:
    return {"HRSYNC_DATABASE_URL": app_url, "HRSYNC_BROKER_URL": amqp_url, "HRSYNC_EVENTS_URL": amqp_url,
            "HRSYNC_RESULT_BACKEND": REDIS_URL, "HRSYNC_TIMEZONE": "UTC", "HRSYNC_LOG_FORMAT": "json",
            "HRSYNC_MAIL_FROM": "hrsync@example.test", "HRSYNC_OPS_EMAIL": "ops@example.test",
            "HRSYNC_HRIS_ABSENCES_QUERY": "off", **extra}  # the bench HRIS (bench/pipeline.py) has no absences


@contextlib.contextmanager
def app_database(tag: str, keep: bool) -> Iterator[str]:
    name = f"hrsync_bench_{tag}_{uuid.uuid4().hex[:8]}"
    create_app_db(name)
    try:
        yield MARIADB + name
    finally:
        if not keep:
            drop_mariadb(name)


@contextlib.contextmanager
def small_hris(employees: int, keep: bool) -> Iterator[str]:
    name = f"hrsync_bench_hris_{uuid.uuid4().hex[:8]}"
    create_hris(name, employees)
    try:
        yield PG_ODBC % name
    finally:
        if not keep:
            drop_hris(name)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def bench_main(doc: str | None, name: str, run: Callable[[argparse.Namespace, Path], dict[str, Any]],
               timeout: float, **options: float) -> dict[str, Any]:
    """The command line of a stack benchmark (bench/burst.py, bench/soak.py): `--<option>` for each of
    `options` (typed and defaulted by its value), `--timeout` (seconds to wait for the last results) and
    `--keep`; calls `run(args, folder)` with a temporary folder (its processes' logs), prints its result as
    JSON and returns it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    for option, default in options.items():
        parser.add_argument(f"--{option}", type=type(default), default=default)
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds to wait for the last results")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the vhost")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"hrsync-{name}-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result, indent=2, default=str))
    return result


# -- 1. throughput -----------------------------------------------------------------------------------

def bare_consume(url: str, count: int, queue: str = BENCH_QUEUE) -> dict[str, Any]:
    """The ack-only reference, in its own process: consume `count` messages of `queue`, ack each."""
    import pika

    from shared.events.bus import connection_parameters
    from workers.bridge import PREFETCH  # the bridge's

    connection = pika.BlockingConnection(connection_parameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=PREFETCH)
    seen = [0]
    first: list[float] = []

    def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        if not first:
            first.append(time.perf_counter())
        ch.basic_ack(method.delivery_tag)
        seen[0] += 1

    channel.basic_consume(queue, on_message)
    deadline = time.monotonic() + 600
    while seen[0] < count and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.2)
    seconds = time.perf_counter() - first[0] if first else 0.0
    connection.close()
    return {"events": seen[0], "seconds": seconds, "per_s": (seen[0] - 1) / seconds if seconds else 0.0}


def floor_consume(url: str, count: int, app_url: str, queue: str = FLOOR_QUEUE) -> dict[str, Any]:
    """The floor that keeps the bridge's contract, in its own process: a bare pika consumer that takes the
    messages at hand (up to the prefetch window, gathered as the bridge gathers them), writes one durable
    inbox row per event (`event_inbox` of a migrated app database: id, type, source, body; `INSERT IGNORE`,
    so a redelivered id is kept once) in one transaction per window, and after the COMMIT acks the window
    with `basic_ack(multiple=True)`. No validation, no execution, no launch: what the bridge does beyond
    this is what the ratio prices. Timed from the first delivery to the last ack."""
    import pika
    import pymysql

    from shared.events.bus import connection_parameters
    from workers.bridge import PREFETCH  # the bridge's: the floor's window is all of it

    database = app_url.rsplit("/", 1)[1]
    db = pymysql.connect(host="127.0.0.1", user="root", database=database, autocommit=False, charset="utf8mb4")
    connection = pika.BlockingConnection(connection_parameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=PREFETCH)
    window: list[tuple[Any, bytes]] = []
    seen, transactions = 0, 0
    first: list[float] = []

    def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        if not first:
            first.append(time.perf_counter())
        window.append((method, body))

    channel.basic_consume(queue, on_message)
    deadline = time.monotonic() + 600
    insert = ("INSERT IGNORE INTO event_inbox (event_id, type, source, status, received_at, body) "
              "VALUES (%s, %s, %s, 'received', %s, %s)")
    with contextlib.closing(db):
        while seen < count and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.2)
            while window and len(window) < PREFETCH:  # take what else is at hand, as the bridge does
                before = len(window)
                connection.process_data_events(time_limit=0)
                if len(window) == before:
                    break
            if not window:
                continue
            batch, window[:] = list(window), []
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            rows = []
            for _, body in batch:
                event = json.loads(body)
                rows.append((event["id"], event["type"], event.get("source"), now, body.decode()))
            with db.cursor() as cur:
                cur.executemany(insert, rows)  # pymysql sends one multi-row INSERT
            db.commit()
            channel.basic_ack(batch[-1][0].delivery_tag, multiple=True)
            seen += len(batch)
            transactions += 1
    seconds = time.perf_counter() - first[0] if first else 0.0
    connection.close()
    return {"events": seen, "seconds": seconds, "per_s": (seen - 1) / seconds if seconds else 0.0,
            "transactions": transactions}


THROUGHPUT_EVENTS = {  # --type: what the throughput phase publishes (n: the event's number)
    "sync": ("hrsync.sync.requested", lambda n: {"scope": "hris"}),  # never coalesced: one launch per event
    "punches": ("hrsync.punches.imported", lambda n: {  # per-punch windows of a shift change: coalesced
        "from": f"2026-12-01T08:{n % 60:02d}:00+00:00", "to": f"2026-12-01T08:{n % 60:02d}:59+00:00",
        "devices": [n % 7 + 1]}),
    "employee": ("hrsync.employee.changed", lambda n: {"employee_no": f"E{n:05d}"}),  # a reorganisation
}


def throughput(url: str, app_url: str, count: int, folder: Path, profile: bool = False,
               kind: str = "sync") -> dict[str, Any]:
    import pika

    from shared.events.bus import connection_parameters, declare_topology

    connection = pika.BlockingConnection(connection_parameters(url))
    channel = connection.channel()
    declare_topology(channel)
    for queue in (BENCH_QUEUE, FLOOR_QUEUE):
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(queue, "hrsync.events", routing_key="#")
    connection.close()

    publisher = Publisher(url)
    started = time.perf_counter()
    for n in range(count):
        event_type, data = THROUGHPUT_EVENTS[kind]
        publisher.publish(f"bench-tp-{n:06d}-{uuid.uuid4().hex[:6]}", data(n), event_type)
    published = time.perf_counter() - started
    publisher.close()

    bare = consumer_process(["--bare", url, "--events", str(count)])
    with app_database("floor", False) as floor_db:
        floor = consumer_process(["--floor", url, "--floor-db", floor_db, "--events", str(count)])
    connection = pika.BlockingConnection(connection_parameters(url))
    for queue in (BENCH_QUEUE, FLOOR_QUEUE):
        connection.channel().queue_delete(queue)
    connection.close()

    profile_file = folder / "bridge.prof" if profile else None
    bridge = start_bridge(stack_env(app_url, url), folder, profile_file)
    deadline = time.monotonic() + 1800
    launched = 0
    while time.monotonic() < deadline:
        launched = int(app_query(app_url, "SELECT COUNT(*) FROM event_inbox WHERE status = 'launched'")[0][0])
        if launched >= count:
            break
        time.sleep(0.5)
    code = bridge.stop()
    seconds = bridge_seconds(bridge.log)
    first, last = app_query(app_url, "SELECT MIN(received_at), MAX(launched_at) FROM event_inbox")[0]
    in_db = (last - first).total_seconds() if first and last else 0.0
    bridge_result = {"events": launched, "seconds": seconds, "per_s": (launched - 1) / seconds if seconds else 0.0,
                     "exit": code, "inbox_seconds": in_db}
    if code != 0 or launched < count:
        bridge_result["error"] = bridge.tail(10)
    if profile_file is not None and profile_file.exists():
        bridge_result["profile"] = bridge_profile(profile_file)
    bridge_result["executions"] = int(app_query(app_url, "SELECT COUNT(*) FROM executions")[0][0])
    return {"published_per_s": count / published, "bare": bare, "floor": floor, "bridge": bridge_result,
            "type": kind}


def bridge_seconds(log: Path) -> float:
    """The bridge's drain time as the floor's is timed (first delivery → last ack), from its JSON log: from
    `bridge.consuming` (before its first delivery) to its last `bridge.launched` / `bridge.joined` /
    `bridge.duplicate` line (written after a batch's admission and launch, just before its ack).

    Not the inbox's timestamps: `received_at` is taken after the first window was validated and `launched_at`
    of a joined event at its batch's start, so they leave out the first window's validation and the last
    batch's transaction."""
    start, end = None, None
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if not isinstance(record, dict) or "timestamp" not in record:
                continue
            at = dt.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
            if record.get("event") == "bridge.consuming" and start is None:
                start = at
            elif record.get("event") in ("bridge.launched", "bridge.joined", "bridge.duplicate"):
                end = at if end is None else max(end, at)
    return (end - start).total_seconds() if start and end else 0.0


def consumer_process(args: list[str]) -> dict[str, Any]:
    """Run one of the reference consumers (`--bare`, `--floor`) in a fresh process; its JSON result."""
    argv = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        return {"error": done.stderr[-500:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


PROFILED_STEPS = {  # what the bridge's consuming thread does (workers/bridge.py), where to find it in the profile
    "validate windows": ("workers/bridge.py", "_validate_window"),
    "finish batches (wait, launch, mark, ack)": ("workers/bridge.py", "_finish"),
    "parse_event": ("shared/events/models.py", "parse_event"),
    "request_for": ("pipelines/plans.py", "request_for"),
    "run_async (mark_launched, dead letters)": ("shared/runtime/runner.py", "run_async"),
    "launch (canvas apply_async)": ("workers/canvas.py", "launch"),
    "basic_ack": ("blocking_connection.py", "basic_ack"),
}


def bridge_profile(path: Path) -> dict[str, float]:
    """Cumulative seconds of the bridge's per-event steps (its consuming thread; sync code, so meaningful)."""
    import pstats

    stats = pstats.Stats(str(path))
    found: dict[str, float] = {}
    for (filename, _, function), (_, _, _, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        for name, (file_part, function_name) in PROFILED_STEPS.items():
            if function == function_name and filename.endswith(file_part):
                found[name] = found.get(name, 0.0) + cumtime
    return found


# -- 2. latency --------------------------------------------------------------------------------------

def latency(url: str, app_url: str, hris_dsn: str, count: int, folder: Path) -> dict[str, Any]:
    env = stack_env(app_url, url, HRSYNC_HRIS_ODBC=hris_dsn)
    worker = start_worker(env, folder)
    bridge = start_bridge(env, folder)
    published: dict[str, float] = {}
    try:
        publisher = Publisher(url)
        for n in range(count):
            event_id = f"bench-lat-{n:05d}-{uuid.uuid4().hex[:6]}"
            published[event_id] = publisher.publish(event_id, {"scope": "hris", "notify": False})
            time.sleep(0.1)
        publisher.close()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = int(app_query(app_url, "SELECT COUNT(*) FROM executions WHERE event_id LIKE 'bench-lat-%%' "
                                          "AND status IN ('succeeded', 'failed')")[0][0])
            if done >= count:
                break
            time.sleep(0.5)
    finally:
        bridge_code = bridge.stop()
        worker_code = worker.stop()
    rows = app_query(app_url, """
        SELECT i.event_id, i.received_at, i.launched_at, MIN(s.started_at), e.status
        FROM event_inbox i JOIN executions e ON e.id = i.execution_id
        LEFT JOIN execution_stages s ON s.execution_id = e.id
        WHERE i.event_id LIKE 'bench-lat-%%' GROUP BY i.event_id, i.received_at, i.launched_at, e.status""")

    def ms(at: dt.datetime | None, since: float) -> float | None:
        return None if at is None else (at.replace(tzinfo=dt.UTC).timestamp() - since) * 1000

    steps: dict[str, list[float]] = {"publish→inbox": [], "publish→launched": [], "publish→first stage": []}
    statuses: dict[str, int] = {}
    for event_id, received, launched, stage_started, status in rows:
        statuses[status] = statuses.get(status, 0) + 1
        for key, at in (("publish→inbox", received), ("publish→launched", launched),
                        ("publish→first stage", stage_started)):
            value = ms(at, published[event_id])
            if value is not None:
                steps[key].append(value)
    result: dict[str, Any] = {"events": count, "statuses": statuses, "bridge_exit": bridge_code,
                              "worker_exit": worker_code}
    for key, values in steps.items():
        if values:
            result[key] = {"n": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
                           "mean": statistics.fmean(values)}
    return result


# -- the orchestrator --------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the databases and the vhost")
    parser.add_argument("--profile", action="store_true", help="run the throughput bridge under cProfile")
    parser.add_argument("--type", choices=sorted(THROUGHPUT_EVENTS), default="sync",
                        help="the throughput phase's events (punches/employee: coalesced)")
    parser.add_argument("--bare", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--floor", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--floor-db", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare_consume(args.bare, args.events)))
        return
    if args.floor:
        print(json.dumps(floor_consume(args.floor, args.events, args.floor_db)))
        return

    print(f"python bench/events.py --events {args.events} --latency-events {args.latency_events}"
          f" --type {args.type}" + (" --profile" if args.profile else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="hrsync-bench-events-") as tmp, VirtualHost(args.keep) as vhost:
        folder = Path(tmp)
        with app_database("events", args.keep) as app_url:
            tp = throughput(vhost.url, app_url, args.events, folder, args.profile, args.type)
        vhost.purge()  # the launched canvases of phase 1 must not delay phase 2's worker
        with app_database("latency", args.keep) as app_url, small_hris(10, args.keep) as hris_dsn:
            lat = latency(vhost.url, app_url, hris_dsn, args.latency_events, folder)
    print(report(tp, lat))


def report(tp: dict[str, Any], lat: dict[str, Any]) -> str:
    bare, floor, bridge = tp["bare"], tp["floor"], tp["bridge"]
    lines = [f"publishing {THROUGHPUT_EVENTS[tp['type']][0]} (confirms, one at a time): "
             f"{tp['published_per_s']:.0f} events/s; the bridge made {bridge.get('executions')} execution(s)", "",
             f"{'consumer':<40}{'events':>8}{'seconds':>9}{'events/s':>10}"]
    for name, r in (("bare pika, ack only (reference)", bare), ("floor: pika + inbox rows, ack multiple", floor),
                    ("hrsync bridge (launched)", bridge)):
        if "per_s" in r:
            lines.append(f"{name:<40}{r['events']:>8}{r['seconds']:>9.2f}{r['per_s']:>10.0f}")
        if "error" in r:
            lines.append(f"{name:<40} error: {r['error']}")
    if "profile" in bridge:
        lines += ["", f"bridge profile (cumulative s over {bridge['events']} events, consuming thread):"]
        lines += [f"  {name:<36}{seconds:>7.2f}  {seconds / bridge['events'] * 1000:>6.2f} ms/event"
                  for name, seconds in sorted(bridge["profile"].items(), key=lambda i: -i[1])]
    ratio = bridge.get("per_s", 0.0) / floor["per_s"] if floor.get("per_s") else 0.0
    ack_only = bridge.get("per_s", 0.0) / bare["per_s"] if bare.get("per_s") else 0.0
    lines += ["", f"latency over {lat['events']} events, 10/s, gevent worker running "
                  f"(executions: {lat['statuses']}):", f"{'step':<22}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}"]
    for key in ("publish→inbox", "publish→launched", "publish→first stage"):
        if key in lat:
            r = lat[key]
            lines.append(f"{key:<22}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['mean']:>9.1f}")
    p50 = lat.get("publish→first stage", {}).get("p50", float("inf"))
    lines += ["", f"{'met   ' if ratio >= 0.7 else 'MISSED'}  bridge ≥ 0.7x the floor (inbox rows, one transaction "
                  f"a window, ack multiple): {ratio:.3f}x   (against ack-only pika, for reference: {ack_only:.3f}x)",
              f"{'met   ' if p50 <= 50 else 'MISSED'}  event → first stage p50 ≤ 50 ms: {p50:.1f} ms"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
