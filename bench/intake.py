"""Benchmark of `hrsync intake`: events per second through POST /events to a confirmed publish, against a bare
uvicorn endpoint measured in the same run, and the latency of single events at a steady 100 requests/s.

One command:   python bench/intake.py [--singles 2000] [--batches 40] [--paced-seconds 10] [--concurrency 16]

Everything runs on loopback, in a RabbitMQ virtual host of its own (deleted at the end); nothing consumes, so
the events stay in that vhost's queues until it goes. Both servers are one uvicorn process each (subprocesses),
fed by the same client (httpx, `--concurrency` requests in flight, every request signed beforehand):

1. baseline: a bare ASGI endpoint that publishes the body to `hrsync.events` with confirms and `mandatory`
   (aiormq, on as many channels in turn as the intake) — no signature, no validation;
2. intake, single events (`application/cloudevents+json`): events/s. Target ≥ 0.5x the baseline;
3. intake, batches of 100 (`application/cloudevents-batch+json`): events/s. Target ≥ 2,000;
4. intake, single events sent at 100 requests/s (open loop) for `--paced-seconds`: p50/p99 from send to
   answer. Target p99 ≤ 50 ms. The baseline is paced the same way afterwards, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/intake.py`, this file's folder comes first on the path and its name would shadow the
# `intake` package: the repository goes first.
sys.path.insert(0, str(ROOT))

from bench.events import Process, VirtualHost, percentile  # noqa: E402 - after the path fix
from intake.publisher import CHANNELS  # noqa: E402

SOURCE = "bench"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
BATCH = 100
PACED_RATE = 100  # requests per second in the latency run


# -- the baseline: publish the body, confirmed, nothing else ------------------------------------------

def baseline_app(url: str) -> Any:
    """A bare ASGI app: POST → publish the body to hrsync.events (confirms, mandatory) → 202."""
    import aiormq
    from pamqp.commands import Basic

    state: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()  # lifespan.startup
            state["connection"] = await aiormq.connect(url)
            state["channels"] = [await state["connection"].channel(publisher_confirms=True)
                                 for _ in range(CHANNELS)]
            state["turn"] = 0
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            await state["connection"].close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        state["turn"] = (state["turn"] + 1) % CHANNELS  # channels in turn, as the intake uses them
        await state["channels"][state["turn"]].basic_publish(
            body, exchange="hrsync.events", routing_key="hrsync.sync.requested", mandatory=True,
            properties=Basic.Properties(content_type="application/cloudevents+json", delivery_mode=2))
        await send({"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b""})

    return app


def serve_baseline(url: str, port: int) -> None:
    import uvicorn

    print("baseline listening", flush=True)
    uvicorn.run(baseline_app(url), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the client ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def event(index: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"bench-{uuid.uuid4().hex[:12]}-{index}", "source": SOURCE,
            "type": "hrsync.sync.requested", "datacontenttype": "application/json", "data": {"scope": "hris"}}


def signed(body: bytes, content_type: str) -> dict[str, str]:
    from standardwebhooks.webhooks import Webhook

    when = datetime.now(UTC)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    return {"content-type": content_type, "webhook-id": webhook_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(SECRET).sign(webhook_id, when, body)}


def singles(count: int) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    for index in range(count):
        body = json.dumps(event(index)).encode()
        requests.append((body, signed(body, "application/cloudevents+json")))
    return requests


def batches(count: int) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    for index in range(count):
        body = json.dumps([event(index * BATCH + i) for i in range(BATCH)]).encode()
        requests.append((body, signed(body, "application/cloudevents-batch+json")))
    return requests


async def drive(port: int, requests: Sequence[tuple[bytes, dict[str, str]]], concurrency: int) -> dict[str, Any]:
    """Send every request, `concurrency` at a time: seconds, statuses, latencies (ms)."""
    import httpx

    queue = list(reversed(requests))
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        async def worker() -> None:
            while queue:
                body, headers = queue.pop()
                started = time.perf_counter()
                answer = await client.post("/events", content=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "statuses": statuses, "latencies": latencies}


async def paced(port: int, requests: Sequence[tuple[bytes, dict[str, str]]], rate: float) -> dict[str, Any]:
    """Send request i at start + i/rate whatever the answers (open loop): statuses, latencies (ms)."""
    import httpx

    statuses: dict[int, int] = {}
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits) as client:
        async def one(body: bytes, headers: dict[str, str]) -> None:
            started = time.perf_counter()
            answer = await client.post("/events", content=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for index, (body, headers) in enumerate(requests):
            await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
            tasks.append(asyncio.create_task(one(body, headers)))
        await asyncio.gather(*tasks)
    return {"statuses": statuses, "latencies": latencies}


def wait_listening(port: int, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.process.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not listen:\n{process.tail()}")


def rate(result: dict[str, Any], events_per_request: int) -> float:
    accepted = result["statuses"].get(202, 0)
    return accepted * events_per_request / result["seconds"]


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from shared.events.bus import event_channel

    with VirtualHost() as vhost:
        with event_channel(vhost.url):  # the topology, as every publisher declares it
            pass
        sources = folder / "sources.yaml"
        sources.write_text(json.dumps({"sources": {SOURCE: {"secrets": [SECRET], "types": ["hrsync.sync.requested"],
                                                            "rate_per_second": 100_000}}}))
        env = {"HRSYNC_EVENTS_URL": vhost.url, "HRSYNC_INTAKE_SOURCES_FILE": str(sources), "HRSYNC_LOG_LEVEL":
               "WARNING", "HRSYNC_LOG_FORMAT": "json", "HRSYNC_HOME": str(folder)}
        base_port, intake_port = free_port(), free_port()
        baseline = Process("baseline", [sys.executable, __file__, "--serve-baseline", vhost.url, str(base_port)],
                           env, folder)
        intake = Process("intake", [os.path.join(os.path.dirname(sys.executable), "hrsync"), "intake", "--port",
                                    str(intake_port)], env, folder)
        try:
            wait_listening(base_port, baseline)
            wait_listening(intake_port, intake)
            asyncio.run(drive(base_port, singles(50), 4))  # warm-up: connections, caches
            asyncio.run(drive(intake_port, singles(50), 4))
            base = asyncio.run(drive(base_port, singles(args.singles), args.concurrency))
            single = asyncio.run(drive(intake_port, singles(args.singles), args.concurrency))
            batch = asyncio.run(drive(intake_port, batches(args.batches), max(1, args.concurrency // 4)))
            steady = asyncio.run(paced(intake_port, singles(int(args.paced_seconds * PACED_RATE)), PACED_RATE))
            steady_base = asyncio.run(paced(base_port, singles(int(args.paced_seconds * PACED_RATE)), PACED_RATE))
        finally:
            codes = {"baseline": baseline.stop(), "intake": intake.stop()}
    return {
        "baseline_events_per_s": round(rate(base, 1)),
        "single_events_per_s": round(rate(single, 1)),
        "single_vs_baseline": round(rate(single, 1) / rate(base, 1), 2),
        "batch_events_per_s": round(rate(batch, BATCH)),
        "paced_p50_ms": round(percentile(steady["latencies"], 0.5), 1),
        "paced_p99_ms": round(percentile(steady["latencies"], 0.99), 1),
        "baseline_paced_p50_ms": round(percentile(steady_base["latencies"], 0.5), 1),
        "baseline_paced_p99_ms": round(percentile(steady_base["latencies"], 0.99), 1),
        "statuses": {"baseline": base["statuses"], "single": single["statuses"], "batch": batch["statuses"],
                     "paced": steady["statuses"], "baseline_paced": steady_base["statuses"]},
        "single_p99_ms_under_load": round(percentile(single["latencies"], 0.99), 1),
        "exit_codes": codes,
        "targets": {"single_vs_baseline": ">= 0.5", "batch_events_per_s": ">= 2000", "paced_p99_ms": "<= 50"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--singles", type=int, default=2000, help="single-event requests per server")
    parser.add_argument("--batches", type=int, default=40, help="batch requests of 100 events")
    parser.add_argument("--paced-seconds", type=float, default=10, help="seconds at 100 requests/s")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--serve-baseline", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline[0], int(args.serve_baseline[1]))
        return
    with tempfile.TemporaryDirectory(prefix="hrsync-intake-bench-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
